// Multi-head self-attention over a packed ragged batch: each sequence attends only to itself, so
// no work is spent on padding. Scores are formed for a block of query rows at a time (never the
// whole L x L matrix), softmax-ed, and multiplied with V while the block is in cache.
#pragma once

#include <cstdint>

namespace kiln::backend::cpu {

/// Shapes and layout of one attention call.
struct AttentionShape {
  int64_t num_heads = 0;
  int64_t head_dim = 0;
  float scale = 1.0f;  ///< usually 1/sqrt(head_dim)
};

/// qkv: [tokens, 3 * heads * head_dim] rows (Q | K | V, heads contiguous inside each) as the
/// fused QKV GEMM writes them. Writes the context [tokens, heads * head_dim] to `out` (float) or,
/// when `out_bf16` is not null, to `out_bf16` instead. Parallel over (sequence, head).
void attention(const float* qkv, const int32_t* cu_seqlens, int64_t num_sequences,
               const AttentionShape& shape, float* out, uint16_t* out_bf16);

/// The same for BF16 engines: `qkv` is bfloat16 (as the BF16 QKV GEMM writes it) and the
/// context is written as bfloat16. Q.K and P.V use AVX512_BF16 dot products with float
/// accumulation; the softmax is computed in float.
void attention_bf16(const uint16_t* qkv, const int32_t* cu_seqlens, int64_t num_sequences,
                    const AttentionShape& shape, uint16_t* out);

namespace detail {
/// Portable reference kernel for one (sequence, head).
void attention_head_scalar(const float* q, const float* k, const float* v, int64_t len,
                           int64_t ld_qkv, const AttentionShape& shape, float* out,
                           uint16_t* out_bf16, int64_t ld_out, float* scratch);
/// AVX-512 kernel for one (sequence, head); head_dim must be a multiple of 16.
void attention_head_avx512(const float* q, const float* k, const float* v, int64_t len,
                           int64_t ld_qkv, const AttentionShape& shape, float* out,
                           uint16_t* out_bf16, int64_t ld_out, float* scratch);
/// Portable reference for bfloat16 inputs (computes in float).
void attention_head_bf16_scalar(const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                int64_t len, int64_t ld_qkv, const AttentionShape& shape,
                                uint16_t* out, int64_t ld_out, float* scratch);
/// AVX512_BF16 kernel for one (sequence, head); head_dim 32, 64 or 128, else the reference.
void attention_head_bf16_avx512(const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                int64_t len, int64_t ld_qkv, const AttentionShape& shape,
                                uint16_t* out, int64_t ld_out, float* scratch);
/// Floats of scratch one call needs for a sequence of `len` tokens.
int64_t attention_scratch_floats(int64_t len, int64_t head_dim);
}  // namespace detail

}  // namespace kiln::backend::cpu
