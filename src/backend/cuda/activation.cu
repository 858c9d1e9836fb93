#include "backend/cuda/activation.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace kiln::backend::cuda {

namespace {

constexpr int kThreads = 256;

// 8 elements (one 16-byte vector) per thread; grid-stride so any size fits the grid.
template <typename T>
__global__ void bias_gelu_erf_kernel(T* x, const T* __restrict__ bias, int64_t vectors, int cols) {
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < vectors;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = v * 8;
    float a[8], b[8];
    load8(x + i, a);
    load8(bias + i % cols, b);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float z = a[j] + b[j];
      a[j] = 0.5f * z * (1.0f + erff(z * 0.70710678118654752f));
    }
    store8(x + i, a);
  }
}

template <typename T>
__global__ void convert_kernel(const float* __restrict__ in, T* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if constexpr (std::is_same_v<T, __half>) {
      out[i] = __float2half_rn(in[i]);
    } else {
      out[i] = __float2bfloat16_rn(in[i]);
    }
  }
}

template <typename T>
__global__ void fill_random_kernel(T* __restrict__ out, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    // splitmix64 of (seed, i): cheap, well mixed, reproducible.
    uint64_t z =
        (static_cast<uint64_t>(seed) << 40) + static_cast<uint64_t>(i) + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float v = static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;
    if constexpr (std::is_same_v<T, __half>) {
      out[i] = __float2half_rn(v);
    } else {
      out[i] = __float2bfloat16_rn(v);
    }
  }
}

unsigned int grid_for(int64_t items) {
  constexpr int64_t kMaxBlocks = 132 * 16;  // enough to fill an H100; the loops stride past it
  const int64_t blocks = (items + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < kMaxBlocks ? (blocks > 0 ? blocks : 1) : kMaxBlocks);
}

}  // namespace

Status bias_gelu_erf(DType dtype, void* x, const void* bias, int64_t rows, int64_t cols,
                     cudaStream_t stream) {
  if (cols % 8 != 0) return invalid_argument("bias_gelu_erf: cols must be a multiple of 8");
  const int64_t vectors = rows * cols / 8;
  if (vectors == 0) return ok_status();
  return dispatch_half(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    bias_gelu_erf_kernel<T><<<grid_for(vectors), kThreads, 0, stream>>>(
        static_cast<T*>(x), static_cast<const T*>(bias), vectors, static_cast<int>(cols));
    return last_launch_status("bias_gelu_erf_kernel");
  });
}

Status convert_from_f32(DType dtype, const float* in, void* out, int64_t n, cudaStream_t stream) {
  if (n == 0) return ok_status();
  return dispatch_half(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    convert_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(in, static_cast<T*>(out), n);
    return last_launch_status("convert_kernel");
  });
}

Status fill_random(DType dtype, void* out, int64_t n, uint32_t seed, cudaStream_t stream) {
  if (n == 0) return ok_status();
  return dispatch_half(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    fill_random_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(static_cast<T*>(out), n, seed);
    return last_launch_status("fill_random_kernel");
  });
}

}  // namespace kiln::backend::cuda
