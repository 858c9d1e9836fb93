// AVX-512 attention for one (sequence, head). Compiled with AVX-512 flags; see attention.h.
#include <algorithm>
#include <cmath>

#include "backend/cpu/attention.h"
#include "backend/cpu/simd_avx512.h"

namespace kiln::backend::cpu::detail {

namespace {

using simd::rows_per_block;
using simd::tail_mask;
using simd::transpose16x16;

template <int kDim>
void head_kernel(const float* q, const float* k, const float* v, int64_t len, int64_t ld,
                 float scale, float* out, uint16_t* out_bf16, int64_t ld_out, float* scratch) {
  constexpr int kRows = rows_per_block<kDim>();
  constexpr int kVec = kDim / 16;
  const int64_t padded = (len + 31) / 32 * 32;
  float* kt = scratch;                      // [kDim, padded]
  float* scores = scratch + kDim * padded;  // [kRows, padded]

  // Q, K and V rows of one head are 3 * hidden floats apart: too far for the hardware
  // prefetchers. Request them all into L2 up front so the loads below overlap.
  for (int64_t j = 0; j < len; ++j) {
    for (int d = 0; d < kDim; d += 16) {
      _mm_prefetch(reinterpret_cast<const char*>(q + j * ld + d), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(k + j * ld + d), _MM_HINT_T1);
      _mm_prefetch(reinterpret_cast<const char*>(v + j * ld + d), _MM_HINT_T1);
    }
  }
  for (int64_t j = 0; j < padded; j += 16) {
    for (int d = 0; d < kDim; d += 16) {
      transpose16x16(k + j * ld + d, ld, std::max<int64_t>(0, std::min<int64_t>(16, len - j)),
                     kt + d * padded + j, padded);
    }
  }
  const __m512 vscale = _mm512_set1_ps(scale);

  for (int64_t i0 = 0; i0 < len; i0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, len - i0);
    const float* qrow[kRows];
    for (int r = 0; r < kRows; ++r) qrow[r] = q + (i0 + std::min<int64_t>(r, rows - 1)) * ld;

    // S = scale * Q K^T for this block of rows, 32 keys at a time so that each broadcast of a
    // Q element feeds two FMAs; the row maxima are tracked on the way.
    __m512 vmax[kRows];
    for (int r = 0; r < kRows; ++r) vmax[r] = _mm512_set1_ps(-INFINITY);
    for (int64_t j0 = 0; j0 < padded; j0 += 32) {
      __m512 acc0[kRows], acc1[kRows];
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
      const float* ktj = kt + j0;
      for (int d = 0; d < kDim; ++d) {
        const __m512 k0 = _mm512_loadu_ps(ktj + d * padded);
        const __m512 k1 = _mm512_loadu_ps(ktj + d * padded + 16);
#pragma GCC unroll 8
        for (int r = 0; r < kRows; ++r) {
          const __m512 qv = _mm512_set1_ps(qrow[r][d]);
          acc0[r] = _mm512_fmadd_ps(qv, k0, acc0[r]);
          acc1[r] = _mm512_fmadd_ps(qv, k1, acc1[r]);
        }
      }
      simd::store_scores<kRows>(acc0, acc1, vscale, j0, len, scores, padded, vmax);
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
      inv_sum[r] = simd::softmax_row(s, len, padded, vmax[r],
                                     [&](int64_t j, __m512 e) { _mm512_storeu_ps(s + j, e); });
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
