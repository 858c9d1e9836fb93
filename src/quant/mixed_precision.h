// Sensitivity analysis and mixed precision (`kiln build --max-accuracy-drop X`): each linear
// layer is quantized alone (every other layer FP32) and its effect on the held-out outputs
// measured; then, starting from the all-INT8 model, the most sensitive layers go back to a
// higher precision one at a time until the held-out output cosine to the reference is within X
// of 1 (accuracy drop = 1 - mean cosine).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "quant/model_runs.h"
#include "quant/quant_params.h"

namespace kiln::quant {

/// One layer's effect when it alone is INT8.
struct SiteSensitivity {
  int layer = 0;
  quant::LinearSite site = quant::LinearSite::kQkv;
  double drop = 0;  ///< 1 - mean held-out cosine to the reference
};

/// What mixed precision chose.
struct MixedPrecision {
  quant::ModelQuant quant;
  std::vector<SiteSensitivity> sensitivity;  ///< most sensitive first
  std::vector<SiteSensitivity> kept_high;    ///< layers left at the fallback precision, in order
  double all_int8_drop = 0;                  ///< before any fallback
  double drop = 0;                           ///< of the chosen model
  bool reached = false;                      ///< drop <= the allowed drop
};

/// Options of choose_mixed_precision().
struct MixedOptions {
  double max_drop = 0.01;
  Precision fallback = Precision::kBF16;  ///< kBF16 or kF32
  std::function<void(const std::string&)> progress;
};

/// Chooses per-layer precisions from the all-INT8 `int8` decisions. `weights` are the FP32
/// weights before smoothing; `reference` the outputs of the FP32 model on `validation`.
Result<MixedPrecision> choose_mixed_precision(
    const TrialModel& model, const model::EncoderWeights& weights, const quant::ModelQuant& int8,
    const CalibrationSet& validation, const ModelOutputs& reference, const MixedOptions& options);

/// The held-out drop (1 - mean cosine) of `weights` compiled with `quant` (smoothing applied).
Result<CosineStats> measure(const TrialModel& model, const model::EncoderWeights& weights,
                            const quant::ModelQuant& quant, const CalibrationSet& validation,
                            const ModelOutputs& reference);

}  // namespace kiln::quant
