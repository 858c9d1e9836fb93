#include "server/stats.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace kiln::server {
namespace {

void add(Duration* d, uint64_t ns) {
  d->count += 1;
  d->ns += ns;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

void counter(MetricsText* out, const char* name, const char* help, const std::string& labels,
             uint64_t v) {
  out->add(name, "counter", help, std::string(name) + "{" + labels + "} " + std::to_string(v));
}

constexpr std::array<const char*, 4> kReasons = {"REJECTED", "CANCELED", "BACKEND", "OTHER"};

}  // namespace

void LatencyHistogram::observe(uint64_t ns) {
  const double s = static_cast<double>(ns) * 1e-9;
  size_t b = 0;
  while (b < kBounds.size() && s > kBounds[b]) ++b;
  std::lock_guard lock(mu_);
  counts_[b] += 1;
  total_ns_ += ns;
  count_ += 1;
}

void LatencyHistogram::write(const std::string& name, const std::string& help,
                             const std::string& labels, MetricsText* out) const {
  std::lock_guard lock(mu_);
  uint64_t cumulative = 0;
  for (size_t b = 0; b <= kBounds.size(); ++b) {
    cumulative += counts_[b];
    const std::string le = b < kBounds.size() ? num(kBounds[b]) : "+Inf";
    out->add(name, "histogram", help,
             name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative));
  }
  out->add(name, "histogram", help,
           name + "_sum{" + labels + "} " + num(static_cast<double>(total_ns_) * 1e-9));
  out->add(name, "histogram", help, name + "_count{" + labels + "} " + std::to_string(count_));
}

void ModelStats::record_success(uint64_t request_ns, uint64_t queue_ns,
                                const ExecutionTimes& compute) {
  const uint64_t now_ms =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  {
    std::lock_guard lock(mu_);
    last_inference_ms_ = now_ms;
    add(&success_, request_ns);
    add(&queue_, queue_ns);
    add(&input_, compute.input_ns);
    add(&infer_, compute.infer_ns);
    add(&output_, compute.output_ns);
  }
  request_hist_.observe(request_ns);
  queue_hist_.observe(queue_ns);
  const uint64_t compute_ns = compute.input_ns + compute.infer_ns + compute.output_ns;
  compute_hist_.observe(compute_ns);
  overhead_hist_.observe(request_ns > compute_ns ? request_ns - compute_ns : 0);
}

void ModelStats::record_failure(FailureReason reason, uint64_t request_ns) {
  std::lock_guard lock(mu_);
  add(&fail_, request_ns);
  failures_[static_cast<size_t>(reason)] += 1;
}

void ModelStats::record_execution(int64_t rows, const ExecutionTimes& times) {
  std::lock_guard lock(mu_);
  inference_count_ += static_cast<uint64_t>(rows);
  execution_count_ += 1;
  if (rows == 0) return;  // every request of the execution failed
  BatchStatistics& b = batches_[static_cast<uint64_t>(rows)];
  b.batch_size = static_cast<uint64_t>(rows);
  add(&b.compute_input, times.input_ns);
  add(&b.compute_infer, times.infer_ns);
  add(&b.compute_output, times.output_ns);
}

ModelStatistics ModelStats::snapshot(const std::string& name, const std::string& version) const {
  std::lock_guard lock(mu_);
  ModelStatistics s;
  s.name = name;
  s.version = version;
  s.last_inference_ms = last_inference_ms_;
  s.inference_count = inference_count_;
  s.execution_count = execution_count_;
  s.success = success_;
  s.fail = fail_;
  s.queue = queue_;
  s.compute_input = input_;
  s.compute_infer = infer_;
  s.compute_output = output_;
  for (const auto& [size, b] : batches_) s.batch_stats.push_back(b);
  return s;
}

void ModelStats::write_metrics(const std::string& labels, MetricsText* out) const {
  {
    std::lock_guard lock(mu_);
    counter(out, "nv_inference_request_success", "Number of successful inference requests", labels,
            success_.count);
    for (size_t r = 0; r < kReasons.size(); ++r) {
      counter(out, "nv_inference_request_failure", "Number of failed inference requests",
              labels + ",reason=\"" + kReasons[r] + "\"", failures_[r]);
    }
    counter(out, "nv_inference_count", "Number of inferences performed (batch rows)", labels,
            inference_count_);
    counter(out, "nv_inference_exec_count", "Number of model executions performed", labels,
            execution_count_);
    counter(out, "nv_inference_request_duration_us",
            "Cumulative inference request duration in microseconds", labels,
            (success_.ns + fail_.ns) / 1000);
    counter(out, "nv_inference_queue_duration_us",
            "Cumulative inference queuing duration in microseconds", labels, queue_.ns / 1000);
    counter(out, "nv_inference_compute_input_duration_us",
            "Cumulative compute input duration in microseconds", labels, input_.ns / 1000);
    counter(out, "nv_inference_compute_infer_duration_us",
            "Cumulative compute inference duration in microseconds", labels, infer_.ns / 1000);
    counter(out, "nv_inference_compute_output_duration_us",
            "Cumulative inference compute output duration in microseconds", labels,
            output_.ns / 1000);
  }
  out->add("nv_inference_pending_request_count", "gauge",
           "Instantaneous number of pending requests awaiting execution per-model.",
           "nv_inference_pending_request_count{" + labels + "} " +
               std::to_string(std::max<int64_t>(0, pending.load())));
  request_hist_.write("kiln_request_duration_seconds",
                      "Request latency from arrival to response, seconds", labels, out);
  queue_hist_.write("kiln_queue_duration_seconds", "Time requests wait in the queue, seconds",
                    labels, out);
  compute_hist_.write("kiln_compute_duration_seconds",
                      "Compute time of the execution that ran a request, seconds", labels, out);
  overhead_hist_.write("kiln_server_overhead_seconds",
                       "Request duration minus compute (queueing, scheduling, answering), seconds",
                       labels, out);
}

}  // namespace kiln::server
