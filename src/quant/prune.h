// 2:4 structured pruning of linear layers: in every group of 4 consecutive input weights of a
// row, 2 are zero (the pattern NVIDIA's sparse tensor cores run at double rate). Two ways:
// magnitude, and one-shot second-order reconstruction (SparseGPT, Frantar & Alistarh 2023),
// which chooses the masks from calibration inputs and updates the remaining weights of each row
// to compensate for what was removed (optimal brain surgeon, column by column).
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/status.h"

namespace kiln::quant {

/// A pruned weight [out, in] row-major and its mask.
struct PrunedWeights {
  std::vector<float> weight;  ///< zero where the mask is 0
  std::vector<uint8_t> mask;  ///< 1 = kept; exactly 2 of every 4 consecutive inputs of a row
};

/// Accumulates X^T X of a linear layer's inputs X [rows, cols] for SparseGPT. Upper triangle
/// in double precision. Not thread-safe: one writer at a time.
class HessianAccumulator {
 public:
  /// For inputs with `cols` channels.
  explicit HessianAccumulator(int64_t cols);
  /// Adds x [rows, cols] row-major; InvalidArgument when cols differs.
  Status add(const float* x, int64_t rows, int64_t cols);
  /// Input channels.
  int64_t cols() const { return cols_; }
  /// Rows added so far.
  int64_t samples() const { return samples_; }
  /// H = 2 X^T X / samples, full n x n row-major (SparseGPT's scaling; results do not depend on
  /// it). All zero before any sample.
  std::vector<double> hessian() const;

 private:
  int64_t cols_;
  int64_t samples_ = 0;
  std::vector<double> xtx_;  // upper triangle of X^T X
};

/// Options of prune_2_4_sparsegpt().
struct SparseGptOptions {
  double damp = 0.01;  ///< lambda = damp * mean(diag H), added to the diagonal (rank-deficient X)
  int block = 128;     ///< columns per lazy-update block (a multiple of 4)
};

/// Keeps the 2 largest |w| of each group of 4 consecutive inputs (ties: the lower index).
/// InvalidArgument unless `in` is a positive multiple of 4.
Result<PrunedWeights> prune_2_4_magnitude(const float* weight, int64_t out, int64_t in);

/// SparseGPT with 2:4 masks: with U the upper Cholesky factor of (H + lambda I)^-1, sweeps the
/// input columns left to right; at each group of 4 it prunes the 2 weights with the smallest
/// w^2 / U_jj^2 (using the weights as updated so far), and each pruned w_j's error
/// (w_j / U_jj) is propagated to the not yet visited columns through row j of U. Channels that
/// never saw a nonzero input get H_jj = 1 (their weights are pruned like any other). Errors:
/// `in` not a multiple of 4, `h` of another size or without samples.
Result<PrunedWeights> prune_2_4_sparsegpt(const float* weight, int64_t out, int64_t in,
                                          const HessianAccumulator& h,
                                          const SparseGptOptions& options = {});

/// sum over rows r of d_r^T (X^T X / samples) d_r with d = W - W': the mean squared output
/// error ||X W^T - X W'^T||^2 / samples of replacing W by W' on the accumulated inputs.
double output_error(const HessianAccumulator& h, const float* w, const float* w_new, int64_t out);

/// Whether `mask` [out, in] keeps exactly 2 of every 4 consecutive inputs.
bool is_2_4(const uint8_t* mask, int64_t out, int64_t in);

}  // namespace kiln::quant
