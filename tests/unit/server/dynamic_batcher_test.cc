// The dynamic batcher on its own, with instances that record where and how they run: requests
// that find an idle inline-capable instance and nothing queued run on the submitting thread;
// batching with a queue delay, CPU-style instances and busy instances keep the hand-over; an
// instance never runs two batches at once; every request is answered exactly once; stop()
// waits for executions on submitting threads; batches are answered on the responder's threads
// while the instance runs the next one, and stop() waits for those answers too.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "server/dynamic_batcher.h"

namespace kiln::server {
namespace {

// Counts how many batches run on it at once (must stay <= 1) and on which threads.
class RecordingInstance final : public BackendInstance {
 public:
  RecordingInstance(bool inline_ok, std::chrono::microseconds work)
      : inline_ok_(inline_ok), work_(work) {}
  void execute(std::span<PendingRequest* const> batch, ExecutionTimes* times) override {
    const int now = ++running_;
    int seen = max_running_.load();
    while (now > seen && !max_running_.compare_exchange_weak(seen, now)) {
    }
    {
      std::lock_guard lock(mu_);
      threads_.insert(std::this_thread::get_id());
    }
    if (work_.count() > 0) std::this_thread::sleep_for(work_);
    for (PendingRequest* r : batch) r->response = InferResponse{};
    times->infer_ns = 1;
    --running_;
  }
  bool runs_inline() const override { return inline_ok_; }
  int max_running() const { return max_running_.load(); }
  std::set<std::thread::id> threads() const {
    std::lock_guard lock(mu_);
    return threads_;
  }

 private:
  const bool inline_ok_;
  const std::chrono::microseconds work_;
  std::atomic<int> running_{0}, max_running_{0};
  mutable std::mutex mu_;
  std::set<std::thread::id> threads_;
};

struct Harness {
  std::vector<RecordingInstance*> instances;
  std::atomic<int> answered{0};
  std::mutex mu;
  std::vector<std::thread::id> answered_on;
  std::unique_ptr<DynamicBatcher> batcher;

  Harness(BatcherOptions options, int count, bool inline_ok,
          std::chrono::microseconds work = std::chrono::microseconds(0)) {
    if (options.policies.empty()) options.policies.resize(options.priority_levels);
    std::vector<std::unique_ptr<BackendInstance>> list;
    for (int i = 0; i < count; ++i) {
      auto inst = std::make_unique<RecordingInstance>(inline_ok, work);
      instances.push_back(inst.get());
      list.push_back(std::move(inst));
    }
    batcher = std::make_unique<DynamicBatcher>(
        std::move(options), std::move(list),
        [this](RequestPtr r, const ExecutionTimes&) {
          EXPECT_TRUE(r->response.ok());
          std::lock_guard lock(mu);
          answered_on.push_back(std::this_thread::get_id());
          ++answered;
        },
        [](int64_t, const ExecutionTimes&) {});
  }
  void submit() {
    auto r = std::make_unique<PendingRequest>();
    ASSERT_TRUE(batcher->enqueue(r).ok());
  }
  void wait_for(int n) {
    for (int i = 0; i < 5000 && answered.load() < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(answered.load(), n);
  }
};

TEST(DynamicBatcherInline, IdleInstanceRunsOnTheSubmittingThread) {
  Harness h({}, 2, /*inline_ok=*/true);
  h.submit();
  // Answered before enqueue returned, on this thread.
  ASSERT_EQ(h.answered.load(), 1);
  EXPECT_EQ(h.answered_on[0], std::this_thread::get_id());
  EXPECT_EQ(h.batcher->in_flight(), 0);
}

TEST(DynamicBatcherInline, CpuStyleInstancesAndQueueDelaysKeepTheHandOver) {
  {
    Harness h({}, 1, /*inline_ok=*/false);
    h.submit();
    h.wait_for(1);
    EXPECT_NE(h.answered_on[0], std::this_thread::get_id());
  }
  {
    BatcherOptions o;
    o.dynamic = true;
    o.max_batch_rows = 8;
    o.max_queue_delay_us = 1000;  // batching waits for company: never inline
    Harness h(o, 1, /*inline_ok=*/true);
    h.submit();
    h.wait_for(1);
    EXPECT_NE(h.answered_on[0], std::this_thread::get_id());
  }
  {
    BatcherOptions o;
    o.dynamic = true;
    o.max_batch_rows = 8;  // zero delay: a lone request goes at once, so it may run inline
    Harness h(o, 1, /*inline_ok=*/true);
    h.submit();
    ASSERT_EQ(h.answered.load(), 1);
    EXPECT_EQ(h.answered_on[0], std::this_thread::get_id());
  }
}

TEST(DynamicBatcherInline, ConcurrentSubmittersNeverShareAnInstance) {
  constexpr int kThreads = 8, kEach = 300;
  Harness h({}, 2, /*inline_ok=*/true, std::chrono::microseconds(20));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < kEach; ++i) h.submit();
    });
  }
  std::set<std::thread::id> submitters;
  for (auto& t : threads) {
    submitters.insert(t.get_id());
    t.join();
  }
  h.wait_for(kThreads * kEach);
  for (const RecordingInstance* inst : h.instances) EXPECT_EQ(inst->max_running(), 1);
  // Both paths were taken: submitting threads and the instances' own threads.
  int on_submitters = 0;
  for (std::thread::id id : h.answered_on) on_submitters += submitters.count(id) ? 1 : 0;
  EXPECT_GT(on_submitters, 0);
  EXPECT_LT(on_submitters, kThreads * kEach);
  EXPECT_EQ(h.batcher->in_flight(), 0);
}

