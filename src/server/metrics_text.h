// Builds Prometheus text exposition (format 0.0.4): samples are grouped by metric family, each
// family once with its HELP and TYPE lines, whatever order the samples are added in.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kiln::server {

class MetricsText {
 public:
  /// Adds one sample line ("name{labels} value") to `family`, declaring the family on first use.
  void add(std::string_view family, std::string_view type, std::string_view help,
           std::string sample);
  /// The exposition text.
  std::string str() const;

 private:
  struct Family {
    std::string name, type, help;
    std::vector<std::string> samples;
  };
  std::vector<Family> families_;
};

}  // namespace kiln::server
