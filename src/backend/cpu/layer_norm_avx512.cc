// AVX-512 LayerNorm row kernel; compiled with AVX-512 flags, called only after dispatch.
#include <immintrin.h>

#include <cmath>

#include "backend/cpu/layer_norm.h"
#include "core/half.h"

namespace kiln::backend::cpu::detail {

namespace {
inline __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1u);
}
}  // namespace

void layer_norm_row_avx512(float* x, const float* gamma, const float* beta, int64_t cols, float eps,
                           uint16_t* bf16_out) {
  // Mean first, then the centred second moment: as stable as the two-pass reference.
  __m512 acc = _mm512_setzero_ps();
  for (int64_t c = 0; c < cols; c += 16) {
    acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(tail_mask(cols - c), x + c));
  }
  const float mean = _mm512_reduce_add_ps(acc) / static_cast<float>(cols);
  const __m512 vmean = _mm512_set1_ps(mean);
  __m512 sq = _mm512_setzero_ps();
  for (int64_t c = 0; c < cols; c += 16) {
    const __mmask16 m = tail_mask(cols - c);
    const __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + c), vmean);
    sq = _mm512_fmadd_ps(d, d, sq);
  }
  const float var = _mm512_reduce_add_ps(sq) / static_cast<float>(cols);
  const __m512 vinv = _mm512_set1_ps(1.0f / std::sqrt(var + eps));
  for (int64_t c = 0; c < cols; c += 16) {
    const __mmask16 m = tail_mask(cols - c);
    const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + c), vmean), vinv);
    const __m512 y =
        _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, gamma + c), _mm512_maskz_loadu_ps(m, beta + c));
    _mm512_mask_storeu_ps(x + c, m, y);
    if (bf16_out != nullptr) {
      _mm256_mask_storeu_epi16(bf16_out + c, m, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(y)));
    }
  }
}

void convert_to_bf16_avx512(const float* x, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    _mm256_mask_storeu_epi16(out + i, m, reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
  }
}

}  // namespace kiln::backend::cpu::detail
