// One warp per query row: scores by warp reductions, online softmax, P.V in float. Slow but
// plain; the tensor-core kernel is tested against it and against the CPU.
#include <cmath>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"

namespace kiln::backend::cuda {

namespace {

constexpr int kWarps = 4;  // queries per block

template <typename T>
__device__ __forceinline__ float to_f(T x) {
  if constexpr (std::is_same_v<T, __half>) {
    return __half2float(x);
  } else {
    return __bfloat162float(x);
  }
}

// Lane l holds dimensions l, l + 32, ...: kPer of them.
template <typename T, int kPer>
__global__ void __launch_bounds__(kWarps * 32)
    attention_simple_kernel(const T* __restrict__ qkv, const int32_t* __restrict__ cu, int hidden,
                            int head_dim, float scale, T* __restrict__ ctx) {
  const int lane = threadIdx.x % 32;
  const int q = blockIdx.x * kWarps + threadIdx.x / 32;
  const int s = blockIdx.y, h = blockIdx.z;
  const int start = cu[s], len = cu[s + 1] - start;
  if (q >= len) return;
  const int64_t stride = 3 * static_cast<int64_t>(hidden);
  const T* qrow = qkv + (start + q) * stride + h * head_dim;
  const T* kcol = qkv + start * stride + hidden + h * head_dim;
  const T* vcol = kcol + hidden;
  float qv[kPer], o[kPer];
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + 32 * i;
    qv[i] = d < head_dim ? to_f(qrow[d]) : 0.0f;
    o[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int k = 0; k < len; ++k) {
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = lane + 32 * i;
      if (d < head_dim) dot += qv[i] * to_f(kcol[k * stride + d]);
    }
    const float score = warp_sum(dot) * scale;
    const float m_new = fmaxf(m, score);
    const float corr = expf(m - m_new);
    const float p = expf(score - m_new);
    l = l * corr + p;
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
      const int d = lane + 32 * i;
      const float v = d < head_dim ? to_f(vcol[k * stride + d]) : 0.0f;
      o[i] = o[i] * corr + p * v;
    }
    m = m_new;
  }
  T* out = ctx + (start + q) * static_cast<int64_t>(hidden) + h * head_dim;
#pragma unroll
  for (int i = 0; i < kPer; ++i) {
    const int d = lane + 32 * i;
    if (d >= head_dim) continue;
    if constexpr (std::is_same_v<T, __half>) {
      out[d] = __float2half_rn(o[i] / l);
    } else {
      out[d] = __float2bfloat16_rn(o[i] / l);
    }
  }
}

template <typename T, int kPer>
Status launch(const void* qkv, const int32_t* cu, int64_t num_sequences, int64_t max_seqlen,
              const AttentionShape& s, void* ctx, cudaStream_t stream) {
  const dim3 grid(blocks_for(max_seqlen, kWarps), static_cast<unsigned>(num_sequences),
                  static_cast<unsigned>(s.num_heads));
  attention_simple_kernel<T, kPer><<<grid, kWarps * 32, 0, stream>>>(
      static_cast<const T*>(qkv), cu, static_cast<int>(s.num_heads * s.head_dim),
      static_cast<int>(s.head_dim), s.scale, static_cast<T*>(ctx));
  return last_launch_status("attention_simple_kernel");
}

}  // namespace

bool attention_simple_supports(int64_t head_dim) { return head_dim > 0 && head_dim <= 256; }

Status attention_simple(DType dtype, const void* qkv, const int32_t* cu_seqlens,
                        int64_t num_sequences, int64_t max_seqlen, const AttentionShape& shape,
                        void* ctx, cudaStream_t stream) {
  if (!attention_simple_supports(shape.head_dim)) {
    return unimplemented("attention_simple: head_dim " + std::to_string(shape.head_dim));
  }
  if (num_sequences == 0 || max_seqlen == 0) return ok_status();
  return dispatch_half(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t per = (shape.head_dim + 31) / 32;
    if (per <= 1)
      return launch<T, 1>(qkv, cu_seqlens, num_sequences, max_seqlen, shape, ctx, stream);
    if (per <= 2)
      return launch<T, 2>(qkv, cu_seqlens, num_sequences, max_seqlen, shape, ctx, stream);
    if (per <= 4)
      return launch<T, 4>(qkv, cu_seqlens, num_sequences, max_seqlen, shape, ctx, stream);
    return launch<T, 8>(qkv, cu_seqlens, num_sequences, max_seqlen, shape, ctx, stream);
  });
}

}  // namespace kiln::backend::cuda
