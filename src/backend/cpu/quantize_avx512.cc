// AVX-512 activation quantization; compiled with AVX-512 flags, called only after dispatch.
#include <immintrin.h>

#include "backend/cpu/quantize.h"
#include "backend/cpu/simd_avx512.h"

namespace kiln::backend::cpu::detail {

namespace {

inline __m512 load16(const void* x, bool bf16_in, int64_t c, __mmask16 m) {
  if (bf16_in) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(x) + c);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  return _mm512_maskz_loadu_ps(m, static_cast<const float*>(x) + c);
}

}  // namespace

// Two passes over the row (absmax, then round), recomputing clip and smoothing rather than
// storing them: the row is in L1 and the arithmetic is cheaper than a store and reload.
void quantize_row_avx512(const void* x, bool bf16_in, int64_t cols, const QuantizeParams& p,
                         uint8_t* q, float* row_scale) {
  const bool clip = p.clip > 0.0f;
  const __m512 hi = _mm512_set1_ps(p.clip), lo = _mm512_set1_ps(-p.clip);
  const auto prepare = [&](int64_t c, __mmask16 m) {
    __m512 v = load16(x, bf16_in, c, m);
    if (clip) v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    if (p.inv_smooth != nullptr) v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, p.inv_smooth + c));
    return v;
  };
  float inv;
  if (p.static_scale > 0.0f) {
    inv = 1.0f / p.static_scale;
  } else {
    __m512 amax = _mm512_setzero_ps();
    for (int64_t c = 0; c < cols; c += 16) {
      amax = _mm512_max_ps(_mm512_abs_ps(prepare(c, simd::tail_mask(cols - c))), amax);
    }
    const float a = _mm512_reduce_max_ps(amax);
    inv = a > 0.0f ? 127.0f / a : 0.0f;
    *row_scale = a / 127.0f;
  }
  const __m512 vinv = _mm512_set1_ps(inv);
  const __m512 qmax = _mm512_set1_ps(127.0f), qmin = _mm512_set1_ps(-127.0f);
  const __m512i zp = _mm512_set1_epi32(kQuantZeroPoint);
  for (int64_t c = 0; c < cols; c += 16) {
    const __mmask16 m = simd::tail_mask(cols - c);
    __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(prepare(c, m), vinv),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    r = _mm512_min_ps(_mm512_max_ps(r, qmin), qmax);
    const __m512i i = _mm512_add_epi32(_mm512_cvtps_epi32(r), zp);
    _mm512_mask_cvtepi32_storeu_epi8(q + c, m, i);
  }
}

}  // namespace kiln::backend::cpu::detail
