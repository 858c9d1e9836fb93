#include "server/dynamic_batcher.h"

#include <algorithm>
#include <string>

#include "core/thread_name.h"

namespace kiln::server {

DynamicBatcher::DynamicBatcher(BatcherOptions options,
                               std::vector<std::unique_ptr<BackendInstance>> instances,
                               CompletionFn complete, ExecutionFn on_execution)
    : options_(std::move(options)),
      instances_(std::move(instances)),
      complete_(std::move(complete)),
      on_execution_(std::move(on_execution)),
      queues_(options_.priority_levels + 1),
      busy_(instances_.size(), 0),
      claimed_(instances_.size(), 0) {
  inline_ok_ =
      (!options_.dynamic || options_.max_queue_delay_us == 0) && !options_.preserve_ordering;
  delay_waits_ = options_.dynamic && options_.max_queue_delay_us > 0;
  wake_rows_ = options_.max_batch_rows;
  for (int64_t p : options_.preferred_batch_sizes) wake_rows_ = std::min(wake_rows_, p);
  if (options_.dynamic && options_.max_batch_rows > 1) {  // else every batch is one request
    responder_threads_ = options_.responder_threads > 0
                             ? static_cast<size_t>(options_.responder_threads)
                             : std::clamp<size_t>(2 * instances_.size(), 2, 8);
    responder_ = std::make_unique<Responder>(static_cast<int>(responder_threads_));
  }
  for (size_t i = 0; i < instances_.size(); ++i) {
    threads_.emplace_back([this, i] {
      core::set_thread_name("kiln-inst-" + std::to_string(i));
      run(i);
    });
  }
}

DynamicBatcher::~DynamicBatcher() { stop(); }

Status DynamicBatcher::enqueue(RequestPtr& request) {
  std::unique_lock lock(mu_);
  if (stopping_) return unavailable("model '" + request->request.model_name + "' is unloading");
  // As Triton does, 0 and levels outside [1, priority_levels] mean the default level.
  uint32_t level = request->request.priority;
  if (level < 1 || level > options_.priority_levels) level = options_.default_priority_level;
  const QueuePolicy& policy = options_.policies[level - 1];
  auto& queue = queues_[level - 1];
  if (policy.max_queue_size > 0 && queue.size() >= policy.max_queue_size) {
    return unavailable("exceeds maximum queue size " + std::to_string(policy.max_queue_size) +
                       " of model '" + request->request.model_name + "'");
  }
  const Clock::time_point now = Clock::now();
  uint64_t timeout_us = policy.default_timeout_us;
  if (policy.allow_timeout_override && request->request.timeout_us > 0) {
    timeout_us = request->request.timeout_us;
  }
  if (timeout_us > 0) request->deadline = now + std::chrono::microseconds(timeout_us);
  request->priority_level = level;
  request->enqueued = now;
  request->sequence = next_sequence_++;
  if (const int index = inline_instance_locked(); index >= 0) {
    claimed_[index] = 1;
    ++executing_;
    ++inline_running_;
    lock.unlock();
    Batch batch;
    batch.rows = request->rows;
    batch.requests.push_back(std::move(request));
    execute(static_cast<size_t>(index), batch);
    lock.lock();
    claimed_[index] = 0;
    --executing_;
    --inline_running_;
    // Wake the instance threads only when one has something to do: take what queued meanwhile
    // (it may have been woken while this instance was claimed, and gone back to sleep), or let
    // stop() see inline_running_ reach 0. Waking them after every inline request cost two
    // context switches per request (bench/e2e/server_cpu_per_request.sh).
    if (queued_ > 0 || stopping_) cv_.notify_all();
    return ok_status();
  }
  const bool was_empty = queued_ == 0;
  const bool deadline = request->deadline != Clock::time_point::max();
  queued_rows_ += request->rows;
  queued_tokens_ += request->tokens;
  queue.push_back(std::move(request));
  ++queued_;
  // An instance thread waiting out the queue delay already wakes when the oldest request is due;
  // a request that joins it changes nothing until a batch could go (each wake-up costs a
  // context switch, the largest single cost of a request here). A new deadline or a first
  // request sets a new wake time.
  if (was_empty || deadline || !delay_waits_ || queued_rows_ >= wake_rows_ ||
      (options_.max_batch_tokens > 0 && queued_tokens_ >= options_.max_batch_tokens)) {
    cv_.notify_one();
  }
  return ok_status();
}

int DynamicBatcher::inline_instance_locked() const {
  if (!inline_ok_ || queued_ > 0) return -1;
  for (size_t i = 0; i < instances_.size(); ++i) {
    if (!busy_[i] && !claimed_[i] && instances_[i]->runs_inline()) return static_cast<int>(i);
  }
  return -1;
}

int64_t DynamicBatcher::in_flight() const {
  std::lock_guard lock(mu_);
  return queued_ + executing_ + responding_.load();
}

void DynamicBatcher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  {
    std::unique_lock lock(mu_);  // executions on submitting threads use the instances too
    cv_.wait(lock, [this] { return inline_running_ == 0; });
  }
  if (responder_ != nullptr) responder_->drain();
}

