// AVX-512 dequantization epilogue of the INT8 linear layers; compiled with AVX-512 flags, called
// only after dispatch.
#include <immintrin.h>

#include "backend/cpu/quantize.h"
#include "backend/cpu/simd_avx512.h"

namespace kiln::backend::cpu::detail {

namespace {

// 1 / x to full float precision: vrcp14ps plus one Newton step.
inline __m512 reciprocal(__m512 x) {
  const __m512 r = _mm512_rcp14_ps(x);
  return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.0f)));
}

// tanh(y) = 1 - 2 / (1 + e^(2y)), y clamped to [-10, 10] where tanh is +-1 in float (and
// exp_ps gets a finite argument).
inline __m512 tanh_ps(__m512 y) {
  y = _mm512_max_ps(_mm512_min_ps(y, _mm512_set1_ps(10.0f)), _mm512_set1_ps(-10.0f));
  const __m512 e = simd::exp_ps(_mm512_add_ps(y, y));
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_fnmadd_ps(_mm512_set1_ps(2.0f), reciprocal(_mm512_add_ps(one, e)), one);
}

// erf(x) as XLA and Eigen compute it in float: a rational minimax approximation, odd degree-13
// numerator over even degree-8 denominator, on x clamped to [-4, 4] (beyond, erf is +-1 in
// float). 17 vector operations against ~30 for the exp-based Abramowitz & Stegun form.
inline __m512 erf_ps(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(4.0f)), _mm512_set1_ps(-4.0f));
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(-2.72614225801306e-10f);
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(2.77068142495902e-08f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.10102402082508e-06f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-5.69250639462346e-05f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-7.34990630326855e-04f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-2.95459980854025e-03f));
  p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(-1.60960333262415e-02f));
  p = _mm512_mul_ps(x, p);
  __m512 q = _mm512_set1_ps(-1.45660718464996e-05f);
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-2.13374055278905e-04f));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.68282697438203e-03f));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-7.37332916720468e-03f));
  q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(-1.42647390514189e-02f));
  return _mm512_mul_ps(p, reciprocal(q));
}

template <Epilogue E>
inline __m512 activate(__m512 v) {
  const __m512 half = _mm512_set1_ps(0.5f);
  if constexpr (E == Epilogue::kGeluErf) {
    const __m512 t = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
    const __m512 g =
        _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(erf_ps(t), _mm512_set1_ps(1.0f)));
    // Below t = -3.9, 1 + erf(t) < 4e-8 is under erf's rounding: the exact limit is 0.
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(-3.9f), _CMP_GT_OQ), g);
  } else if constexpr (E == Epilogue::kGeluTanh) {
    const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
    const __m512 y = _mm512_mul_ps(_mm512_fmadd_ps(v3, _mm512_set1_ps(0.044715f), v),
                                   _mm512_set1_ps(0.79788456080286536f));
    return _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(tanh_ps(y), _mm512_set1_ps(1.0f)));
  } else if constexpr (E == Epilogue::kTanh) {
    return tanh_ps(v);
  } else if constexpr (E == Epilogue::kRelu) {
    return _mm512_max_ps(v, _mm512_setzero_ps());
  } else {
    return v;
  }
}

template <Epilogue E>
void dequantize(const float* acc, int64_t cols, float row_scale, const DequantizeParams& p,
                void* y) {
  const __m512 s = _mm512_set1_ps(row_scale);
  auto* yf = static_cast<float*>(y);
  auto* yb = static_cast<uint16_t*>(y);
  for (int64_t c = 0; c < cols; c += 16) {
    const __mmask16 m = simd::tail_mask(cols - c);
    const __m512 b = p.bias != nullptr ? _mm512_maskz_loadu_ps(m, p.bias + c) : _mm512_setzero_ps();
    __m512 v = activate<E>(_mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, acc + c), s, b));
    if (p.bf16_out) {
      simd::store_bf16(yb + c, v, m);
      continue;
    }
    if (p.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, yf + c));
    _mm512_mask_storeu_ps(yf + c, m, v);
  }
}

}  // namespace

void dequantize_row_avx512(const float* acc, int64_t cols, float row_scale,
                           const DequantizeParams& p, void* y) {
  switch (p.epilogue) {
    case Epilogue::kNone:
      return dequantize<Epilogue::kNone>(acc, cols, row_scale, p, y);
    case Epilogue::kGeluErf:
      return dequantize<Epilogue::kGeluErf>(acc, cols, row_scale, p, y);
    case Epilogue::kGeluTanh:
      return dequantize<Epilogue::kGeluTanh>(acc, cols, row_scale, p, y);
    case Epilogue::kTanh:
      return dequantize<Epilogue::kTanh>(acc, cols, row_scale, p, y);
    case Epilogue::kRelu:
      return dequantize<Epilogue::kRelu>(acc, cols, row_scale, p, y);
  }
}

}  // namespace kiln::backend::cpu::detail