TEST(DynamicBatcherInline, StopWaitsForExecutionsOnSubmittingThreads) {
  Harness h({}, 1, /*inline_ok=*/true, std::chrono::milliseconds(50));
  std::thread submitter([&h] { h.submit(); });
  while (h.batcher->in_flight() == 0 && h.answered.load() == 0) std::this_thread::yield();
  h.batcher->stop();  // must not return while the instance is still in use
  EXPECT_EQ(h.answered.load(), 1);
  submitter.join();
  auto late = std::make_unique<PendingRequest>();
  EXPECT_EQ(h.batcher->enqueue(late).code(), StatusCode::kUnavailable);
}

// The first batch's answers wait until the instance has run the second batch: were they given
// on the instance's thread, the second batch could never run.
TEST(DynamicBatcherResponder, InstanceRunsTheNextBatchWhileTheLastIsAnswered) {
  BatcherOptions o;
  o.dynamic = true;
  o.max_batch_rows = 16;
  o.preferred_batch_sizes = {16};
  o.max_queue_delay_us = 10'000'000;  // batches go only when 16 requests are there
  o.policies.resize(1);
  auto instance = std::make_unique<RecordingInstance>(false, std::chrono::microseconds(0));
  RecordingInstance* inst = instance.get();
  std::atomic<int> executions{0}, answered{0}, answered_late{0};
  std::vector<std::unique_ptr<BackendInstance>> list;
  list.push_back(std::move(instance));
  DynamicBatcher batcher(
      o, std::move(list),
      [&](RequestPtr, const ExecutionTimes&) {
        for (int i = 0; i < 5000 && executions.load() < 2; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        answered_late += executions.load() >= 2 ? 1 : 0;
        ++answered;
      },
      [&](int64_t, const ExecutionTimes&) { ++executions; });
  for (int i = 0; i < 32; ++i) {
    auto r = std::make_unique<PendingRequest>();
    ASSERT_TRUE(batcher.enqueue(r).ok());
  }
  batcher.stop();  // returns only once every request has its answer
  EXPECT_EQ(answered.load(), 32);
  EXPECT_EQ(answered_late.load(), 32);
  EXPECT_EQ(executions.load(), 2);
  EXPECT_EQ(inst->max_running(), 1);
  EXPECT_EQ(batcher.in_flight(), 0);
}

// Under load from many submitters, with batches large enough to be split across responder
// threads, every request is answered exactly once and in_flight() counts those not yet answered.
TEST(DynamicBatcherResponder, EveryRequestIsAnsweredOnce) {
  constexpr int kThreads = 8, kEach = 400;
  BatcherOptions o;
  o.dynamic = true;
  o.max_batch_rows = 64;
  o.max_queue_delay_us = 200;
  o.responder_threads = 3;
  Harness h(o, 2, /*inline_ok=*/false, std::chrono::microseconds(100));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < kEach; ++i) h.submit();
    });
  }
  for (auto& t : threads) t.join();
  h.batcher->stop();
  EXPECT_EQ(h.answered.load(), kThreads * kEach);
  EXPECT_EQ(h.batcher->in_flight(), 0);
  for (const RecordingInstance* inst : h.instances) EXPECT_EQ(inst->max_running(), 1);
}

