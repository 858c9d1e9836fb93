// Triton's dynamic batcher: per-priority FIFO queues with queue policies, batches formed up to
// max_batch_size rows and (for text models) a token budget, preferred batch sizes and a maximum
// queue delay, one thread per model instance taking the next batch whenever it is free.
// A request that finds nothing queued and an instance idle runs at once on the submitting
// thread when the instance allows it (BackendInstance::runs_inline) and batching would not wait
// for company anyway (no dynamic batching, or a zero queue delay): waking the instance's
// thread would only add its wake-up (tens of microseconds on a VM) to the request.
// The requests of a batch are answered on a Responder's threads while the instance's thread
// takes the next batch.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "server/responder.h"
#include "server/scheduler.h"

namespace kiln::server {

/// Queue policy of one priority level (Triton's ModelQueuePolicy).
struct QueuePolicy {
  bool reject_on_timeout = true;  ///< REJECT (true) or DELAY (false)
  uint64_t default_timeout_us = 0;
  bool allow_timeout_override = false;
  uint64_t max_queue_size = 0;  ///< 0 = unlimited
};

/// Batching parameters, from the model configuration.
struct BatcherOptions {
  bool dynamic = false;          ///< false: every request executes alone, FIFO
  int64_t max_batch_rows = 1;    ///< max_batch_size (1 without batching)
  int64_t max_batch_tokens = 0;  ///< 0 = no token budget
  std::vector<int64_t> preferred_batch_sizes;
  uint64_t max_queue_delay_us = 0;
  bool preserve_ordering = false;
  uint32_t priority_levels = 1;  ///< at least 1
  uint32_t default_priority_level = 1;
  std::vector<QueuePolicy> policies;  ///< one per level (index 0 = level 1)
  /// Threads answering executed batches of several requests; 0 = two per instance, 2 to 8.
  int responder_threads = 0;
};

class DynamicBatcher final : public Scheduler {
 public:
  /// Starts one thread per instance.
  DynamicBatcher(BatcherOptions options, std::vector<std::unique_ptr<BackendInstance>> instances,
                 CompletionFn complete, ExecutionFn on_execution);
  ~DynamicBatcher() override;

  Status enqueue(RequestPtr& request) override;
  int64_t in_flight() const override;
  void stop() override;

 private:
  struct Batch {
    std::vector<RequestPtr> requests;
    int64_t rows = 0;
  };
  void run(size_t index);
  // Executes `batch` on instance `index` and answers its requests (no lock held).
  void execute(size_t index, Batch& batch);
  // With mu_ held: an idle instance that may run a request on the submitting thread, or -1.
  int inline_instance_locked() const;
  // With mu_ held: moves timed-out requests out (REJECT) or to the delayed queue (DELAY).
  void expire_locked(Clock::time_point now, std::vector<RequestPtr>* rejected);
  // With mu_ held: decides whether a batch should go now; else sets *wake.
  bool take_batch_locked(Clock::time_point now, Batch* batch, Clock::time_point* wake);
  void finish(RequestPtr request, const ExecutionTimes& times);
  // Answers the requests of an executed batch: on the responder's threads when there are
  // several (in chunks, so that several threads share a large batch), else right here.
  void answer(Batch& batch, const ExecutionTimes& times);

  const BatcherOptions options_;
  std::vector<std::unique_ptr<BackendInstance>> instances_;
  CompletionFn complete_;
  ExecutionFn on_execution_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::deque<RequestPtr>> queues_;  // one per priority level, then "delayed"
  int64_t queued_ = 0;
  int64_t queued_rows_ = 0, queued_tokens_ = 0;
  bool delay_waits_ = false;  // dynamic batching with a queue delay
  int64_t wake_rows_ = 1;     // queued rows from which a batch may go before the delay is out
  int64_t executing_ = 0;
  uint64_t next_sequence_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  bool inline_ok_ = false;     // batching never waits: see the file comment
  std::vector<char> busy_;     // per instance: its thread is executing a batch
  std::vector<char> claimed_;  // per instance: a submitting thread is executing on it
  int inline_running_ = 0;
  std::unique_ptr<Responder> responder_;  // null without batching
  size_t responder_threads_ = 0;
  std::atomic<int64_t> responding_{0};  // requests handed to the responder, not yet answered

  // preserve_ordering: responses wait here until every earlier request has been answered.
  std::mutex order_mu_;
  std::map<uint64_t, std::pair<RequestPtr, ExecutionTimes>> parked_;
  uint64_t next_release_ = 0;
  bool releasing_ = false;
};

}  // namespace kiln::server
