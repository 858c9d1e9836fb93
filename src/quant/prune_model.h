// 2:4 pruning of every linear layer of an encoder (`kiln build --sparsity 2:4`), by magnitude or
// by SparseGPT. SparseGPT runs block by block as in the paper's reference code: the calibration
// inputs of block l's four linear layers are collected from the model whose blocks 0..l-1 are
// already pruned, so that each block compensates for the error of the ones before it.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "plan/sections.h"
#include "quant/model_runs.h"
#include "quant/prune.h"

namespace kiln::quant {

enum class PruneMethod { kMagnitude, kSparseGpt };
/// "magnitude" or "sparsegpt".
std::string_view prune_method_name(PruneMethod m);
bool parse_prune_method(std::string_view name, PruneMethod* out);

/// One pruned layer. The errors are ||X W^T - X W'^T||^2 / ||X W^T||^2 on the calibration inputs
/// X the layer saw (SparseGPT only: magnitude pruning collects no inputs), for the chosen method
/// and, for comparison, for the magnitude mask on the same inputs.
struct PrunedLayer {
  int layer = 0;
  quant::LinearSite site = quant::LinearSite::kQkv;
  double error = -1;            ///< of the method used; -1 when not measured
  double magnitude_error = -1;  ///< of magnitude pruning on the same inputs; -1 when not measured
};

/// Prunes every linear layer of `weights` in place to 2:4 and marks it in `record` (resized to
/// the layer count). SparseGPT needs `set` (calibration texts); magnitude ignores it.
Result<std::vector<PrunedLayer>> prune_model(const TrialModel& model,
                                             model::EncoderWeights* weights, PruneMethod method,
                                             const CalibrationSet* set,
                                             const quant::SparseGptOptions& options,
                                             plan::SparsityRecord* record);

}  // namespace kiln::quant
