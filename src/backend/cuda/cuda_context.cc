#include "backend/cuda/cuda_context.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include "backend/cuda/cuda_check.h"

namespace kiln::backend::cuda {

namespace {

// Copies from the pinned ring into pageable memory with a few threads: one thread's memcpy
// falls well short of what the DMA delivers.
void parallel_copy(char* dst, const char* src, size_t bytes) {
  constexpr size_t kPiece = size_t{256} << 10;
  const auto pieces = static_cast<int64_t>((bytes + kPiece - 1) / kPiece);
#pragma omp parallel for num_threads(4) schedule(static) if (pieces > 1)
  for (int64_t i = 0; i < pieces; ++i) {
    const size_t off = static_cast<size_t>(i) * kPiece;
    std::memcpy(dst + off, src + off, std::min(kPiece, bytes - off));
  }
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

StreamContext::~StreamContext() {
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  for (const auto& g : graphs_) {
    if (g->exec != nullptr) cudaGraphExecDestroy(g->exec);
  }
  for (cudaEvent_t e : chunk_copied_) {
    if (e != nullptr) cudaEventDestroy(e);
  }
  for (const auto& pair : timing_) {
    for (cudaEvent_t e : pair) cudaEventDestroy(e);
  }
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

Result<std::unique_ptr<StreamContext>> StreamContext::create() {
  std::unique_ptr<StreamContext> c(new StreamContext());
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream_, cudaStreamNonBlocking));
  for (cudaEvent_t& e : c->chunk_copied_) {
    KILN_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming | cudaEventBlockingSync));
  }
  KILN_RETURN_IF_ERROR(c->gemm_.init());
  KILN_RETURN_IF_ERROR(c->ring_.reserve(kRingSlots * kChunkBytes));
  return c;
}

Result<void*> StreamContext::input_staging(size_t bytes) {
  KILN_RETURN_IF_ERROR(inputs_.reserve(bytes));
  return inputs_.get();
}

Status StreamContext::copy_to_host(const void* device_src, void* host_dst, size_t bytes,
                                   CopyTimes* times) {
  const auto* src = static_cast<const char*>(device_src);
  auto* dst = static_cast<char*>(host_dst);
  auto* ring = static_cast<char*>(ring_.get());
  const size_t chunks = (bytes + kChunkBytes - 1) / kChunkBytes;
  auto size_of = [&](size_t i) { return std::min(kChunkBytes, bytes - i * kChunkBytes); };
  auto enqueue = [&](size_t i) -> Status {
    const size_t slot = i % kRingSlots;
    KILN_CUDA_CHECK(cudaMemcpyAsync(ring + slot * kChunkBytes, src + i * kChunkBytes, size_of(i),
                                    cudaMemcpyDeviceToHost, stream_));
    KILN_CUDA_CHECK(cudaEventRecord(chunk_copied_[slot], stream_));
    return ok_status();
  };
  for (size_t i = 0; i < std::min<size_t>(kRingSlots, chunks); ++i) {
    KILN_RETURN_IF_ERROR(enqueue(i));
  }
  for (size_t i = 0; i < chunks; ++i) {
    const size_t slot = i % kRingSlots;
    auto t0 = std::chrono::steady_clock::now();
    KILN_RETURN_IF_ERROR(wait(chunk_copied_[slot]));
    if (times != nullptr) times->wait_ms += ms_since(t0);
    t0 = std::chrono::steady_clock::now();
    parallel_copy(dst + i * kChunkBytes, ring + slot * kChunkBytes, size_of(i));
    if (times != nullptr) times->copy_ms += ms_since(t0);
    if (i + kRingSlots < chunks) KILN_RETURN_IF_ERROR(enqueue(i + kRingSlots));
  }
  // Any error of the kernels before the copies surfaced at the event waits; this catches a
  // stream left in error with nothing to copy.
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream_));
  return ok_status();
}

int StreamContext::spin_us() {
  static const int us = [] {
    const char* v = std::getenv("KILN_CUDA_SPIN_US");
    if (v == nullptr || *v == '\0') return kDefaultSpinUs;
    char* end = nullptr;
    const long parsed = std::strtol(v, &end, 10);
    return (*end == '\0' && parsed >= -1 && parsed <= 1'000'000) ? static_cast<int>(parsed)
                                                                 : kDefaultSpinUs;
  }();
  return us;
}

