#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/embedding.h"

namespace kiln::backend::cuda {

namespace {

constexpr int kWarps = 8;  // tokens per block, one warp each

// The sequence holding token t: the last s with cu[s] <= t.
__device__ __forceinline__ int sequence_of(const int32_t* cu, int num_sequences, int t) {
  int lo = 0, hi = num_sequences;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (cu[mid] <= t) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

template <typename T, int kVec>
__global__ void __launch_bounds__(kWarps * 32)
    embed_layer_norm_kernel(EmbeddingTables e, const int32_t* __restrict__ ids,
                            const int32_t* __restrict__ type_ids, const int32_t* __restrict__ cu,
                            int num_sequences, int num_tokens, T* __restrict__ out,
                            float* __restrict__ out_f32) {
  const int lane = threadIdx.x % 32;
  const int t = blockIdx.x * kWarps + threadIdx.x / 32;
  if (t >= num_tokens) return;
  const int hidden = static_cast<int>(e.hidden);
  const int start = cu[sequence_of(cu, num_sequences, t)];
  const int id = ids[t];
  int64_t position = t - start;
  if (e.position_offset > 0) {
    // RoBERTa numbers non-pad tokens from pad + 1 and gives pad tokens pad itself
    // (transformers' create_position_ids_from_input_ids): count the non-pad tokens up to t.
    const int pad = static_cast<int>(e.position_offset) - 1;
    int counted = 0;
    for (int i = start; i <= t; i += 32) {
      const int j = i + lane;
      counted += __popc(__ballot_sync(0xffffffffu, j <= t && ids[j] != pad));
    }
    position = id == pad ? pad : pad + counted;
  }
  const float* word = e.word + static_cast<int64_t>(id) * hidden;
  const float* pos = e.position + position * hidden;
  const float* type = e.token_type != nullptr
                          ? e.token_type + static_cast<int64_t>(type_ids ? type_ids[t] : 0) * hidden
                          : nullptr;
  float v[kVec][8] = {};
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    if (!row_vec_valid<kVec>(i, lane, hidden)) continue;
    const int c = (lane + 32 * i) * 8;
    float w[8], p[8];
    load8(word + c, w);
    load8(pos + c, p);
    if (type != nullptr) {
      float ty[8];
      load8(type + c, ty);
#pragma unroll
      for (int j = 0; j < 8; ++j) v[i][j] = (w[j] + ty[j]) + p[j];  // transformers' order
    } else {
#pragma unroll
      for (int j = 0; j < 8; ++j) v[i][j] = w[j] + p[j];
    }
  }
  warp_layer_norm<kVec>(v, hidden, lane, e.gamma, e.beta, e.eps);
  const int64_t row = static_cast<int64_t>(t) * hidden;
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    if (!row_vec_valid<kVec>(i, lane, hidden)) continue;
    const int c = (lane + 32 * i) * 8;
    store8(out + row + c, v[i]);
    if (out_f32 != nullptr) store8(out_f32 + row + c, v[i]);
  }
}

}  // namespace

Status embed_layer_norm(DType dtype, const EmbeddingTables& tables, const int32_t* ids,
                        const int32_t* type_ids, const int32_t* cu_seqlens, int64_t num_sequences,
                        int64_t num_tokens, void* out, float* out_f32, cudaStream_t stream) {
  if (num_tokens == 0) return ok_status();
  return dispatch_half(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatch_row_vectors(tables.hidden, [&](auto vec) {
      constexpr int kVec = decltype(vec)::value;
      embed_layer_norm_kernel<T, kVec><<<blocks_for(num_tokens, kWarps), kWarps * 32, 0, stream>>>(
          tables, ids, type_ids, cu_seqlens, static_cast<int>(num_sequences),
          static_cast<int>(num_tokens), static_cast<T*>(out), out_f32);
      return last_launch_status("embed_layer_norm_kernel");
    });
  });
}

}  // namespace kiln::backend::cuda
