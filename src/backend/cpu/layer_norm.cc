#include "backend/cpu/layer_norm.h"

#include <cmath>

#include "backend/cpu/cpu_features.h"
#include "core/half.h"

namespace kiln::backend::cpu {

namespace detail {

void layer_norm_row_scalar(float* x, const float* gamma, const float* beta, int64_t cols, float eps,
                           uint16_t* bf16_out) {
  // Two passes in double for the statistics: this is the reference the AVX-512 path is
  // tested against.
  double sum = 0;
  for (int64_t c = 0; c < cols; ++c) sum += x[c];
  const double mean = sum / static_cast<double>(cols);
  double var = 0;
  for (int64_t c = 0; c < cols; ++c) var += (x[c] - mean) * (x[c] - mean);
  const float inv = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(cols) + eps));
  const float m = static_cast<float>(mean);
  for (int64_t c = 0; c < cols; ++c) {
    x[c] = (x[c] - m) * inv * gamma[c] + beta[c];
    if (bf16_out != nullptr) bf16_out[c] = core::float_to_bf16(x[c]);
  }
}

}  // namespace detail

void layer_norm_row(float* x, const float* gamma, const float* beta, int64_t cols, float eps,
                    uint16_t* bf16_out) {
  // The AVX-512 kernel's bfloat16 store needs AVX512_BF16.
  if (active_isa() == Isa::kAvx512 && (bf16_out == nullptr || cpu_features().avx512_bf16)) {
    detail::layer_norm_row_avx512(x, gamma, beta, cols, eps, bf16_out);
  } else {
    detail::layer_norm_row_scalar(x, gamma, beta, cols, eps, bf16_out);
  }
}

void layer_norm(float* x, const float* gamma, const float* beta, int64_t rows, int64_t cols,
                float eps, uint16_t* bf16_out) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    layer_norm_row(x + r * cols, gamma, beta, cols, eps,
                   bf16_out != nullptr ? bf16_out + r * cols : nullptr);
  }
}

void convert_to_bf16(const float* x, int64_t n, uint16_t* out) {
  if (active_isa() == Isa::kAvx512 && cpu_features().avx512_bf16) {
    detail::convert_to_bf16_avx512(x, n, out);
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = core::float_to_bf16(x[i]);
}

}  // namespace kiln::backend::cpu
