// GPU metrics Triton exports, from NVIDIA's management library (NVML): utilization, memory,
// power and energy of every GPU, labelled gpu_uuid as Triton labels them. NVML comes with the
// driver (libnvidia-ml.so.1) and is opened at run time: on a machine without it (CPU-only, CI)
// there are simply no GPU metrics.
#pragma once

#include <memory>
#include <mutex>

#include "server/metrics_text.h"

namespace kiln::server {

/// Thread-safe; NVML is loaded and initialized on the first write().
class GpuMetrics {
 public:
  GpuMetrics();
  ~GpuMetrics();
  GpuMetrics(const GpuMetrics&) = delete;
  GpuMetrics& operator=(const GpuMetrics&) = delete;

  /// Appends the families for every GPU NVML reports; nothing when NVML is unavailable.
  void write(MetricsText* out);

 private:
  struct Nvml;
  std::mutex mu_;
  bool tried_ = false;
  std::unique_ptr<Nvml> nvml_;
};

}  // namespace kiln::server
