#include "backend/cuda/memory.h"

#include <utility>

#include "backend/cuda/cuda_check.h"

namespace kiln::backend::cuda {

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

Result<DeviceBuffer> DeviceBuffer::allocate(size_t bytes) {
  DeviceBuffer b;
  if (bytes == 0) return b;
  KILN_CUDA_CHECK(cudaMalloc(&b.ptr_, bytes));
  b.bytes_ = bytes;
  return b;
}

Result<DeviceBuffer> DeviceBuffer::upload(const void* host, size_t bytes) {
  KILN_ASSIGN_OR_RETURN(DeviceBuffer b, allocate(bytes));
  if (bytes > 0) KILN_CUDA_CHECK(cudaMemcpy(b.ptr_, host, bytes, cudaMemcpyHostToDevice));
  return b;
}

PinnedBuffer::~PinnedBuffer() {
  if (ptr_ != nullptr) cudaFreeHost(ptr_);
}

PinnedBuffer::PinnedBuffer(PinnedBuffer&& other) noexcept
    : ptr_(std::exchange(other.ptr_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

PinnedBuffer& PinnedBuffer::operator=(PinnedBuffer&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) cudaFreeHost(ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

Result<PinnedBuffer> PinnedBuffer::allocate(size_t bytes) {
  PinnedBuffer b;
  KILN_RETURN_IF_ERROR(b.reserve(bytes));
  return b;
}

Status PinnedBuffer::reserve(size_t bytes) {
  if (bytes <= bytes_) return ok_status();
  if (ptr_ != nullptr) {
    KILN_CUDA_CHECK(cudaFreeHost(ptr_));
    ptr_ = nullptr;
    bytes_ = 0;
  }
  // Grow geometrically so a slowly rising batch size does not pin memory on every call.
  const size_t want = bytes + bytes / 2;
  KILN_CUDA_CHECK(cudaHostAlloc(&ptr_, want, cudaHostAllocDefault));
  bytes_ = want;
  return ok_status();
}

CachingAllocator::Block& CachingAllocator::Block::operator=(Block&& other) noexcept {
  if (this != &other) {
    reset();
    owner_ = std::exchange(other.owner_, nullptr);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

void CachingAllocator::Block::reset() {
  if (owner_ != nullptr && ptr_ != nullptr) owner_->release(ptr_, bytes_);
  owner_ = nullptr;
  ptr_ = nullptr;
  bytes_ = 0;
}

CachingAllocator::~CachingAllocator() { trim(); }

Result<CachingAllocator::Block> CachingAllocator::allocate(size_t bytes) {
  constexpr size_t kGranule = size_t{2} << 20;
  Block b;
  b.owner_ = this;
  std::unique_lock<std::mutex> lock(mu_);
  auto it = free_.lower_bound(bytes);
  if (it != free_.end() && it->first <= 2 * bytes + kGranule) {
    b.bytes_ = it->first;
    b.ptr_ = it->second;
    free_.erase(it);
    return b;
  }
  const size_t rounded = (bytes + kGranule - 1) / kGranule * kGranule;
  cudaError_t e = cudaMalloc(&b.ptr_, rounded);
  if (e == cudaErrorMemoryAllocation && !free_.empty()) {
    cudaGetLastError();  // reset the last-error state before retrying
    for (auto& [size, ptr] : free_) {
      cudaFree(ptr);
      reserved_ -= size;
    }
    free_.clear();
    e = cudaMalloc(&b.ptr_, rounded);
  }
  if (e != cudaSuccess) {
    b.owner_ = nullptr;
    b.ptr_ = nullptr;
    return cuda_error(e, "cudaMalloc (activations)", __FILE__, __LINE__);
  }
  b.bytes_ = rounded;
  reserved_ += rounded;
  return b;
}

void CachingAllocator::release(void* ptr, size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.emplace(bytes, ptr);
}

void CachingAllocator::trim() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [size, ptr] : free_) {
    cudaFree(ptr);
    reserved_ -= size;
  }
  free_.clear();
}

size_t CachingAllocator::reserved_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reserved_;
}

}  // namespace kiln::backend::cuda
