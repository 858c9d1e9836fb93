#include "server/model_config.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <set>

namespace kiln::server {
namespace {

namespace pb = google::protobuf;

// Collects the first text-format error with its position, so the load error names the line.
class FirstError : public pb::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (message_.empty()) {
      message_ =
          "line " + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
    }
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

// Every config field kiln honours, as a dotted path. A path ending in ".*" accepts the whole
// subtree. Map fields are addressed by their value message ("parameters.*").
constexpr std::array<std::string_view, 39> kSupported = {
    "name",
    "platform",
    "backend",
    "runtime",
    "version_policy.*",
    "max_batch_size",
    "input.name",
    "input.data_type",
    "input.format",
    "input.dims",
    "input.reshape.*",
    "input.optional",
    "input.allow_ragged_batch",
    "output.name",
    "output.data_type",
    "output.dims",
    "output.reshape.*",
    "instance_group.name",
    "instance_group.kind",
    "instance_group.count",
    "instance_group.gpus",
    "dynamic_batching.preferred_batch_size",
    "dynamic_batching.max_queue_delay_microseconds",
    "dynamic_batching.preserve_ordering",
    "dynamic_batching.priority_levels",
    "dynamic_batching.default_priority_level",
    "dynamic_batching.default_queue_policy.*",
    "dynamic_batching.priority_queue_policy.*",
    "parameters.*",
    "model_warmup.name",
    "model_warmup.batch_size",
    "model_warmup.count",
    "model_warmup.inputs.key",
    "model_warmup.inputs.value.data_type",
    "model_warmup.inputs.value.dims",
    "model_warmup.inputs.value.zero_data",
    "model_warmup.inputs.value.random_data",
    "default_model_filename",
    "response_cache.enable",
};

bool is_supported(const std::string& path) {
  for (std::string_view s : kSupported) {
    if (s == path) return true;
    if (s.ends_with(".*") && (path == s.substr(0, s.size() - 2) ||
                              path.starts_with(std::string(s.substr(0, s.size() - 1))))) {
      return true;
    }
  }
  return false;
}

// Whether some allow-list entry lies below `path` (so recursion may still accept parts).
bool has_supported_child(const std::string& path) {
  const std::string prefix = path + ".";
  return std::any_of(kSupported.begin(), kSupported.end(),
                     [&](std::string_view s) { return s.starts_with(prefix); });
}

Status check_message(const pb::Message& msg, const std::string& prefix) {
  const pb::Reflection* refl = msg.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  refl->ListFields(msg, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    const std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (is_supported(path)) continue;
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE || !has_supported_child(path)) {
      return unimplemented("model configuration field '" + path +
                           "' is not supported by kiln; remove it");
    }
    if (f->is_repeated()) {
      for (int i = 0; i < refl->FieldSize(msg, f); ++i) {
        KILN_RETURN_IF_ERROR(check_message(refl->GetRepeatedMessage(msg, f, i), path));
      }
    } else {
      KILN_RETURN_IF_ERROR(check_message(refl->GetMessage(msg, f), path));
    }
  }
  return ok_status();
}

}  // namespace

Result<inference::ModelConfig> parse_model_config(std::string_view text) {
  inference::ModelConfig config;
  pb::TextFormat::Parser parser;
  FirstError errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return invalid_argument("config.pbtxt: " + errors.message());
  }
  return config;
}

Result<inference::ModelConfig> parse_model_config_json(std::string_view json) {
  inference::ModelConfig config;
  pb::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = pb::util::JsonStringToMessage(std::string(json), &config, options);
  if (!status.ok()) {
    return invalid_argument("model configuration JSON: " + std::string(status.message()));
  }
  return config;
}

Status check_supported_fields(const inference::ModelConfig& config) {
  if (config.has_response_cache() && config.response_cache().enable()) {
    return unimplemented(
        "model configuration field 'response_cache.enable: true' is not "
        "supported by kiln (no response cache)");
  }
  return check_message(config, "");
}

std::string config_parameter(const inference::ModelConfig& config, std::string_view key,
                             std::string_view fallback) {
  auto it = config.parameters().find(std::string(key));
  if (it == config.parameters().end()) return std::string(fallback);
  return it->second.string_value();
}

Result<int64_t> int_parameter(const inference::ModelConfig& config, std::string_view key,
                              int64_t fallback, int64_t lo, int64_t hi) {
  const std::string text = config_parameter(config, key, std::to_string(fallback));
  int64_t v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < lo || v > hi) {
    const std::string range =
        hi == std::numeric_limits<int64_t>::max()
            ? "an integer >= " + std::to_string(lo)
            : "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return invalid_argument("parameter " + std::string(key) + " '" + text + "' is not " + range);
  }
  return v;
}

}  // namespace kiln::server
