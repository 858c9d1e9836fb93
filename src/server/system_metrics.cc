#include "server/system_metrics.h"

#include <fstream>
#include <sstream>
#include <string>

namespace kiln::server {
namespace {

bool read_cpu(uint64_t* busy, uint64_t* total) {
  std::ifstream f("/proc/stat");
  std::string cpu;
  uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  if (!(f >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal)) {
    return false;
  }
  *busy = user + nice + system + irq + softirq + steal;
  *total = *busy + idle + iowait;
  return true;
}

bool read_memory(uint64_t* total, uint64_t* available) {
  std::ifstream f("/proc/meminfo");
  std::string key, unit;
  uint64_t value = 0;
  int found = 0;
  while (f >> key >> value >> unit) {
    if (key == "MemTotal:") *total = value * 1024, ++found;
    if (key == "MemAvailable:") *available = value * 1024, ++found;
  }
  return found == 2;
}

}  // namespace

void SystemMetrics::write(MetricsText* out) {
  uint64_t busy = 0, total = 0;
  double utilization = 0.0;
  {
    std::lock_guard lock(mu_);
    if (read_cpu(&busy, &total)) {
      if (total > last_total_ && last_total_ != 0) {
        utilization_ =
            static_cast<double>(busy - last_busy_) / static_cast<double>(total - last_total_);
      }
      last_busy_ = busy;
      last_total_ = total;
    }
    utilization = utilization_;
  }
  std::ostringstream u;
  u << "nv_cpu_utilization " << utilization;
  out->add("nv_cpu_utilization", "gauge", "CPU utilization rate [0.0 - 1.0]", u.str());
  uint64_t mem_total = 0, mem_available = 0;
  if (read_memory(&mem_total, &mem_available)) {
    out->add("nv_cpu_memory_total_bytes", "gauge", "CPU total memory (RAM), in bytes",
             "nv_cpu_memory_total_bytes " + std::to_string(mem_total));
    out->add("nv_cpu_memory_used_bytes", "gauge", "CPU used memory (RAM), in bytes",
             "nv_cpu_memory_used_bytes " + std::to_string(mem_total - mem_available));
  }
}

}  // namespace kiln::server
