// What one in-flight run needs on its own: a stream, a cuBLASLt runner (handle, workspace,
// per-shape plans), pinned staging for the inputs and a ring of pinned chunks for the outputs.
// A pool hands contexts out so concurrent runs never share one.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/cuda/gemm.h"
#include "backend/cuda/memory.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// Per-run resources; used by one thread at a time.
class StreamContext {
 public:
  /// A forward pass captured as a CUDA graph for one batch shape, with the activation block it
  /// was captured on (graphs replay fixed pointers). Shapes run eagerly until they have been
  /// seen kCaptureAfter times (so every kernel is loaded and every GEMM planned, and one-off
  /// shapes, as most dynamic batches are, never cost a capture or evict a graph that repeats);
  /// then they are captured once and replayed.
  struct Graph {
    std::array<int64_t, 4> key{};  // tokens, sequences, attention blocks, has type ids
    CachingAllocator::Block block;
    cudaGraphExec_t exec = nullptr;  // null until captured
    uint64_t last_use = 0;
  };
  /// How batches ran: replaying a graph, capturing one, or eagerly; graphs evicted for others.
  struct GraphCounts {
    uint64_t replays = 0, captures = 0, eager = 0, evictions = 0;
    GraphCounts& operator+=(const GraphCounts& o) {
      replays += o.replays;
      captures += o.captures;
      eager += o.eager;
      evictions += o.evictions;
      return *this;
    }
  };
  /// Host time spent returning outputs, for profiles.
  struct CopyTimes {
    double wait_ms = 0;  // waiting for the device (kernels and DMA)
    double copy_ms = 0;  // copying from pinned memory to the caller's buffer
  };

  ~StreamContext();
  StreamContext(const StreamContext&) = delete;
  StreamContext& operator=(const StreamContext&) = delete;

  /// A context on the current device.
  static Result<std::unique_ptr<StreamContext>> create();

  cudaStream_t stream() const { return stream_; }
  GemmRunner& gemm() { return gemm_; }
  /// Pinned staging for the inputs, at least `bytes` long.
  Result<void*> input_staging(size_t bytes);
  /// Copies `bytes` of device memory (written by work already enqueued on the stream) to
  /// pageable host memory through the pinned ring, overlapping the DMA of one chunk with the
  /// host copy of the previous one; returns when everything has arrived.
  Status copy_to_host(const void* device_src, void* host_dst, size_t bytes,
                      CopyTimes* times = nullptr);
  /// The graph of `key`; a new, uncaptured entry with a block of `bytes` from `allocator` when
  /// the shape has now been seen kCaptureAfter times (the least recently used graph goes when
  /// kMaxGraphs or kMaxGraphBytes would be exceeded); null while the shape should run eagerly.
  Result<Graph*> graph_for(const std::array<int64_t, 4>& key, size_t bytes,
                           CachingAllocator& allocator);
  /// Forgets `graph` (a capture that failed; its shape starts counting again). The stream must
  /// be idle: the block goes back to the allocator.
  void drop_graph(const Graph* graph);
  /// Counts of graph_for's answers so far (captures include those that failed; runs too large
  /// for graphs never ask and are not counted).
  const GraphCounts& graph_counts() const { return counts_; }
  /// The i-th pair of timing events (created on first use), for per-op profiles.
  Result<std::array<cudaEvent_t, 2>> timing_events(size_t i);

  /// How long a thread waiting for the device polls before it sleeps until the device's
  /// interrupt wakes it: KILN_CUDA_SPIN_US microseconds, -1 (the default) polls until done, as
  /// CUDA's default does with few threads. Polling answers a few microseconds sooner; sleeping
  /// leaves the core to a server's other threads while a large batch runs. (The default stays
  /// -1 until the server and batch-1 benchmarks on the H100 have measured both.)
  static int spin_us();
  static constexpr int kDefaultSpinUs = -1;

 private:
  static constexpr int kRingSlots = 4;
  static constexpr size_t kMaxGraphs = 128;
  static constexpr size_t kMaxGraphBytes = size_t{512} << 20;  // their activation blocks
  static constexpr uint32_t kCaptureAfter = 3;
  static constexpr size_t kMaxSightings = 4096;  // shapes counted before the counts start over
  static constexpr size_t kChunkBytes = size_t{2} << 20;
  StreamContext() = default;
  // Waits for `event` (created with cudaEventBlockingSync): polls for spin_us(), then sleeps.
  static Status wait(cudaEvent_t event);

  cudaStream_t stream_ = nullptr;
  GemmRunner gemm_;
  PinnedBuffer inputs_;
  PinnedBuffer ring_;
  std::array<cudaEvent_t, kRingSlots> chunk_copied_{};
  std::vector<std::array<cudaEvent_t, 2>> timing_;
  std::vector<std::unique_ptr<Graph>> graphs_;
  size_t graph_bytes_ = 0;
  std::map<std::array<int64_t, 4>, uint32_t> sightings_;  // shapes not captured yet
  uint64_t uses_ = 0;
  GraphCounts counts_;
};

/// Free contexts (which hold activation blocks of their graphs: destroy the pool before the
/// allocator); acquire() creates one when none is free, so there are as many as the highest
/// number of concurrent runs. Thread-safe.
class ContextPool {
 public:
  /// A context, returned to the pool when the lease dies.
  class Lease {
   public:
    Lease(ContextPool* pool, std::unique_ptr<StreamContext> ctx)
        : pool_(pool), ctx_(std::move(ctx)) {}
    ~Lease() {
      if (ctx_ != nullptr) pool_->release(std::move(ctx_));
    }
    Lease(Lease&&) = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    StreamContext& operator*() const { return *ctx_; }
    StreamContext* operator->() const { return ctx_.get(); }

   private:
    ContextPool* pool_;
    std::unique_ptr<StreamContext> ctx_;
  };

  Result<Lease> acquire();
  /// The graph counts of the contexts not in use, summed.
  StreamContext::GraphCounts graph_counts();

 private:
  void release(std::unique_ptr<StreamContext> ctx);

  std::mutex mu_;
  std::vector<std::unique_ptr<StreamContext>> free_;
};

}  // namespace kiln::backend::cuda
