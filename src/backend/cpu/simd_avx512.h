// AVX-512 helpers shared by the CPU kernels. Include only from *_avx512.cc files, which are
// compiled with AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace kiln::backend::cpu::simd {

/// Mask of the first min(max(left, 0), 16) lanes.
inline __mmask16 tail_mask(int64_t left) {
  if (left <= 0) return 0;
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
}

/// e^x for 16 floats, ~1 ulp on the range softmax uses: range reduction x = n ln2 + r with
/// |r| <= ln2/2, a degree-6 Taylor polynomial for e^r (error < 2e-7), and scalef for 2^n.
/// `x` must be finite; below -88 the result underflows to 0 through scalef, so softmax (x <= 0)
/// needs no clamp.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

/// Stores 16 floats as bfloat16 (needs AVX512_BF16).
inline void store_bf16(uint16_t* dst, __m512 v, __mmask16 m) {
  _mm256_mask_storeu_epi16(dst, m, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
}

// Transposes a 16 x 16 block: dst[c * ld_dst + r] = src[r * ld_src + c] for r < rows (rows past
// `rows` are written as zeros). The classic unpack / shuffle / permute network.
inline void transpose16x16(const float* src, int64_t ld_src, int64_t rows, float* dst,
                           int64_t ld_dst) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) {
    r[i] = i < rows ? _mm512_loadu_ps(src + i * ld_src) : _mm512_setzero_ps();
  }
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
  }
  for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * ld_dst, r[i]);  // r[i] = column i
}

// kRows query rows are processed together so each K^T and V load feeds kRows FMAs; kRows is
// chosen so the P.V accumulators (kRows x kDim/16 registers) fit the 32 zmm registers.
template <int kDim>
constexpr int rows_per_block() {
  return kDim <= 32 ? 8 : (kDim == 64 ? 4 : 2);
}

/// Attention: scales a row block's raw scores for 32 keys (acc0: keys j0..j0+15, acc1:
/// j0+16..j0+31), stores them at scores[r * ld + j], and folds the valid ones (key < len) into
/// the running row maxima.
template <int kRows>
inline void store_scores(const __m512* acc0, const __m512* acc1, __m512 scale, int64_t j0,
                         int64_t len, float* scores, int64_t ld, __m512* vmax) {
  const __mmask16 m0 = tail_mask(len - j0), m1 = tail_mask(len - j0 - 16);
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    const __m512 s0 = _mm512_mul_ps(acc0[r], scale);
    const __m512 s1 = _mm512_mul_ps(acc1[r], scale);
    _mm512_storeu_ps(scores + r * ld + j0, s0);
    _mm512_storeu_ps(scores + r * ld + j0 + 16, s1);
    vmax[r] = _mm512_mask_max_ps(vmax[r], m0, vmax[r], s0);
    vmax[r] = _mm512_mask_max_ps(vmax[r], m1, vmax[r], s1);
  }
}

/// Attention: softmax numerators of one score row, e_j = exp(s_j - max) for j < len and 0 up
/// to `padded`; `store(j, e)` receives each 16-key vector. Returns 1 / sum.
template <typename Store>
inline float softmax_row(const float* s, int64_t len, int64_t padded, __m512 vmax, Store&& store) {
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t j = 0; j < padded; j += 16) {
    const __m512 e =
        _mm512_maskz_mov_ps(tail_mask(len - j), exp_ps(_mm512_sub_ps(_mm512_loadu_ps(s + j), m)));
    store(j, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  return 1.0f / _mm512_reduce_add_ps(vsum);
}

}  // namespace kiln::backend::cpu::simd
