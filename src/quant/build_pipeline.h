// `kiln build`'s optimization passes, between reading a model directory and writing its plan:
//   1. 2:4 pruning (magnitude, or SparseGPT on the calibration texts)
//   2. INT8 calibration: SmoothQuant factors, then static scales by a calibrator (or dynamic
//      per-token scales)
//   3. mixed precision: sensitivity of each layer, fallback of the most sensitive ones until the
//      held-out accuracy drop is within --max-accuracy-drop
// Accuracy during the build is measured on held-out calibration lines (every fifth line, or a
// separate --validation file), never on the evaluation sets `kiln eval` reads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "plan/plan_builder.h"
#include "quant/mixed_precision.h"
#include "quant/prune_model.h"
#include "quant/quantize_model.h"

namespace kiln::quant {

/// What to do.
struct OptimizeOptions {
  std::string device = "cpu";
  Precision precision = Precision::kF32;
  std::string calibration;            ///< text file, one sample per line; empty = none
  std::string validation;             ///< held-out text file; empty = every fifth calibration line
  int64_t calibration_samples = 512;  ///< lines used for calibration (the rest ignored)
  int64_t validation_samples = 128;   ///< held-out lines
  QuantizeOptions quantize;
  bool calibrator_given = false;  ///< --calibrator was set (refused with dynamic scales)
  double max_accuracy_drop = -1;  ///< < 0: no mixed precision
  Precision fallback = Precision::kBF16;
  bool prune = false;  ///< --sparsity 2:4
  PruneMethod prune_method = PruneMethod::kSparseGpt;
  int num_threads = 0;
  std::function<void(const std::string&)> progress;
};

/// What was done and measured.
struct BuildReport {
  std::string calibration;
  int64_t calibration_texts = 0, calibration_tokens = 0, truncated = 0;
  std::string validation;
  int64_t validation_texts = 0;
  std::string output_kind;  ///< "pooled embedding" or "last hidden state"
  std::optional<PruneMethod> pruning;
  std::vector<PrunedLayer> pruned;
  std::optional<CosineStats> pruned_fp32;  ///< pruned FP32 model vs the original
  std::optional<Int8Calibration> int8;
  std::optional<MixedPrecision> mixed;
  std::optional<CosineStats> final_accuracy;  ///< the plan's model vs the original FP32
  double seconds = 0;
};

/// Checks option combinations before any work; InvalidArgument naming the conflict.
Status check_options(const OptimizeOptions& options);

/// Runs the passes on `source` (its weights may be pruned in place) and fills `build`'s quant,
/// sparsity and precision for write_plan.
Result<BuildReport> optimize(plan::ModelSource* source, const OptimizeOptions& options,
                             plan::BuildOptions* build);

/// The report as text for the terminal, and as JSON.
std::string format_build_report(const BuildReport& report);
std::string build_report_json(const BuildReport& report);

}  // namespace kiln::quant
