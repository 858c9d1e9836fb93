// The one place devices are registered. A new backend adds its factory here (and its folder and
// CMake file), nothing else.
#include <functional>

#include "backend/cpu/cpu_device.h"
#include "backend/device.h"
#ifdef KILN_WITH_CUDA
#include "backend/cuda/cuda_device.h"
#endif

namespace kiln::backend {

namespace {

struct Entry {
  const char* name;
  std::function<std::unique_ptr<Device>()> make;
};

const std::vector<std::unique_ptr<Device>>& devices() {
  static const auto* all = [] {
    const Entry kEntries[] = {
        {"cpu", cpu::make_cpu_device},
#ifdef KILN_WITH_CUDA
        {"cuda", cuda::make_cuda_device},
#endif
    };
    auto* list = new std::vector<std::unique_ptr<Device>>();
    for (const auto& e : kEntries) list->push_back(e.make());
    return list;
  }();
  return *all;
}

}  // namespace

Result<const Device*> find_device(std::string_view name) {
  for (const auto& d : devices()) {
    if (d->name() == name) return d.get();
  }
  std::string known;
  for (const auto& n : device_names()) known += (known.empty() ? "" : ", ") + n;
  return not_found("unknown device \"" + std::string(name) + "\" (known: " + known + ")");
}

std::vector<std::string> device_names() {
  std::vector<std::string> names;
  for (const auto& d : devices()) names.emplace_back(d->name());
  return names;
}

}  // namespace kiln::backend
