// Device and pinned host memory as RAII handles, and the caching allocator that keeps
// activation memory off cudaMalloc once a workload has been seen.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>

#include "kiln/status.h"

namespace kiln::backend::cuda {

/// Device memory from cudaMalloc, freed on destruction. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  /// `bytes` of device memory (256-byte aligned, as cudaMalloc gives).
  static Result<DeviceBuffer> allocate(size_t bytes);
  /// Copies `bytes` of host memory into a new buffer (synchronously).
  static Result<DeviceBuffer> upload(const void* host, size_t bytes);

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

/// Page-locked host memory (cudaHostAlloc), for asynchronous copies. Move-only.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(PinnedBuffer&& other) noexcept;
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  static Result<PinnedBuffer> allocate(size_t bytes);
  /// Makes the buffer at least `bytes` long; the old contents are lost when it grows.
  Status reserve(size_t bytes);

  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

/// Hands out device blocks and keeps freed ones for reuse, so steady-state runs do not call
/// cudaMalloc (which also synchronizes the device). A request reuses the smallest free block
/// that is at least as large and at most twice as large; new blocks are rounded up to 2 MiB.
/// When cudaMalloc runs out of memory the cache is emptied and the allocation tried again.
/// Thread-safe. A block must only be released once the device work using it has finished
/// (executors synchronize their stream before they return a block).
class CachingAllocator {
 public:
  /// A block; returned to the allocator when destroyed. Move-only.
  class Block {
   public:
    Block() = default;
    ~Block() { reset(); }
    Block(Block&& other) noexcept { *this = std::move(other); }
    Block& operator=(Block&& other) noexcept;
    Block(const Block&) = delete;
    Block& operator=(const Block&) = delete;

    void* get() const { return ptr_; }
    size_t bytes() const { return bytes_; }
    void reset();

   private:
    friend class CachingAllocator;
    CachingAllocator* owner_ = nullptr;
    void* ptr_ = nullptr;
    size_t bytes_ = 0;
  };

  CachingAllocator() = default;
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  Result<Block> allocate(size_t bytes);
  /// Frees every cached (unused) block.
  void trim();
  /// Bytes held: blocks in use plus cached ones.
  size_t reserved_bytes() const;

 private:
  void release(void* ptr, size_t bytes);

  mutable std::mutex mu_;
  std::multimap<size_t, void*> free_;  // size -> block
  size_t reserved_ = 0;
};

}  // namespace kiln::backend::cuda