// Requests joining a queue that waits out its delay do not wake the instance thread, so the
// batcher must still notice the moment a batch could go: full rows, a preferred size, the token
// budget. With a 5 s delay, each of these must go at once.
TEST(DynamicBatcherWake, BatchesGoBeforeTheDelayOnceTheyCould) {
  auto submit = [](Harness& h, int n, int64_t tokens) {
    for (int i = 0; i < n; ++i) {
      auto r = std::make_unique<PendingRequest>();
      r->tokens = tokens;
      ASSERT_TRUE(h.batcher->enqueue(r).ok());
    }
  };
  auto answered_within = [](Harness& h, int n, std::chrono::milliseconds limit) {
    const auto start = std::chrono::steady_clock::now();
    while (h.answered.load() < n && std::chrono::steady_clock::now() - start < limit) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return h.answered.load() >= n;
  };
  BatcherOptions base;
  base.dynamic = true;
  base.max_queue_delay_us = 5'000'000;
  {
    BatcherOptions o = base;
    o.max_batch_rows = 8;
    Harness h(o, 1, /*inline_ok=*/false);
    submit(h, 8, 0);
    EXPECT_TRUE(answered_within(h, 8, std::chrono::milliseconds(1000))) << "full batch";
  }
  {
    BatcherOptions o = base;
    o.max_batch_rows = 16;
    o.preferred_batch_sizes = {4};
    Harness h(o, 1, /*inline_ok=*/false);
    submit(h, 4, 0);
    EXPECT_TRUE(answered_within(h, 4, std::chrono::milliseconds(1000))) << "preferred size";
  }
  {
    BatcherOptions o = base;
    o.max_batch_rows = 64;
    o.max_batch_tokens = 100;
    Harness h(o, 1, /*inline_ok=*/false);
    submit(h, 3, 50);  // the third does not fit: the first two go
    EXPECT_TRUE(answered_within(h, 2, std::chrono::milliseconds(1000))) << "token budget";
    EXPECT_EQ(h.answered.load(), 2);
  }
  {
    BatcherOptions o = base;
    o.max_batch_rows = 8;
    Harness h(o, 1, /*inline_ok=*/false);
    submit(h, 3, 0);  // nothing could go yet: they wait for the delay
    EXPECT_FALSE(answered_within(h, 1, std::chrono::milliseconds(100)));
    h.batcher->stop();  // stopping sends what is queued
    EXPECT_EQ(h.answered.load(), 3);
  }
}

// A request left behind when a batch goes (it did not fit the token budget) must still go once
// its delay is out, on the other, idle instance, not when the busy one is free again.
TEST(DynamicBatcherWake, LeftoverRequestsGoOnAnIdleInstance) {
  BatcherOptions o;
  o.dynamic = true;
  o.max_batch_rows = 64;
  o.max_batch_tokens = 100;
  o.max_queue_delay_us = 20'000;
  Harness h(o, 2, /*inline_ok=*/false, std::chrono::milliseconds(500));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 2; ++i) {
    auto r = std::make_unique<PendingRequest>();
    r->tokens = 60;  // two do not fit one batch
    ASSERT_TRUE(h.batcher->enqueue(r).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  h.wait_for(2);
  // Both executions overlap (~0.5 s); serialized on one instance they would take ~1 s.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(850));
}

// preserve_ordering: the chunks of a batch are answered on several responder threads, yet
// every answer leaves in submission order.
TEST(DynamicBatcherResponder, PreserveOrderingHoldsAcrossResponderThreads) {
  BatcherOptions o;
  o.dynamic = true;
  o.max_batch_rows = 32;
  o.preferred_batch_sizes = {32};
  o.max_queue_delay_us = 100'000;
  o.preserve_ordering = true;
  o.responder_threads = 4;
  o.policies.resize(1);
  std::vector<std::unique_ptr<BackendInstance>> list;
  list.push_back(std::make_unique<RecordingInstance>(false, std::chrono::microseconds(0)));
  list.push_back(std::make_unique<RecordingInstance>(false, std::chrono::microseconds(0)));
  std::mutex mu;
  std::vector<uint64_t> order;
  DynamicBatcher batcher(
      o, std::move(list),
      [&](RequestPtr r, const ExecutionTimes&) {
        std::lock_guard lock(mu);
        order.push_back(r->sequence);
      },
      [](int64_t, const ExecutionTimes&) {});
  constexpr int kRequests = 32 * 20;
  for (int i = 0; i < kRequests; ++i) {
    auto r = std::make_unique<PendingRequest>();
    ASSERT_TRUE(batcher.enqueue(r).ok());
  }
  batcher.stop();
  ASSERT_EQ(order.size(), static_cast<size_t>(kRequests));
  for (int i = 0; i < kRequests; ++i) EXPECT_EQ(order[i], static_cast<uint64_t>(i));
}

}  // namespace
}  // namespace kiln::server