void DynamicBatcher::expire_locked(Clock::time_point now, std::vector<RequestPtr>* rejected) {
  auto& delayed = queues_.back();
  for (size_t level = 0; level + 1 < queues_.size(); ++level) {
    auto& queue = queues_[level];
    for (auto it = queue.begin(); it != queue.end();) {
      if ((*it)->deadline > now) {
        ++it;
        continue;
      }
      if (options_.policies[level].reject_on_timeout) {
        (*it)->response = unavailable("request timeout expired in the queue of model '" +
                                      (*it)->request.model_name + "'");
        queued_rows_ -= (*it)->rows;
        queued_tokens_ -= (*it)->tokens;
        rejected->push_back(std::move(*it));
        --queued_;
      } else {
        // DELAY: the request stays queued but yields to every request that has not timed out.
        (*it)->deadline = Clock::time_point::max();
        delayed.push_back(std::move(*it));
      }
      it = queue.erase(it);
    }
  }
}

bool DynamicBatcher::take_batch_locked(Clock::time_point now, Batch* batch,
                                       Clock::time_point* wake) {
  if (queued_ == 0) return false;
  // Walk the queues in priority order to see how large the next batch can be.
  const auto& preferred = options_.preferred_batch_sizes;
  int64_t rows = 0, tokens = 0;
  int64_t best_preferred = 0;  // the largest preferred size a prefix of the queue fills exactly
  bool full = false;
  Clock::time_point oldest = Clock::time_point::max();
  for (const auto& queue : queues_) {
    if (!queue.empty()) oldest = std::min(oldest, queue.front()->enqueued);
    for (const auto& r : queue) {
      *wake = std::min(*wake, r->deadline);
      if (full) continue;
      if (rows > 0 &&
          (rows + r->rows > options_.max_batch_rows ||
           (options_.max_batch_tokens > 0 && tokens + r->tokens > options_.max_batch_tokens))) {
        full = true;
        continue;
      }
      rows += r->rows;
      tokens += r->tokens;
      if (std::find(preferred.begin(), preferred.end(), rows) != preferred.end()) {
        best_preferred = rows;
      }
      if (!options_.dynamic || rows >= options_.max_batch_rows) full = true;
    }
  }
  const Clock::time_point due = oldest + std::chrono::microseconds(options_.max_queue_delay_us);
  const bool waited_out = options_.max_queue_delay_us > 0 && now >= due;
  bool dispatch = full || stopping_ || best_preferred > 0 || now >= due;
  if (!dispatch && !preferred.empty() &&
      rows >= *std::max_element(preferred.begin(), preferred.end())) {
    dispatch = true;
  }
  if (!dispatch) {
    *wake = std::min(*wake, due);
    return false;
  }
  // Triton's rule: a preferred size the queue fills goes at once (the largest such); once the
  // delay has run out (or the model is stopping), everything pending goes.
  const int64_t target = best_preferred > 0 && !waited_out && !stopping_ ? best_preferred : rows;
  for (auto& queue : queues_) {
    while (!queue.empty() && batch->rows < target) {
      RequestPtr& r = queue.front();
      if (batch->rows > 0 && batch->rows + r->rows > target) break;
      batch->rows += r->rows;
      queued_rows_ -= r->rows;
      queued_tokens_ -= r->tokens;
      batch->requests.push_back(std::move(r));
      queue.pop_front();
      --queued_;
    }
    if (batch->rows >= target) break;
  }
  return !batch->requests.empty();
}

