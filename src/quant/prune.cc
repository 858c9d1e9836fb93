#include "quant/prune.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "quant/linalg.h"
#include "quant/simd_kernels.h"

namespace kiln::quant {

namespace {

Status check_shape(const char* what, int64_t out, int64_t in) {
  if (out <= 0 || in <= 0 || in % 4 != 0) {
    return invalid_argument(std::string(what) + ": 2:4 pruning needs a weight [out, in] with in " +
                            "a positive multiple of 4, got [" + std::to_string(out) + ", " +
                            std::to_string(in) + "]");
  }
  return ok_status();
}

// Marks in mask[0..4) the 2 entries with the smallest score as pruned (ties: the lower index).
void prune_two_of_four(const std::array<double, 4>& score, uint8_t* mask) {
  std::array<int, 4> idx = {3, 2, 1, 0};  // among equal scores the higher index goes first
  std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) { return score[a] < score[b]; });
  mask[idx[0]] = 0;
  mask[idx[1]] = 0;
}

}  // namespace

HessianAccumulator::HessianAccumulator(int64_t cols)
    : cols_(std::max<int64_t>(cols, 0)), xtx_(static_cast<size_t>(cols_ * cols_), 0.0) {}

Status HessianAccumulator::add(const float* x, int64_t rows, int64_t cols) {
  if (cols != cols_ || rows < 0) {
    return invalid_argument("sparsegpt: inputs with " + std::to_string(cols) +
                            " channels for a Hessian of " + std::to_string(cols_));
  }
  const int64_t n = cols_;
  constexpr int64_t kRows = 64;  // rows of X per pass over H
  std::vector<double> xd(static_cast<size_t>(kRows * n));
  for (int64_t r0 = 0; r0 < rows; r0 += kRows) {
    const int64_t rb = std::min(kRows, rows - r0);
    std::copy(x + r0 * n, x + (r0 + rb) * n, xd.begin());
    // Row i of the upper triangle: H[i][i..n) += sum_r x_r[i] * x_r[i..n), four rows of X per
    // sweep so that H's row is loaded and stored once per four products.
#pragma omp parallel for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      double* hi = xtx_.data() + i * n + i;
      const int64_t len = n - i;
      int64_t r = 0;
      for (; r + 4 <= rb; r += 4) {
        const double* p0 = xd.data() + r * n + i;
        const double* p[4] = {p0, p0 + n, p0 + 2 * n, p0 + 3 * n};
        const double a[4] = {p[0][0], p[1][0], p[2][0], p[3][0]};
        if (a[0] != 0 || a[1] != 0 || a[2] != 0 || a[3] != 0) simd::axpy4(hi, a, p, len);
      }
      for (; r < rb; ++r) {
        const double* p = xd.data() + r * n + i;
        if (p[0] != 0) simd::axpy(hi, p[0], p, len);
      }
    }
  }
  samples_ += rows;
  return ok_status();
}

std::vector<double> HessianAccumulator::hessian() const {
  const int64_t n = cols_;
  std::vector<double> h(static_cast<size_t>(n * n), 0.0);
  if (samples_ == 0) return h;
  const double scale = 2.0 / static_cast<double>(samples_);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i; j < n; ++j) h[i * n + j] = h[j * n + i] = scale * xtx_[i * n + j];
  }
  return h;
}

Result<PrunedWeights> prune_2_4_magnitude(const float* weight, int64_t out, int64_t in) {
  KILN_RETURN_IF_ERROR(check_shape("magnitude pruning", out, in));
  PrunedWeights p{std::vector<float>(weight, weight + out * in),
                  std::vector<uint8_t>(static_cast<size_t>(out * in), 1)};
  for (int64_t g = 0; g < out * in; g += 4) {
    std::array<double, 4> score;
    for (int t = 0; t < 4; ++t) score[t] = std::fabs(weight[g + t]);
    prune_two_of_four(score, p.mask.data() + g);
    for (int t = 0; t < 4; ++t) {
      if (!p.mask[g + t]) p.weight[g + t] = 0.0f;
    }
  }
  return p;
}

