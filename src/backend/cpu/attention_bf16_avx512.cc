// Attention on a bfloat16 QKV for one (sequence, head), for BF16 engines: Q.K^T and P.V run on
// AVX512_BF16 dot products (vdpbf16ps: two products per float lane) with float accumulation;
// the softmax is computed in float and the probabilities are rounded to bfloat16 for P.V, as
// flash-attention kernels do. Compiled with AVX-512 flags; see attention.h.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/attention.h"
#include "backend/cpu/simd_avx512.h"

namespace kiln::backend::cpu::detail {

namespace {

using simd::rows_per_block;
using simd::tail_mask;

inline uint32_t load_word(const uint16_t* p) {  // two adjacent bfloat16 values
  uint32_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}

inline __m512 dot2(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(a), reinterpret_cast<__m512bh>(b));
}

// Scratch, in 32-bit words: kt [kDim/2, padded] holds K as (d, d+1) pairs per key, keys
// along the row (the 16 x 16 transpose of K's pair words); vt [padded/2, kDim] holds V as
// (key j, key j+1) pairs per dimension; then float scores and bfloat16 probabilities for kRows
// query rows.
template <int kDim>
void head_kernel_bf16(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t len,
                      int64_t ld, float scale, uint16_t* out, int64_t ld_out, float* scratch) {
  constexpr int kRows = rows_per_block<kDim>();
  constexpr int kPairs = kDim / 2;
  constexpr int kVec = kDim / 16;
  const int64_t padded = (len + 31) / 32 * 32;
  float* kt = scratch;
  float* vt = kt + kPairs * padded;
  float* scores = vt + padded / 2 * kDim;
  uint16_t* probs = reinterpret_cast<uint16_t*>(scores + kRows * padded);

  for (int64_t j = 0; j < padded; j += 16) {
    for (int p = 0; p < kPairs; p += 16) {
      simd::transpose16x16(reinterpret_cast<const float*>(k + j * ld + 2 * p), ld / 2,
                           std::max<int64_t>(0, std::min<int64_t>(16, len - j)),
                           kt + p * padded + j, padded);
    }
  }
  // Interleave V rows j and j+1 element by element: word c of pair row j/2 = (V[j][c], V[j+1][c]).
  alignas(64) static constexpr uint16_t kLo[32] = {0,  32, 1,  33, 2,  34, 3,  35, 4,  36, 5,
                                                   37, 6,  38, 7,  39, 8,  40, 9,  41, 10, 42,
                                                   11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  alignas(64) static constexpr uint16_t kHi[32] = {16, 48, 17, 49, 18, 50, 19, 51, 20, 52, 21,
                                                   53, 22, 54, 23, 55, 24, 56, 25, 57, 26, 58,
                                                   27, 59, 28, 60, 29, 61, 30, 62, 31, 63};
  const __m512i lo_idx = _mm512_load_si512(kLo);
  const __m512i hi_idx = _mm512_load_si512(kHi);
  for (int64_t j = 0; j < padded; j += 2) {
    for (int c = 0; c < kDim; c += 32) {
      const __m512i a = j < len ? _mm512_loadu_si512(v + j * ld + c) : _mm512_setzero_si512();
      const __m512i b =
          j + 1 < len ? _mm512_loadu_si512(v + (j + 1) * ld + c) : _mm512_setzero_si512();
      float* dst = vt + (j / 2) * kDim + c;
      _mm512_storeu_si512(dst, _mm512_permutex2var_epi16(a, lo_idx, b));
      _mm512_storeu_si512(dst + 16, _mm512_permutex2var_epi16(a, hi_idx, b));
    }
  }
  const __m512 vscale = _mm512_set1_ps(scale);

  for (int64_t i0 = 0; i0 < len; i0 += kRows) {
    const int64_t rows = std::min<int64_t>(kRows, len - i0);
    const uint16_t* qrow[kRows];
    for (int r = 0; r < kRows; ++r) qrow[r] = q + (i0 + std::min<int64_t>(r, rows - 1)) * ld;

    __m512 vmax[kRows];
    for (int r = 0; r < kRows; ++r) vmax[r] = _mm512_set1_ps(-INFINITY);
    for (int64_t j0 = 0; j0 < padded; j0 += 32) {
      __m512 acc0[kRows], acc1[kRows];
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) acc0[r] = acc1[r] = _mm512_setzero_ps();
      const float* ktj = kt + j0;
      for (int p = 0; p < kPairs; ++p) {
        const __m512i k0 = _mm512_castps_si512(_mm512_loadu_ps(ktj + p * padded));
        const __m512i k1 = _mm512_castps_si512(_mm512_loadu_ps(ktj + p * padded + 16));
#pragma GCC unroll 8
        for (int r = 0; r < kRows; ++r) {
          const __m512i qp = _mm512_set1_epi32(static_cast<int>(load_word(qrow[r] + 2 * p)));
          acc0[r] = dot2(acc0[r], qp, k0);
          acc1[r] = dot2(acc1[r], qp, k1);
        }
      }
      simd::store_scores<kRows>(acc0, acc1, vscale, j0, len, scores, padded, vmax);
    }

    float inv_sum[kRows];
    for (int r = 0; r < kRows; ++r) {
      const float* s = scores + r * padded;
      uint16_t* pr = probs + r * padded;
      if (r >= rows) {
        inv_sum[r] = 0.0f;
        std::fill(pr, pr + padded, 0);
        continue;
      }
      inv_sum[r] = simd::softmax_row(  // padded keys get probability 0
          s, len, padded, vmax[r],
          [&](int64_t j, __m512 e) { simd::store_bf16(pr + j, e, 0xffff); });
    }

    __m512 acc[kRows][kVec];
    for (int r = 0; r < kRows; ++r) {
      for (int c = 0; c < kVec; ++c) acc[r][c] = _mm512_setzero_ps();
    }
    const int64_t pairs = (len + 1) / 2;
    for (int64_t jp = 0; jp < pairs; ++jp) {
      __m512i vv[kVec];
      for (int c = 0; c < kVec; ++c) {
        vv[c] = _mm512_castps_si512(_mm512_loadu_ps(vt + jp * kDim + 16 * c));
      }
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) {
        const __m512i pp =
            _mm512_set1_epi32(static_cast<int>(load_word(probs + r * padded + 2 * jp)));
        for (int c = 0; c < kVec; ++c) acc[r][c] = dot2(acc[r][c], pp, vv[c]);
      }
    }
    for (int r = 0; r < rows; ++r) {
      const __m512 inv = _mm512_set1_ps(inv_sum[r]);
      for (int c = 0; c < kVec; ++c) {
        simd::store_bf16(out + (i0 + r) * ld_out + 16 * c, _mm512_mul_ps(acc[r][c], inv), 0xffff);
      }
    }
  }
}

}  // namespace

void attention_head_bf16_avx512(const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                int64_t len, int64_t ld_qkv, const AttentionShape& shape,
                                uint16_t* out, int64_t ld_out, float* scratch) {
  switch (shape.head_dim) {
    case 32:
      return head_kernel_bf16<32>(q, k, v, len, ld_qkv, shape.scale, out, ld_out, scratch);
    case 64:
      return head_kernel_bf16<64>(q, k, v, len, ld_qkv, shape.scale, out, ld_out, scratch);
    case 128:
      return head_kernel_bf16<128>(q, k, v, len, ld_qkv, shape.scale, out, ld_out, scratch);
    default:
      return attention_head_bf16_scalar(q, k, v, len, ld_qkv, shape, out, ld_out, scratch);
  }
}

}  // namespace kiln::backend::cpu::detail
