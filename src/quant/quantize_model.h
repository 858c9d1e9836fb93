// INT8 calibration of a whole encoder (`kiln build --precision int8 --calibration FILE`): runs
// the FP32 model on the calibration texts, collects each linear layer's input statistics, and
// turns them into per-layer decisions (quant::ModelQuant): SmoothQuant factors, and static
// per-tensor input scales chosen by a calibrator (or dynamic per-token scales).
#pragma once

#include <vector>

#include "quant/calibration.h"
#include "quant/model_runs.h"
#include "quant/quant_params.h"

namespace kiln::quant {

/// How to quantize.
struct QuantizeOptions {
  quant::CalibratorOptions calibrator;  ///< for static scales
  quant::ActivationScaling scaling = quant::ActivationScaling::kStaticPerTensor;
  float smoothquant_alpha = -1.0f;  ///< migration strength in [0, 1]; < 0 = no SmoothQuant
  float gelu_clip = 0.0f;           ///< clip of the GELU output before ffn_out; 0 = none
};

/// What calibration found for one linear layer.
struct SiteCalibration {
  int layer = 0;
  quant::LinearSite site = quant::LinearSite::kQkv;
  float absmax = 0;        ///< of the input as the INT8 layer quantizes it (clipped, smoothed)
  float threshold = 0;     ///< the calibrator's clipping threshold (static scales)
  float raw_absmax = 0;    ///< of the FP32 input before smoothing
  float max_smooth = 0;    ///< largest SmoothQuant factor; 0 = not smoothed
  int64_t non_finite = 0;  ///< NaN/Inf values seen (skipped)
};

/// The decisions and what they came from.
struct Int8Calibration {
  quant::ModelQuant quant;  ///< every layer INT8
  std::vector<SiteCalibration> sites;
};

/// Calibrates every linear layer of `weights` to INT8 on `set`.
Result<Int8Calibration> calibrate_int8(const TrialModel& model,
                                       const model::EncoderWeights& weights,
                                       const CalibrationSet& set, const QuantizeOptions& options);

/// Every layer INT8 with dynamic per-token scales and no smoothing (no calibration data).
quant::ModelQuant dynamic_int8(int num_layers, float gelu_clip);

/// A copy of `weights` with the input columns of every smoothed INT8 layer of `quant` scaled by
/// its factors (what the plan stores for them); other layers unchanged.
model::EncoderWeights apply_smoothing(const model::EncoderWeights& weights,
                                      const quant::ModelQuant& quant);

}  // namespace kiln::quant
