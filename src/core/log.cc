#include "core/log.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace kiln::core {
namespace {

std::atomic<int> g_verbose{0};
std::atomic<bool> g_quiet{false};

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kError:
      return "error";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kVerbose:
      return "verbose";
  }
  return "info";
}

std::string timestamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void set_log_verbose(int level) { g_verbose.store(level); }
bool log_verbose_enabled(int level) { return g_verbose.load() >= level; }
void set_log_quiet(bool quiet) { g_quiet.store(quiet); }

void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (level == LogLevel::kInfo && g_quiet.load()) return;
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  const std::string ts = timestamp();
  w.Key("ts");
  w.String(ts.c_str());
  w.Key("level");
  w.String(level_name(level));
  w.Key("msg");
  w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
  for (const auto& [k, v] : fields) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
  // One fwrite per line: stdio locks the stream, so concurrent lines never interleave.
  std::string line(buf.GetString(), buf.GetSize());
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace kiln::core
