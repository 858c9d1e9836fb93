// Accumulated wall time per operation, for `kiln bench --profile`. Disabled profiles cost one
// branch per op. Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::core {

/// Sums the time spent in named operations across calls.
class OpProfile {
 public:
  explicit OpProfile(bool enabled = false) : enabled_(enabled) {}

  /// Runs `fn`, adding its wall time to `name` when enabled.
  template <typename Fn>
  auto time(const char* name, Fn&& fn) {
    if (!enabled_) return fn();
    const auto start = std::chrono::steady_clock::now();
    struct Record {
      OpProfile* self;
      const char* name;
      std::chrono::steady_clock::time_point start;
      ~Record() { self->add(name, std::chrono::steady_clock::now() - start); }
    } record{this, name, start};
    return fn();
  }

  /// One line per op: name, total ms, share of the total, calls.
  std::vector<std::string> report() const;
  void reset();

 private:
  void add(const char* name, std::chrono::steady_clock::duration d);
  bool enabled_;
  mutable std::mutex mu_;
  std::map<std::string, std::pair<double, long>> totals_;
};

}  // namespace kiln::core
