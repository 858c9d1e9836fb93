// The INT8 linear layers' own passes around the integer GEMM. Quantization: float or bfloat16
// rows to unsigned 8-bit codes (value + 128, the u8 operand of AVX512_VNNI's vpdpbusd) with a
// per-row or per-tensor scale, in one pass per row (clip, SmoothQuant division, absmax, round).
// Dequantization: the GEMM's per-channel-scaled rows times the row scale, plus bias, activation
// and residual, written as float or bfloat16.
#pragma once

#include <cstdint>

#include "backend/cpu/linear.h"

namespace kiln::backend::cpu {

/// Offset added to the signed code q in [-127, 127] to store it as u8.
inline constexpr int kQuantZeroPoint = 128;

/// How one INT8 layer quantizes its input.
struct QuantizeParams {
  /// Per input channel, 1 / SmoothQuant factor (multiplied in before quantizing); null = none.
  const float* inv_smooth = nullptr;
  /// Clamp to [-clip, clip] before anything else (the GELU output clip); 0 = none.
  float clip = 0.0f;
  /// Static per-tensor quantization when > 0: q = round(x / scale), saturated to +-127.
  /// Otherwise dynamic per row: scale = absmax(row) / 127.
  float static_scale = 0.0f;
};

/// Quantizes `rows` rows of `cols` values (x: float, or bfloat16 when `bf16_in`) to
/// q[r * cols + c] = round(x' / scale_r) + 128 with x' = clamp(x, clip) * inv_smooth, and writes
/// scale_r to row_scales[r] (dynamic scaling only; row_scales may be null for static). An
/// all-zero row gets scale 0 and codes 128. Rows are split over the calling thread's OpenMP team.
void quantize_rows(const void* x, bool bf16_in, int64_t rows, int64_t cols,
                   const QuantizeParams& params, uint8_t* q, float* row_scales);

/// What dequantize_row does after the GEMM.
struct DequantizeParams {
  const float* bias = nullptr;  ///< [cols], or null
  Epilogue epilogue = Epilogue::kNone;
  bool accumulate = false;  ///< y += result (float y only)
  bool bf16_out = false;    ///< write bfloat16 (needs AVX512_BF16)
};

namespace detail {
/// y[c] (+)= epilogue(acc[c] * row_scale + bias[c]) for one row of `cols`; AVX-512 (F + BW,
/// and AVX512_BF16 for bfloat16 output). `y` is float, or bfloat16 when p.bf16_out.
void dequantize_row_avx512(const float* acc, int64_t cols, float row_scale,
                           const DequantizeParams& p, void* y);
/// One row, portable: the reference the AVX-512 kernel must match bit for bit.
void quantize_row_scalar(const void* x, bool bf16_in, int64_t cols, const QuantizeParams& params,
                         uint8_t* q, float* row_scale);
/// One row, AVX-512 (F + BW).
void quantize_row_avx512(const void* x, bool bf16_in, int64_t cols, const QuantizeParams& params,
                         uint8_t* q, float* row_scale);
}  // namespace detail

}  // namespace kiln::backend::cpu
