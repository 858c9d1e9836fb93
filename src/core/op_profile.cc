#include "core/op_profile.h"

#include <algorithm>
#include <cstdio>

namespace kiln::core {

void OpProfile::add(const char* name, std::chrono::steady_clock::duration d) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& e = totals_[name];
  e.first += std::chrono::duration<double>(d).count();
  ++e.second;
}

std::vector<std::string> OpProfile::report() const {
  std::lock_guard<std::mutex> lock(mu_);
  double total = 0;
  std::vector<std::pair<std::string, std::pair<double, long>>> rows(totals_.begin(), totals_.end());
  for (const auto& r : rows) total += r.second.first;
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::vector<std::string> lines;
  for (const auto& [name, e] : rows) {
    char buf[160];
    std::snprintf(buf, sizeof(buf), "%-22s %10.2f ms %6.1f%% %8ld calls", name.c_str(),
                  e.first * 1e3, total > 0 ? 100.0 * e.first / total : 0.0, e.second);
    lines.emplace_back(buf);
  }
  return lines;
}

void OpProfile::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  totals_.clear();
}

}  // namespace kiln::core
