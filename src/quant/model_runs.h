// The FP32 and trial models `kiln build` runs while it optimizes: compile a set of weights with
// given quantization decisions on a device, feed it the calibration batches (observing the
// inputs of its linear layers), and compare its outputs with the FP32 model's.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backend/device.h"
#include "kiln/model_info.h"
#include "model/config.h"
#include "model/weights.h"
#include "quant/calibration_set.h"
#include "quant/eval_metrics.h"
#include "quant/quant_params.h"

namespace kiln::quant {

/// What a trial model is compared on: the pooled embedding of each text for embedding models,
/// the last hidden state of each token otherwise.
struct ModelOutputs {
  std::vector<float> rows;  ///< [count, width]
  int64_t width = 0;
  int64_t count() const { return width == 0 ? 0 : static_cast<int64_t>(rows.size()) / width; }
};

/// A model description the trials share.
struct TrialModel {
  const backend::Device* device = nullptr;
  model::ModelConfig config;
  PoolingConfig pooling;
  int num_threads = 0;
};

/// Compiles a copy of `weights` with `quant` (null: every layer at `precision`).
Result<std::unique_ptr<backend::EncoderExecutor>> compile_trial(
    const TrialModel& model, const model::EncoderWeights& weights,
    std::shared_ptr<const quant::ModelQuant> quant, Precision precision = Precision::kF32);

/// Runs every batch of `set` through `executor` (FP32 linear layers), calling `observer` with
/// the input of each linear layer.
Status observe(const backend::EncoderExecutor& executor, const TrialModel& model,
               const CalibrationSet& set, const backend::LinearObserver& observer);

/// Runs every batch of `set` and returns its outputs (see ModelOutputs).
Result<ModelOutputs> run_outputs(const backend::EncoderExecutor& executor, const TrialModel& model,
                                 const CalibrationSet& set);

/// Row-wise cosine of two outputs of the same shape (mean, worst 1%, min: kiln eval's measure).
CosineStats compare_outputs(const ModelOutputs& reference, const ModelOutputs& candidate);

}  // namespace kiln::quant
