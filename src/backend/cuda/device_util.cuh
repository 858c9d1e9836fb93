// Shared device-side helpers of the CUDA kernels: 16-bit element types, 16-byte vector loads
// and stores that convert to float, warp reductions, and the host-side dtype dispatch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

template <typename T>
struct Pack2;
template <>
struct Pack2<__half> {
  using type = __half2;
};
template <>
struct Pack2<__nv_bfloat16> {
  using type = __nv_bfloat162;
};

__device__ __forceinline__ float2 to_float2(__half2 v) { return __half22float2(v); }
__device__ __forceinline__ float2 to_float2(__nv_bfloat162 v) { return __bfloat1622float2(v); }

template <typename T>
__device__ __forceinline__ typename Pack2<T>::type pack2(float lo, float hi);
template <>
__device__ __forceinline__ __half2 pack2<__half>(float lo, float hi) {
  return __floats2half2_rn(lo, hi);
}
template <>
__device__ __forceinline__ __nv_bfloat162 pack2<__nv_bfloat16>(float lo, float hi) {
  return __floats2bfloat162_rn(lo, hi);
}

/// Two floats rounded to T and packed in one register, `lo` in the low half.
template <typename T>
__device__ __forceinline__ uint32_t pack2_u32(float lo, float hi) {
  const typename Pack2<T>::type v = pack2<T>(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

/// 8 consecutive elements (16 bytes, aligned) as floats.
template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&f)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  const auto* h = reinterpret_cast<const typename Pack2<T>::type*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 v = to_float2(h[i]);
    f[2 * i] = v.x;
    f[2 * i + 1] = v.y;
  }
}

__device__ __forceinline__ void load8(const float* p, float (&f)[8]) {
  const float4 a = reinterpret_cast<const float4*>(p)[0];
  const float4 b = reinterpret_cast<const float4*>(p)[1];
  f[0] = a.x, f[1] = a.y, f[2] = a.z, f[3] = a.w;
  f[4] = b.x, f[5] = b.y, f[6] = b.z, f[7] = b.w;
}

template <typename T>
__device__ __forceinline__ void store8(T* p, const float (&f)[8]) {
  uint4 raw;
  auto* h = reinterpret_cast<typename Pack2<T>::type*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = pack2<T>(f[2 * i], f[2 * i + 1]);
  *reinterpret_cast<uint4*>(p) = raw;
}

__device__ __forceinline__ void store8(float* p, const float (&f)[8]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(f[0], f[1], f[2], f[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(f[4], f[5], f[6], f[7]);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// A token row of `hidden` elements spread over a warp: lane l holds the 8-element vectors
/// l, l + 32, ... as v[0], v[1], ...; kVec is the most any lane holds.
template <int kVec>
__device__ __forceinline__ bool row_vec_valid(int i, int lane, int hidden) {
  return (lane + 32 * i) * 8 < hidden;
}

/// LayerNorm of a warp-held row in place (two passes over registers, float throughout).
template <int kVec>
__device__ __forceinline__ void warp_layer_norm(float (&v)[kVec][8], int hidden, int lane,
                                                const float* gamma, const float* beta, float eps) {
  float sum = 0.0f;
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    if (!row_vec_valid<kVec>(i, lane, hidden)) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) sum += v[i][j];
  }
  const float mean = warp_sum(sum) / static_cast<float>(hidden);
  float sq = 0.0f;
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    if (!row_vec_valid<kVec>(i, lane, hidden)) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float d = v[i][j] - mean;
      sq += d * d;
    }
  }
  const float rstd = rsqrtf(warp_sum(sq) / static_cast<float>(hidden) + eps);
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    if (!row_vec_valid<kVec>(i, lane, hidden)) continue;
    const int c = (lane + 32 * i) * 8;
    float g[8], b[8];
    load8(gamma + c, g);
    load8(beta + c, b);
#pragma unroll
    for (int j = 0; j < 8; ++j) v[i][j] = (v[i][j] - mean) * rstd * g[j] + b[j];
  }
}

/// Calls f(std::integral_constant<int, kVec>{}) with the vectors per lane a warp needs for a
/// row of `hidden` elements (a multiple of 8, at most 2048).
template <typename F>
Status dispatch_row_vectors(int64_t hidden, F&& f) {
  if (hidden <= 0 || hidden % 8 != 0) {
    return invalid_argument("cuda: hidden size must be a positive multiple of 8");
  }
  const int64_t v = (hidden / 8 + 31) / 32;
  if (v <= 1) return f(std::integral_constant<int, 1>{});
  if (v <= 2) return f(std::integral_constant<int, 2>{});
  if (v <= 3) return f(std::integral_constant<int, 3>{});
  if (v <= 4) return f(std::integral_constant<int, 4>{});
  if (v <= 6) return f(std::integral_constant<int, 6>{});
  if (v <= 8) return f(std::integral_constant<int, 8>{});
  return unimplemented("cuda: hidden sizes above 2048 are not supported");
}

/// A type carried as a value, for dispatch lambdas.
template <typename T>
struct TypeTag {
  using type = T;
};

/// Calls f(TypeTag<T>{}) with the CUDA element type of `dtype` (F16 or BF16).
template <typename F>
Status dispatch_half(DType dtype, F&& f) {
  if (dtype == DType::kF16) return f(TypeTag<__half>{});
  if (dtype == DType::kBF16) return f(TypeTag<__nv_bfloat16>{});
  return invalid_argument("cuda kernels take F16 or BF16 tensors");
}

/// Blocks of `threads` covering `n` work items.
inline unsigned int blocks_for(int64_t n, int threads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

}  // namespace kiln::backend::cuda
