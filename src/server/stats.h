// Per model-version statistics (Triton's statistics extension) and latency histograms for the
// Prometheus metrics. Thread-safe: every method may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "kiln/server.h"
#include "server/backend.h"
#include "server/metrics_text.h"

namespace kiln::server {

/// A cumulative latency histogram with fixed bucket bounds (seconds), Prometheus-style.
class LatencyHistogram {
 public:
  // Fine below 100 us so the server's own overhead (tens of microseconds) has a usable p50.
  static constexpr std::array<double, 24> kBounds = {
      0.000005, 0.00001, 0.000015, 0.00002, 0.000025, 0.00003, 0.00004, 0.00005,
      0.000075, 0.0001,  0.00025,  0.0005,  0.001,    0.0025,  0.005,   0.01,
      0.025,    0.05,    0.1,      0.25,    0.5,      1.0,     2.5,     10.0};
  void observe(uint64_t ns);
  /// Adds the _bucket/_sum/_count samples of family `name` with `labels` (no braces).
  void write(const std::string& name, const std::string& help, const std::string& labels,
             MetricsText* out) const;

 private:
  mutable std::mutex mu_;
  std::array<uint64_t, kBounds.size() + 1> counts_{};
  uint64_t total_ns_ = 0;
  uint64_t count_ = 0;
};

/// Why a request failed, as Triton's nv_inference_request_failure "reason" label says.
enum class FailureReason { kRejected, kCanceled, kBackend, kOther };

/// Statistics of one model version.
class ModelStats {
 public:
  /// A request answered successfully: durations from arrival, in queue, and the compute split
  /// of the execution it was part of.
  void record_success(uint64_t request_ns, uint64_t queue_ns, const ExecutionTimes& compute);
  /// A request that failed after arrival.
  void record_failure(FailureReason reason, uint64_t request_ns);
  /// One execution of `rows` batch rows.
  void record_execution(int64_t rows, const ExecutionTimes& times);

  /// Requests queued or executing.
  std::atomic<int64_t> pending{0};

  /// A snapshot in the API's shape.
  ModelStatistics snapshot(const std::string& name, const std::string& version) const;
  /// Prometheus lines for this version (Triton's names plus kiln's histograms).
  void write_metrics(const std::string& labels, MetricsText* out) const;

 private:
  mutable std::mutex mu_;
  uint64_t last_inference_ms_ = 0;
  uint64_t inference_count_ = 0;
  uint64_t execution_count_ = 0;
  Duration success_, fail_, queue_, input_, infer_, output_;
  std::array<uint64_t, 4> failures_{};
  std::map<uint64_t, BatchStatistics> batches_;
  LatencyHistogram request_hist_, queue_hist_, compute_hist_, overhead_hist_;
};

}  // namespace kiln::server
