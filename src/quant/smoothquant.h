// SmoothQuant (Xiao et al. 2023): migrate activation outliers into the weights with a
// per-input-channel factor s, Y = (X / s) (W * s)^T, so that both X / s and W * s quantize well.
//
// Where the division goes: quant::LinearQuant::smooth tells the device to divide the input by s
// (fused into the activation quantization: one multiply per element it does anyway). Folding
// 1/s into a preceding LayerNorm (fold_smooth_into_norm) removes even that, but only where the
// LayerNorm output feeds nothing but the linear layer. In kiln's post-LN encoders the LayerNorm
// output is also the residual stream (the next residual add reads it), so folding there would
// scale the residual too; the fold is exact only for pre-LN blocks or when the device keeps an
// unscaled copy for the residual.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/status.h"
#include "model/weights.h"

namespace kiln::quant {

/// Options of smooth_scales().
struct SmoothOptions {
  float alpha = 0.5f;       ///< migration strength in [0, 1]: 0 = all on activations, 1 = weights
  float min_scale = 1e-5f;  ///< floor of s (the reference implementation's clamp)
};

/// s_j = a_j^alpha / max_i |W_ij|^(1 - alpha), clamped to >= min_scale, for activation absmax
/// a [in] and weight [out, in] row-major. A channel with a_j = 0 or an all-zero weight column
/// gets s_j = 1: calibration saw no signal there, and a tiny s would blow up any activation
/// that appears at run time. InvalidArgument on shape mismatch, non-finite input or alpha
/// outside [0, 1].
Result<std::vector<float>> smooth_scales(const std::vector<float>& act_absmax, const float* weight,
                                         int64_t out, int64_t in, const SmoothOptions& options);

/// W[:, j] *= s_j for weight [out, in] row-major (the bias is unchanged).
void scale_weight_columns(float* weight, int64_t out, int64_t in, const float* s);

/// Smooths a linear layer in place: computes s from `act_absmax`, scales `dense`'s input
/// columns by it and returns s (what LinearQuant::smooth stores).
Result<std::vector<float>> smooth_linear(const std::vector<float>& act_absmax,
                                         model::DenseWeights* dense, const SmoothOptions& options);

/// LayerNorm output divided by s: gamma_j /= s_j and beta_j /= s_j. See the header comment for
/// when this is exact. InvalidArgument when the sizes differ or some s_j <= 0.
Status fold_smooth_into_norm(const std::vector<float>& s, model::NormWeights* norm);

}  // namespace kiln::quant
