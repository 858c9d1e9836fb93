// Host metrics Triton exports: CPU utilization and memory, read from /proc.
#pragma once

#include <cstdint>
#include <mutex>

#include "server/metrics_text.h"

namespace kiln::server {

/// Thread-safe. CPU utilization is measured between consecutive scrapes.
class SystemMetrics {
 public:
  void write(MetricsText* out);

 private:
  std::mutex mu_;
  uint64_t last_busy_ = 0;
  uint64_t last_total_ = 0;
  double utilization_ = 0.0;
};

}  // namespace kiln::server
