// Structured logging: one JSON object per line on stderr, e.g.
//   {"ts":"2026-11-27T10:00:00.123Z","level":"info","msg":"model loaded","model":"bert"}
// Thread-safe. Verbosity follows tritonserver's --log-verbose: 0 = info/warnings/errors only,
// 1 = one line per request, 2 = scheduling detail.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace kiln::core {

enum class LogLevel { kError, kWarning, kInfo, kVerbose };

/// Sets the verbose level (0 = no verbose lines). Default 0.
void set_log_verbose(int level);
/// Whether verbose lines of `level` (>= 1) are written.
bool log_verbose_enabled(int level);
/// Silences info lines (tests, tools); errors and warnings still print.
void set_log_quiet(bool quiet);

using LogField = std::pair<std::string_view, std::string_view>;

/// Writes one log line with extra string fields.
void log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

}  // namespace kiln::core
