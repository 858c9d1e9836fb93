#include "backend/cpu/quantize.h"

#include <cmath>

#include "backend/cpu/cpu_features.h"
#include "core/half.h"

namespace kiln::backend::cpu {

namespace detail {

namespace {
inline float load(const void* x, bool bf16_in, int64_t c) {
  return bf16_in ? core::bf16_to_float(static_cast<const uint16_t*>(x)[c])
                 : static_cast<const float*>(x)[c];
}
}  // namespace

// Every step is the same float operation, in the same order, as in the AVX-512 kernel: max and
// min keep their second operand on NaN as vmaxps/vminps do, and rounding is to nearest even.
void quantize_row_scalar(const void* x, bool bf16_in, int64_t cols, const QuantizeParams& p,
                         uint8_t* q, float* row_scale) {
  const auto prepare = [&](int64_t c) {
    float v = load(x, bf16_in, c);
    if (p.clip > 0.0f) {
      v = v > -p.clip ? v : -p.clip;
      v = v < p.clip ? v : p.clip;
    }
    if (p.inv_smooth != nullptr) v *= p.inv_smooth[c];
    return v;
  };
  float inv;
  if (p.static_scale > 0.0f) {
    inv = 1.0f / p.static_scale;
  } else {
    float amax = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float a = std::fabs(prepare(c));
      amax = a > amax ? a : amax;
    }
    inv = amax > 0.0f ? 127.0f / amax : 0.0f;
    *row_scale = amax / 127.0f;
  }
  for (int64_t c = 0; c < cols; ++c) {
    float r = std::nearbyint(prepare(c) * inv);
    r = r >= -127.0f ? r : -127.0f;  // NaN -> -127, as vmaxps(NaN, -127)
    r = r <= 127.0f ? r : 127.0f;
    q[c] = static_cast<uint8_t>(static_cast<int>(r) + kQuantZeroPoint);
  }
}

}  // namespace detail

void quantize_rows(const void* x, bool bf16_in, int64_t rows, int64_t cols,
                   const QuantizeParams& params, uint8_t* q, float* row_scales) {
  const bool avx512 = active_isa() == Isa::kAvx512;
  const size_t elem = bf16_in ? 2 : 4;
  float unused = 0.0f;
#pragma omp parallel for schedule(static) if (rows * cols >= 16384)
  for (int64_t r = 0; r < rows; ++r) {
    const void* xr = static_cast<const char*>(x) + static_cast<size_t>(r * cols) * elem;
    float* scale = row_scales != nullptr ? row_scales + r : &unused;
    if (avx512) {
      detail::quantize_row_avx512(xr, bf16_in, cols, params, q + r * cols, scale);
    } else {
      detail::quantize_row_scalar(xr, bf16_in, cols, params, q + r * cols, scale);
    }
  }
}

}  // namespace kiln::backend::cpu
