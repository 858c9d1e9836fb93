#include "server/metrics_text.h"

namespace kiln::server {

void MetricsText::add(std::string_view family, std::string_view type, std::string_view help,
                      std::string sample) {
  for (Family& f : families_) {
    if (f.name == family) {
      f.samples.push_back(std::move(sample));
      return;
    }
  }
  families_.push_back(
      Family{std::string(family), std::string(type), std::string(help), {std::move(sample)}});
}

std::string MetricsText::str() const {
  std::string out;
  for (const Family& f : families_) {
    out += "# HELP " + f.name + " " + f.help + "\n";
    out += "# TYPE " + f.name + " " + f.type + "\n";
    for (const std::string& s : f.samples) out += s + "\n";
  }
  return out;
}

}  // namespace kiln::server
