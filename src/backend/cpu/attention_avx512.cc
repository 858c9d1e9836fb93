// AVX-512 attention for one (sequence, head). Compiled with AVX-512 flags; see attention.h.
#include <algorithm>
#include <cmath>

#include "backend/cpu/attention.h"
#include "backend/cpu/simd_avx512.h"

namespace kiln::backend::cpu::detail {

namespace {

using simd::tail_mask;

// kRows query rows are processed together so each K^T and V load feeds kRows FMAs; kRows is
// chosen so the P.V accumulators (kRows x kDim/16 registers) fit the 32 zmm registers.
template <int kDim>
constexpr int rows_per_block() {
  return kDim <= 32 ? 8 : (kDim == 64 ? 4 : 2);
}

template <int kDim>
void head_kernel(const float* q, const float* k, const float* v, int64_t len, int64_t ld,
                 float scale, float* out, uint16_t* out_bf16, int64_t ld_out, float* scratch) {
  constexpr int kRows = rows_per_block<kDim>();
  constexpr int kVec = kDim / 16;
  const int64_t padded = (len + 31) / 32 * 32;
  float* kt = scratch;                   // [kDim, padded]
  float* scores = scratch + kDim * padded;  // [kRows, padded]

  for (int64_t j = 0; j < padded; ++j) {
    const float* krow = k + std::min(j, len - 1) * ld;
    const float keep = j < len ? 1.0f : 0.0f;
    for (int d = 0; d < kDim; ++d) kt[d * padded + j] = krow[d] * keep;
  }
  const __m512 vscale = _mm512_set1_ps(scale);

  for (int64_t i0 = 0; i0 < len; i0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, len - i0);
    const float* qrow[kRows];
    for (int r = 0; r < kRows; ++r) qrow[r] = q + (i0 + std::min<int64_t>(r, rows - 1)) * ld;

    // S = scale * Q K^T for this block of rows, 16 keys at a time.
    for (int64_t j0 = 0; j0 < padded; j0 += 16) {
      __m512 acc[kRows];
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
      for (int d = 0; d < kDim; ++d) {
        const __m512 kv = _mm512_loadu_ps(kt + d * padded + j0);
#pragma GCC unroll 8
        for (int r = 0; r < kRows; ++r) {
          acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(qrow[r][d]), kv, acc[r]);
        }
      }
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) {
        _mm512_storeu_ps(scores + r * padded + j0, _mm512_mul_ps(acc[r], vscale));
      }
    }

    // Softmax over the valid keys of each row; 1/sum is applied to the output instead.
    float inv_sum[kRows];
    for (int r = 0; r < kRows; ++r) {
      float* s = scores + r * padded;
      if (r >= rows) {
        inv_sum[r] = 0.0f;
        std::fill(s, s + padded, 0.0f);
        continue;
      }
      __m512 vmax = _mm512_set1_ps(-INFINITY);
      for (int64_t j = 0; j < len; j += 16) {
        vmax = _mm512_mask_max_ps(vmax, tail_mask(len - j), vmax, _mm512_loadu_ps(s + j));
      }
      const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
      __m512 vsum = _mm512_setzero_ps();
      for (int64_t j = 0; j < len; j += 16) {
        const __mmask16 mk = tail_mask(len - j);
        const __m512 e = _mm512_maskz_mov_ps(mk, simd::exp_ps(_mm512_sub_ps(_mm512_loadu_ps(s + j), m)));
        _mm512_storeu_ps(s + j, e);
        vsum = _mm512_add_ps(vsum, e);
      }
      inv_sum[r] = 1.0f / _mm512_reduce_add_ps(vsum);
    }

    // O = P V, accumulated in registers for the whole block.
    __m512 acc[kRows][kVec];
    for (int r = 0; r < kRows; ++r) {
      for (int c = 0; c < kVec; ++c) acc[r][c] = _mm512_setzero_ps();
    }
    for (int64_t j = 0; j < len; ++j) {
      __m512 vv[kVec];
      for (int c = 0; c < kVec; ++c) vv[c] = _mm512_loadu_ps(v + j * ld + 16 * c);
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) {
        const __m512 p = _mm512_set1_ps(scores[r * padded + j]);
        for (int c = 0; c < kVec; ++c) acc[r][c] = _mm512_fmadd_ps(p, vv[c], acc[r][c]);
      }
    }
    for (int r = 0; r < rows; ++r) {
      const __m512 inv = _mm512_set1_ps(inv_sum[r]);
      for (int c = 0; c < kVec; ++c) {
        const __m512 y = _mm512_mul_ps(acc[r][c], inv);
        if (out_bf16 != nullptr) {
          simd::store_bf16(out_bf16 + (i0 + r) * ld_out + 16 * c, y, 0xffff);
        } else {
          _mm512_storeu_ps(out + (i0 + r) * ld_out + 16 * c, y);
        }
      }
    }
  }
}

}  // namespace

void attention_head_avx512(const float* q, const float* k, const float* v, int64_t len,
                           int64_t ld_qkv, const AttentionShape& shape, float* out,
                           uint16_t* out_bf16, int64_t ld_out, float* scratch) {
  switch (shape.head_dim) {
    case 16:
      return head_kernel<16>(q, k, v, len, ld_qkv, shape.scale, out, out_bf16, ld_out, scratch);
    case 32:
      return head_kernel<32>(q, k, v, len, ld_qkv, shape.scale, out, out_bf16, ld_out, scratch);
    case 48:
      return head_kernel<48>(q, k, v, len, ld_qkv, shape.scale, out, out_bf16, ld_out, scratch);
    case 64:
      return head_kernel<64>(q, k, v, len, ld_qkv, shape.scale, out, out_bf16, ld_out, scratch);
    case 128:
      return head_kernel<128>(q, k, v, len, ld_qkv, shape.scale, out, out_bf16, ld_out, scratch);
    default:
      return attention_head_scalar(q, k, v, len, ld_qkv, shape, out, out_bf16, ld_out, scratch);
  }
}

}  // namespace kiln::backend::cpu::detail