Status StreamContext::wait(cudaEvent_t event) {
  const int spin = spin_us();
  if (spin != 0) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spin);
    for (;;) {
      const cudaError_t e = cudaEventQuery(event);
      if (e == cudaSuccess) return ok_status();
      if (e != cudaErrorNotReady) KILN_CUDA_CHECK(e);
      if (spin > 0 && std::chrono::steady_clock::now() >= until) break;
    }
  }
  KILN_CUDA_CHECK(cudaEventSynchronize(event));  // sleeps: the event is a blocking-sync one
  return ok_status();
}

Result<std::array<cudaEvent_t, 2>> StreamContext::timing_events(size_t i) {
  while (timing_.size() <= i) {
    std::array<cudaEvent_t, 2> pair{};
    KILN_CUDA_CHECK(cudaEventCreate(&pair[0]));
    if (const cudaError_t e = cudaEventCreate(&pair[1]); e != cudaSuccess) {
      cudaEventDestroy(pair[0]);
      return cuda_error(e, "cudaEventCreate", __FILE__, __LINE__);
    }
    timing_.push_back(pair);
  }
  return timing_[i];
}

Result<StreamContext::Graph*> StreamContext::graph_for(const std::array<int64_t, 4>& key,
                                                       size_t bytes, CachingAllocator& allocator) {
  ++uses_;
  for (auto& g : graphs_) {
    if (g->key == key) {
      g->last_use = uses_;
      ++(g->exec != nullptr ? counts_.replays : counts_.captures);  // null: never captured
      return g.get();
    }
  }
  if (sightings_.size() >= kMaxSightings) sightings_.clear();
  if (++sightings_[key] < kCaptureAfter || bytes > kMaxGraphBytes) {
    ++counts_.eager;
    return nullptr;
  }
  sightings_.erase(key);
  // The cache may hand out a larger block than asked for: the budget counts what is held.
  KILN_ASSIGN_OR_RETURN(CachingAllocator::Block block, allocator.allocate(bytes));
  while (!graphs_.empty() &&
         (graphs_.size() >= kMaxGraphs || graph_bytes_ + block.bytes() > kMaxGraphBytes)) {
    // Nothing runs on this context now, so the oldest graph and its block can go.
    auto oldest =
        std::min_element(graphs_.begin(), graphs_.end(),
                         [](const auto& a, const auto& b) { return a->last_use < b->last_use; });
    if ((*oldest)->exec != nullptr) KILN_CUDA_CHECK(cudaGraphExecDestroy((*oldest)->exec));
    graph_bytes_ -= (*oldest)->block.bytes();
    graphs_.erase(oldest);
    ++counts_.evictions;
  }
  auto g = std::make_unique<Graph>();
  g->key = key;
  g->last_use = uses_;
  g->block = std::move(block);
  graph_bytes_ += g->block.bytes();
  graphs_.push_back(std::move(g));
  ++counts_.captures;
  return graphs_.back().get();
}

void StreamContext::drop_graph(const Graph* graph) {
  for (auto it = graphs_.begin(); it != graphs_.end(); ++it) {
    if (it->get() != graph) continue;
    if ((*it)->exec != nullptr) cudaGraphExecDestroy((*it)->exec);
    graph_bytes_ -= (*it)->block.bytes();
    graphs_.erase(it);
    return;
  }
}

StreamContext::GraphCounts ContextPool::graph_counts() {
  std::lock_guard<std::mutex> lock(mu_);
  StreamContext::GraphCounts sum;
  for (const auto& c : free_) sum += c->graph_counts();
  return sum;
}

Result<ContextPool::Lease> ContextPool::acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      auto ctx = std::move(free_.back());
      free_.pop_back();
      return Lease(this, std::move(ctx));
    }
  }
  KILN_ASSIGN_OR_RETURN(auto ctx, StreamContext::create());
  return Lease(this, std::move(ctx));
}

void ContextPool::release(std::unique_ptr<StreamContext> ctx) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(std::move(ctx));
}

}  // namespace kiln::backend::cuda
