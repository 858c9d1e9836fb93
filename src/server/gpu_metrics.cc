#include "server/gpu_metrics.h"

#include <dlfcn.h>

#include <cstdio>
#include <string>

#include "core/log.h"

namespace kiln::server {

// NVML's C API, declared here for the few calls used: the CUDA toolkit installed for building
// does not ship nvml.h, and linking libnvidia-ml would tie the server to the driver. The types
// and signatures are NVML's documented, stable ABI (nvml.h, "Device Queries").
namespace {
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
struct nvmlUtilization_t {
  unsigned int gpu;     // percent of time a kernel ran, over the last sample period
  unsigned int memory;  // percent of time device memory was read or written
};
struct nvmlMemory_t {
  unsigned long long total, free, used;  // bytes
};
constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr unsigned kUuidLength = 96;
}  // namespace

struct GpuMetrics::Nvml {
  void* lib = nullptr;
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  nvmlReturn_t (*count)(unsigned*) = nullptr;
  nvmlReturn_t (*handle)(unsigned, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*uuid)(nvmlDevice_t, char*, unsigned) = nullptr;
  nvmlReturn_t (*utilization)(nvmlDevice_t, nvmlUtilization_t*) = nullptr;
  nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t*) = nullptr;
  nvmlReturn_t (*power)(nvmlDevice_t, unsigned*) = nullptr;             // milliwatts
  nvmlReturn_t (*power_limit)(nvmlDevice_t, unsigned*) = nullptr;       // milliwatts
  nvmlReturn_t (*energy)(nvmlDevice_t, unsigned long long*) = nullptr;  // millijoules

  ~Nvml() {
    if (shutdown != nullptr) shutdown();
    if (lib != nullptr) dlclose(lib);
  }

  template <typename F>
  bool bind(F* fn, const char* name) {
    *fn = reinterpret_cast<F>(dlsym(lib, name));
    return *fn != nullptr;
  }

  static std::unique_ptr<Nvml> open() {
    auto n = std::make_unique<Nvml>();
    n->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (n->lib == nullptr) return nullptr;
    const bool bound = n->bind(&n->init, "nvmlInit_v2") &&
                       n->bind(&n->count, "nvmlDeviceGetCount_v2") &&
                       n->bind(&n->handle, "nvmlDeviceGetHandleByIndex_v2") &&
                       n->bind(&n->uuid, "nvmlDeviceGetUUID") &&
                       n->bind(&n->utilization, "nvmlDeviceGetUtilizationRates") &&
                       n->bind(&n->memory, "nvmlDeviceGetMemoryInfo") &&
                       n->bind(&n->power, "nvmlDeviceGetPowerUsage") &&
                       n->bind(&n->power_limit, "nvmlDeviceGetPowerManagementLimit") &&
                       n->bind(&n->energy, "nvmlDeviceGetTotalEnergyConsumption");
    if (!bound || n->init() != kNvmlSuccess) {
      n->init = nullptr;
      return nullptr;
    }
    n->bind(&n->shutdown, "nvmlShutdown");
    return n;
  }
};

GpuMetrics::GpuMetrics() = default;
GpuMetrics::~GpuMetrics() = default;

void GpuMetrics::write(MetricsText* out) {
  std::lock_guard lock(mu_);
  if (!tried_) {
    tried_ = true;
    nvml_ = Nvml::open();
    if (nvml_ != nullptr) core::log(core::LogLevel::kInfo, "gpu metrics from NVML");
  }
  if (nvml_ == nullptr) return;
  unsigned count = 0;
  if (nvml_->count(&count) != kNvmlSuccess) return;
  auto value = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  for (unsigned i = 0; i < count; ++i) {
    nvmlDevice_t dev = nullptr;
    char uuid[kUuidLength] = {};
    if (nvml_->handle(i, &dev) != kNvmlSuccess ||
        nvml_->uuid(dev, uuid, kUuidLength) != kNvmlSuccess) {
      continue;
    }
    const std::string label = std::string("{gpu_uuid=\"") + uuid + "\"}";
    nvmlUtilization_t u{};
    if (nvml_->utilization(dev, &u) == kNvmlSuccess) {
      out->add("nv_gpu_utilization", "gauge", "GPU utilization rate [0.0 - 1.0)",
               "nv_gpu_utilization" + label + " " + value(u.gpu / 100.0));
    }
    nvmlMemory_t m{};
    if (nvml_->memory(dev, &m) == kNvmlSuccess) {
      out->add("nv_gpu_memory_total_bytes", "gauge", "GPU total memory, in bytes",
               "nv_gpu_memory_total_bytes" + label + " " + value(static_cast<double>(m.total)));
      out->add("nv_gpu_memory_used_bytes", "gauge", "GPU used memory, in bytes",
               "nv_gpu_memory_used_bytes" + label + " " + value(static_cast<double>(m.used)));
    }
    unsigned mw = 0;
    if (nvml_->power(dev, &mw) == kNvmlSuccess) {
      out->add("nv_gpu_power_usage", "gauge", "GPU power usage in watts",
               "nv_gpu_power_usage" + label + " " + value(mw / 1000.0));
    }
    if (nvml_->power_limit(dev, &mw) == kNvmlSuccess) {
      out->add("nv_gpu_power_limit", "gauge", "GPU power management limit in watts",
               "nv_gpu_power_limit" + label + " " + value(mw / 1000.0));
    }
    unsigned long long mj = 0;
    if (nvml_->energy(dev, &mj) == kNvmlSuccess) {
      out->add("nv_energy_consumption", "counter",
               "GPU energy consumption in joules since the driver was loaded",
               "nv_energy_consumption" + label + " " + value(static_cast<double>(mj) / 1000.0));
    }
  }
}

}  // namespace kiln::server
