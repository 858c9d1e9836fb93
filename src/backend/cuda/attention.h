// Multi-head self-attention over a packed ragged batch (cu_seqlens, no padding): for every
// sequence and head, softmax(Q K^T * scale) V with an online (flash-style) softmax in float.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// Heads and the softmax scale; hidden = num_heads * head_dim.
struct AttentionShape {
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;  ///< positive; usually 1 / sqrt(head_dim)
};

/// How attention() shares queries among a block's 4 warps: 16 rows each (64-query blocks), or
/// 32 (128-query blocks, head_dim up to 64; each shared-memory K/V fragment feeds twice the
/// MMAs). kAuto takes 32 rows when the grid still has a few blocks for every SM.
enum class AttentionTiling { kAuto, kRows16, kRows32 };

/// qkv [tokens, 3 * hidden] holds Q, K then V per token, head h at columns h * head_dim of
/// each; writes ctx [tokens, hidden]. `max_seqlen` is the longest sequence (sizes the grid).
/// Device pointers (cu_seqlens too), `dtype` F16 or BF16, enqueued on `stream`.
/// Tensor-core kernel (mma.sync m16n8k16, FP32 accumulation, P rounded to `dtype` before P.V
/// as flash-attention does): head_dim 16, 32, 64 or 128.
Status attention(DType dtype, const void* qkv, const int32_t* cu_seqlens, int64_t num_sequences,
                 int64_t max_seqlen, const AttentionShape& shape, void* ctx, cudaStream_t stream,
                 AttentionTiling tiling = AttentionTiling::kAuto);
/// Queries per block of attention() at 16 rows per warp: its grid and tiling depend on
/// `max_seqlen` only through ceil(max_seqlen / kAttentionQueryBlock), so a captured launch
/// serves every longest length with the same count.
inline constexpr int64_t kAttentionQueryBlock = 64;
/// Whether attention() supports `head_dim`.
bool attention_supports(int64_t head_dim);

/// The simple reference kernel: one warp per query, float throughout; head_dim up to 256.
Status attention_simple(DType dtype, const void* qkv, const int32_t* cu_seqlens,
                        int64_t num_sequences, int64_t max_seqlen, const AttentionShape& shape,
                        void* ctx, cudaStream_t stream);
/// Whether attention_simple() supports `head_dim`.
bool attention_simple_supports(int64_t head_dim);

}  // namespace kiln::backend::cuda
