#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/fp8.h"
#include "backend/cuda/fp8_util.cuh"

namespace kiln::backend::cuda {

namespace {

constexpr int kThreads = 256;

unsigned int grid_for(int64_t items) {
  constexpr int64_t kMaxBlocks = 132 * 8;  // enough to fill an H100; the loops stride past it
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < kMaxBlocks ? (blocks > 0 ? blocks : 1) : kMaxBlocks);
}

// max |x| over the tensor into *amax (zeroed before): per-thread maxima over 8-element vectors,
// a block reduction, one atomic per block. Non-negative floats order as their bit patterns, so
// the atomic is an integer max. (fmaxf drops NaN; an infinity is kept and shows downstream.)
template <typename T>
__global__ void amax_kernel(const T* __restrict__ x, int64_t vectors, float* amax) {
  float m = 0.0f;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < vectors;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    m = max_abs8(x + v * 8, m);
  }
  m = warp_max(m);
  __shared__ float block_max[kThreads / 32];
  if ((threadIdx.x & 31) == 0) block_max[threadIdx.x / 32] = m;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w) m = fmaxf(m, block_max[w]);
    if (m > 0.0f) atomicMax(reinterpret_cast<unsigned int*>(amax), __float_as_uint(m));
  }
}

// out = e4m3(x * inv), 8 elements per thread, written as one 8-byte store. With `amax`, the
// scale comes from it and block 0 publishes it to *scale_out for the GEMM.
template <typename T>
__global__ void quantize_kernel(const T* __restrict__ x, int64_t vectors, const float* amax,
                                const float* scale_in, float* scale_out, uint2* __restrict__ out) {
  const float scale = amax != nullptr ? scale_from_amax(*amax) : *scale_in;
  if (scale_out != nullptr && blockIdx.x == 0 && threadIdx.x == 0) *scale_out = scale;
  const float inv = 1.0f / scale;
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < vectors;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float a[8];
    load8(x + v * 8, a);
    out[v] = pack8(a, inv);
  }
}

// One warp per row: the row's max |x| (first pass), then e4m3(x / scale) (second pass, from L1/L2).
template <typename T>
__global__ void quantize_rows_kernel(const T* __restrict__ x, int64_t rows, int64_t cols,
                                     float* __restrict__ scales, uint2* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t vectors = cols / 8;
  for (int64_t r = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * blockDim.x / 32) {
    const T* row = x + r * cols;
    float m = 0.0f;
    for (int64_t v = lane; v < vectors; v += 32) m = max_abs8(row + v * 8, m);
    const float scale = scale_from_amax(warp_max(m));
    if (lane == 0) scales[r] = scale;
    const float inv = 1.0f / scale;
    for (int64_t v = lane; v < vectors; v += 32) {
      float a[8];
      load8(row + v * 8, a);
      out[r * vectors + v] = pack8(a, inv);
    }
  }
}

Status check(const void* x, int64_t n, const void* out) {
  if (n < 0 || n % 8 != 0) return invalid_argument("quantize_fp8: n must be a multiple of 8");
  if ((reinterpret_cast<uintptr_t>(x) | reinterpret_cast<uintptr_t>(out)) % 16 != 0) {
    return invalid_argument("quantize_fp8: x and out must be 16-byte aligned");
  }
  return ok_status();
}

}  // namespace

Status quantize_fp8_dynamic(DType dtype, const void* x, int64_t n, float* amax, float* scale,
                            void* out, cudaStream_t stream) {
  KILN_RETURN_IF_ERROR(check(x, n, out));
  if (amax == nullptr || scale == nullptr || amax == scale) {
    return invalid_argument("quantize_fp8_dynamic: amax and scale must be two distinct floats");
  }
  KILN_CUDA_CHECK(cudaMemsetAsync(amax, 0, sizeof(float), stream));
  const int64_t vectors = n / 8;
  return dispatch_half(dtype, [&](auto tag) -> Status {
    using T = typename decltype(tag)::type;
    if (vectors > 0) {
      amax_kernel<T>
          <<<grid_for(vectors), kThreads, 0, stream>>>(static_cast<const T*>(x), vectors, amax);
      KILN_RETURN_IF_ERROR(last_launch_status("amax_kernel"));
    }
    // Runs even for an empty tensor, so that *scale is always written.
    quantize_kernel<T><<<grid_for(vectors), kThreads, 0, stream>>>(
        static_cast<const T*>(x), vectors, amax, nullptr, scale, static_cast<uint2*>(out));
    return last_launch_status("quantize_kernel");
  });
}

Status quantize_fp8(DType dtype, const void* x, int64_t n, const float* scale, void* out,
                    cudaStream_t stream) {
  KILN_RETURN_IF_ERROR(check(x, n, out));
  if (scale == nullptr) return invalid_argument("quantize_fp8: scale is required");
  const int64_t vectors = n / 8;
  if (vectors == 0) return ok_status();
  return dispatch_half(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    quantize_kernel<T><<<grid_for(vectors), kThreads, 0, stream>>>(
        static_cast<const T*>(x), vectors, nullptr, scale, nullptr, static_cast<uint2*>(out));
    return last_launch_status("quantize_kernel");
  });
}

Status quantize_fp8_rows(DType dtype, const void* x, int64_t rows, int64_t cols, float* scales,
                         void* out, cudaStream_t stream) {
  if (rows < 0 || cols <= 0) return invalid_argument("quantize_fp8_rows: empty or negative shape");
  KILN_RETURN_IF_ERROR(check(x, cols, out));
  if (scales == nullptr) return invalid_argument("quantize_fp8_rows: scales are required");
  if (rows == 0) return ok_status();
  const int64_t blocks = std::min<int64_t>((rows + kThreads / 32 - 1) / (kThreads / 32), 132 * 16);
  return dispatch_half(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    quantize_rows_kernel<T><<<static_cast<unsigned int>(blocks), kThreads, 0, stream>>>(
        static_cast<const T*>(x), rows, cols, scales, static_cast<uint2*>(out));
    return last_launch_status("quantize_rows_kernel");
  });
}

}  // namespace kiln::backend::cuda