Result<PrunedWeights> prune_2_4_sparsegpt(const float* weight, int64_t out, int64_t in,
                                          const HessianAccumulator& h,
                                          const SparseGptOptions& options) {
  KILN_RETURN_IF_ERROR(check_shape("sparsegpt", out, in));
  if (h.cols() != in) {
    return invalid_argument("sparsegpt: a Hessian of " + std::to_string(h.cols()) +
                            " channels for a weight with " + std::to_string(in) + " inputs");
  }
  if (h.samples() == 0) return failed_precondition("sparsegpt: no calibration inputs");
  const int64_t n = in;
  std::vector<double> u;
  // Dampening makes H positive definite for rank-deficient X; retry stronger if rounding
  // still defeats the factorization.
  Status factored = failed_precondition("sparsegpt: Hessian is not positive definite");
  for (double damp = options.damp; damp <= options.damp * 1e3 + 1e-9 && !factored.ok();
       damp *= 10) {
    u = h.hessian();
    double mean = 0;
    for (int64_t j = 0; j < n; ++j) {
      double& d = u[j * n + j];
      if (d == 0) d = 1;  // a channel that never saw input
      mean += d;
    }
    const double lambda = std::max(damp, 1e-12) * mean / static_cast<double>(n);
    for (int64_t j = 0; j < n; ++j) u[j * n + j] += lambda;
    factored = linalg::inverse_cholesky_upper(&u, n);
  }
  KILN_RETURN_IF_ERROR(factored);

  std::vector<double> w(weight, weight + out * n);
  std::vector<uint8_t> mask(static_cast<size_t>(out * n), 1);
  const int64_t block = std::max<int64_t>(4, int64_t{options.block} / 4 * 4);
  std::vector<double> err(static_cast<size_t>(out * block));
  for (int64_t i1 = 0; i1 < n; i1 += block) {
    const int64_t i2 = std::min(n, i1 + block);
    // Inside the block, row by row (rows are independent): choose masks, prune, propagate the
    // error to the block's remaining columns.
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < out; ++r) {
      double* wr = w.data() + r * n;
      double* er = err.data() + r * block;
      uint8_t* mr = mask.data() + r * n;
      for (int64_t c = i1; c < i2; ++c) {
        if ((c - i1) % 4 == 0) {
          std::array<double, 4> score;
          for (int t = 0; t < 4; ++t) {
            const double d = u[(c + t) * n + c + t];
            score[t] = wr[c + t] * wr[c + t] / (d * d);
          }
          prune_two_of_four(score, mr + c);
        }
        const double e = mr[c] ? 0.0 : wr[c] / u[c * n + c];
        er[c - i1] = e;
        if (!mr[c]) wr[c] = 0;
        if (e != 0) simd::axpy(wr + c + 1, -e, u.data() + c * n + c + 1, i2 - c - 1);
      }
    }
    if (i2 == n) break;
    // The block's errors reach the later columns in one lazy update, in column chunks so that
    // the chunk of U stays in cache while every row of the tile uses it.
    constexpr int64_t kChunk = 512, kTile = 16;
#pragma omp parallel for schedule(static)
    for (int64_t r0 = 0; r0 < out; r0 += kTile) {
      for (int64_t c0 = i2; c0 < n; c0 += kChunk) {
        const int64_t len = std::min(kChunk, n - c0);
        for (int64_t r = r0; r < std::min(out, r0 + kTile); ++r) {
          // Half the errors are zero (kept weights); gather the others four at a time.
          double c[4];
          const double* x[4];
          int m = 0;
          for (int64_t t = 0; t < i2 - i1; ++t) {
            const double e = err[r * block + t];
            if (e == 0) continue;
            c[m] = -e;
            x[m++] = u.data() + (i1 + t) * n + c0;
            if (m == 4) simd::axpy4(w.data() + r * n + c0, c, x, len), m = 0;
          }
          for (int k = 0; k < m; ++k) simd::axpy(w.data() + r * n + c0, c[k], x[k], len);
        }
      }
    }
  }
  return PrunedWeights{std::vector<float>(w.begin(), w.end()), std::move(mask)};
}

double output_error(const HessianAccumulator& h, const float* w, const float* w_new, int64_t out) {
  const int64_t n = h.cols();
  if (h.samples() == 0) return 0;
  const std::vector<double> xtx = h.hessian();  // 2 X^T X / samples
  double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (int64_t r = 0; r < out; ++r) {
    std::vector<double> d(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      d[j] = static_cast<double>(w[r * n + j]) - static_cast<double>(w_new[r * n + j]);
    }
    for (int64_t i = 0; i < n; ++i) {
      if (d[i] != 0) total += d[i] * simd::dot(xtx.data() + i * n, d.data(), n);
    }
  }
  return total / 2;
}

bool is_2_4(const uint8_t* mask, int64_t out, int64_t in) {
  if (out < 0 || in < 0 || in % 4 != 0) return false;
  for (int64_t g = 0; g < out * in; g += 4) {
    if ((mask[g] != 0) + (mask[g + 1] != 0) + (mask[g + 2] != 0) + (mask[g + 3] != 0) != 2) {
      return false;
    }
  }
  return true;
}

}  // namespace kiln::quant
