// Device-side FP8 (E4M3) helpers shared by the quantization kernels (fp8.cu) and the kernels
// that write an FP8 copy of their output (layer_norm.cu): 8 values to 8 bytes, a row's scale.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

#include "backend/cuda/device_util.cuh"
#include "backend/cuda/fp8.h"

namespace kiln::backend::cuda {

// max(m, |p[0..8)|) for one 16-byte vector.
template <typename T>
__device__ __forceinline__ float max_abs8(const T* p, float m) {
  float a[8];
  load8(p, a);
#pragma unroll
  for (int j = 0; j < 8; ++j) m = fmaxf(m, fabsf(a[j]));
  return m;
}

__device__ __forceinline__ float warp_max(float m) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  return m;
}

// e4m3(a[j] * inv) for 8 values, element 0 in the lowest byte.
__device__ __forceinline__ uint2 pack8(const float (&a)[8], float inv) {
  uint32_t word[2] = {0, 0};
#pragma unroll
  for (int j = 0; j < 8; j += 2) {
    // Two at a time, saturating to +-448 (never to infinity: E4M3 has none).
    const __nv_fp8x2_storage_t pair = __nv_cvt_float2_to_fp8x2(
        make_float2(a[j] * inv, a[j + 1] * inv), __NV_SATFINITE, __NV_E4M3);
    word[j / 4] |= static_cast<uint32_t>(pair) << (16 * ((j / 2) % 2));
  }
  return make_uint2(word[0], word[1]);
}

__device__ __forceinline__ float scale_from_amax(float amax) {
  // All zeros: scale 1. Tiny maxima (BF16 reaches 1e-38): at least FLT_MIN, so that 1 / scale
  // stays finite and zeros stay zeros. An infinite amax gives an infinite scale on purpose: the
  // GEMM's output then shows the overflow instead of hiding it.
  if (amax == 0.0f) return 1.0f;
  return fmaxf(amax / kFp8E4M3Max, 1.17549435e-38f);
}

}  // namespace kiln::backend::cuda