void DynamicBatcher::run(size_t index) {
  for (;;) {
    Batch batch;
    std::vector<RequestPtr> rejected;
    int64_t taken = 0;
    bool exit = false;
    {
      std::unique_lock lock(mu_);
      for (;;) {
        const Clock::time_point now = Clock::now();
        expire_locked(now, &rejected);
        Clock::time_point wake = Clock::time_point::max();
        // While a submitting thread runs on this instance, the queue is for the others (and
        // for this thread once it is released: notify_all).
        if (!claimed_[index] && take_batch_locked(now, &batch, &wake)) break;
        if (!rejected.empty()) break;
        if (stopping_ && queued_ == 0) {
          exit = true;
          break;
        }
        if (wake == Clock::time_point::max()) {
          cv_.wait(lock);
        } else {
          cv_.wait_until(lock, wake);
        }
      }
      taken = static_cast<int64_t>(batch.requests.size() + rejected.size());
      executing_ += taken;
      busy_[index] = batch.requests.empty() ? 0 : 1;
      // Requests left behind may have no thread timing their delay any more (enqueue wakes
      // threads only when a request could change a decision): let an idle one look.
      if (queued_ > 0) cv_.notify_one();
    }
    for (auto& r : rejected) finish(std::move(r), ExecutionTimes{});
    if (!batch.requests.empty()) execute(index, batch);
    {
      std::lock_guard lock(mu_);
      executing_ -= taken;  // answer() may have handed the requests on
      busy_[index] = 0;
    }
    if (exit) return;
  }
}

void DynamicBatcher::execute(size_t index, Batch& batch) {
  std::vector<PendingRequest*> raw;
  raw.reserve(batch.requests.size());
  const Clock::time_point start = Clock::now();
  for (auto& r : batch.requests) {
    r->dispatched = start;
    raw.push_back(r.get());
  }
  ExecutionTimes times;
  instances_[index]->execute(raw, &times);
  // Triton counts inferences of successful requests only.
  int64_t rows_ok = 0;
  for (const auto& r : batch.requests) rows_ok += r->response.ok() ? r->rows : 0;
  on_execution_(rows_ok, times);
  answer(batch, times);
}

void DynamicBatcher::answer(Batch& batch, const ExecutionTimes& times) {
  const size_t n = batch.requests.size();
  if (responder_ == nullptr || n < 2) {
    for (auto& r : batch.requests) finish(std::move(r), times);
    return;
  }
  // Chunks of at least 4 requests: below that a hand-over costs more than it saves.
  constexpr size_t kMinChunk = 4;
  const size_t chunks = std::clamp<size_t>(n / kMinChunk, 1, responder_threads_);
  responding_.fetch_add(static_cast<int64_t>(n));
  for (size_t c = 0; c < chunks; ++c) {
    auto part = std::make_shared<std::vector<RequestPtr>>();
    for (size_t i = c * n / chunks; i < (c + 1) * n / chunks; ++i) {
      part->push_back(std::move(batch.requests[i]));
    }
    responder_->post([this, part, times] {
      for (auto& r : *part) {
        finish(std::move(r), times);
        responding_.fetch_sub(1);
      }
    });
  }
  batch.requests.clear();
}

void DynamicBatcher::finish(RequestPtr request, const ExecutionTimes& times) {
  if (!options_.preserve_ordering) {
    complete_(std::move(request), times);
    return;
  }
  std::unique_lock lock(order_mu_);
  const uint64_t seq = request->sequence;
  parked_.emplace(seq, std::make_pair(std::move(request), times));
  if (releasing_) return;
  releasing_ = true;
  for (;;) {
    auto it = parked_.find(next_release_);
    if (it == parked_.end()) break;
    auto [r, t] = std::move(it->second);
    parked_.erase(it);
    ++next_release_;
    lock.unlock();
    complete_(std::move(r), t);
    lock.lock();
  }
  releasing_ = false;
}

}  // namespace kiln::server
