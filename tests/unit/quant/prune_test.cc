#include "quant/prune.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "quant/linalg.h"

namespace kiln::quant {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, sigma);
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  return x;
}

// Inputs X [rows, n] = Z A + noise with Z [rows, latent]: strongly correlated channels, as
// transformer activations are (and rank-deficient when latent < n and noise = 0).
std::vector<float> correlated_inputs(int64_t rows, int64_t n, int64_t latent, float noise,
                                     uint32_t seed) {
  const auto z = gaussian(rows * latent, seed), a = gaussian(latent * n, seed + 1);
  auto x = gaussian(rows * n, seed + 2, noise);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < latent; ++k) {
      const float zk = z[r * latent + k];
      for (int64_t j = 0; j < n; ++j) x[r * n + j] += zk * a[k * n + j];
    }
  }
  return x;
}

// ||X W^T - X W'^T||_F^2, computed directly.
double direct_error(const std::vector<float>& x, int64_t rows, const std::vector<float>& w,
                    const std::vector<float>& w2, int64_t out, int64_t n) {
  double e = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double d = 0;
      for (int64_t j = 0; j < n; ++j)
        d += static_cast<double>(x[r * n + j]) * (w[o * n + j] - w2[o * n + j]);
      e += d * d;
    }
  }
  return e;
}

void expect_2_4(const PrunedWeights& p, int64_t out, int64_t in) {
  ASSERT_EQ(p.weight.size(), static_cast<size_t>(out * in));
  EXPECT_TRUE(is_2_4(p.mask.data(), out, in));
  for (int64_t g = 0; g < out * in; g += 4) {
    int zeros = 0;
    for (int t = 0; t < 4; ++t) {
      zeros += p.weight[g + t] == 0.0f;
      if (!p.mask[g + t]) {
        EXPECT_EQ(p.weight[g + t], 0.0f);
      }
      EXPECT_TRUE(std::isfinite(p.weight[g + t]));
    }
    ASSERT_EQ(zeros, 2) << "group " << g / 4;
  }
}

TEST(Prune, MagnitudeKeepsTheTwoLargest) {
  const std::vector<float> w = {1, -3, 2, 0.5f, /**/ 0, 0, 0, 7, /**/ 2, -2, 2, 1};
  auto p = prune_2_4_magnitude(w.data(), 1, 12);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->weight, (std::vector<float>{0, -3, 2, 0, /**/ 0, 0, 0, 7, /**/ 2, -2, 0, 0}));
  EXPECT_EQ(p->mask, (std::vector<uint8_t>{0, 1, 1, 0, /**/ 1, 0, 0, 1, /**/ 1, 1, 0, 0}));
  EXPECT_FALSE(prune_2_4_magnitude(w.data(), 2, 6).ok());
}

TEST(Prune, SparseGptBeatsMagnitudeOnCorrelatedInputs) {
  const int64_t rows = 1024, n = 256, out = 96;
  const auto x = correlated_inputs(rows, n, 32, 0.1f, 10);
  const auto w = gaussian(out * n, 11);
  HessianAccumulator h(n);
  ASSERT_TRUE(h.add(x.data(), rows / 2, n).ok());  // in two batches
  ASSERT_TRUE(h.add(x.data() + rows / 2 * n, rows / 2, n).ok());
  EXPECT_EQ(h.samples(), rows);
  auto mag = prune_2_4_magnitude(w.data(), out, n);
  auto sgpt = prune_2_4_sparsegpt(w.data(), out, n, h);
  ASSERT_TRUE(mag.ok() && sgpt.ok()) << sgpt.status().to_string();
  expect_2_4(*sgpt, out, n);
  const double e_mag = direct_error(x, rows, w, mag->weight, out, n);
  const double e_sgpt = direct_error(x, rows, w, sgpt->weight, out, n);
  std::printf("output error: magnitude %.4g, sparsegpt %.4g (ratio %.3f)\n", e_mag, e_sgpt,
              e_sgpt / e_mag);
  EXPECT_LT(e_sgpt, 0.8 * e_mag);
  // output_error() computes the same quantity from the accumulated Hessian.
  EXPECT_NEAR(output_error(h, w.data(), sgpt->weight.data(), out) * rows, e_sgpt, 1e-6 * e_sgpt);
}

TEST(Prune, DampeningHandlesRankDeficientInputs) {
  // Fewer samples than channels, exact duplicate channels and a channel that is always zero:
  // X^T X is singular.
  const int64_t rows = 40, n = 128, out = 32;
  auto x = correlated_inputs(rows, n, 8, 0.0f, 20);
  for (int64_t r = 0; r < rows; ++r) {
    x[r * n + 1] = x[r * n + 0];
    x[r * n + 77] = 0;
  }
  const auto w = gaussian(out * n, 21);
  HessianAccumulator h(n);
  ASSERT_TRUE(h.add(x.data(), rows, n).ok());
  auto sgpt = prune_2_4_sparsegpt(w.data(), out, n, h);
  ASSERT_TRUE(sgpt.ok()) << sgpt.status().to_string();
  expect_2_4(*sgpt, out, n);
  auto mag = prune_2_4_magnitude(w.data(), out, n);
  ASSERT_TRUE(mag.ok());
  EXPECT_LT(direct_error(x, rows, w, sgpt->weight, out, n),
            0.5 * direct_error(x, rows, w, mag->weight, out, n));
}

TEST(Prune, SparseGptErrors) {
  const auto w = gaussian(8 * 16, 1);
  HessianAccumulator empty(16), other(12);
  EXPECT_FALSE(prune_2_4_sparsegpt(w.data(), 8, 16, empty).ok());  // no samples
  EXPECT_FALSE(prune_2_4_sparsegpt(w.data(), 8, 16, other).ok());  // size mismatch
  EXPECT_FALSE(prune_2_4_sparsegpt(w.data(), 8, 14, other).ok());  // not a multiple of 4
  EXPECT_FALSE(other.add(w.data(), 1, 16).ok());
}

TEST(Linalg, InverseCholeskyUpperFactorsTheInverse) {
  const int64_t n = 70;  // crosses the 32-row blocks
  const auto b = gaussian(n * n, 5);
  std::vector<double> a(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t k = 0; k < n; ++k) a[i * n + j] += double(b[i * n + k]) * b[j * n + k];
    }
    a[i * n + i] += 1;
  }
  std::vector<double> u = a;
  ASSERT_TRUE(linalg::inverse_cholesky_upper(&u, n).ok());
  // U upper with a positive diagonal, and A U^T U = I.
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_GT(u[i * n + i], 0);
    for (int64_t j = 0; j < i; ++j) ASSERT_EQ(u[i * n + j], 0.0);
  }
  double worst = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;  // (A U^T U)[i][j]
      for (int64_t k = 0; k < n; ++k) {
        double utu = 0;
        for (int64_t m = 0; m <= std::min(k, j); ++m) utu += u[m * n + k] * u[m * n + j];
        s += a[i * n + k] * utu;
      }
      worst = std::max(worst, std::fabs(s - (i == j)));
    }
  }
  EXPECT_LT(worst, 1e-9);
  std::vector<double> not_pd = {1, 2, 2, 1};
  EXPECT_FALSE(linalg::inverse_cholesky_upper(&not_pd, 2).ok());
}

// BERT-base's largest layers must prune in seconds (the timings are printed, not asserted).
TEST(Prune, SparseGptBertBaseShapes) {
  for (auto [out, in] : {std::pair<int64_t, int64_t>{3072, 768}, {768, 3072}}) {
    const int64_t rows = 512;
    const auto x = correlated_inputs(rows, in, 64, 0.5f, 30);
    const auto w = gaussian(out * in, 31, 0.02f);
    const auto t0 = std::chrono::steady_clock::now();
    HessianAccumulator h(in);
    ASSERT_TRUE(h.add(x.data(), rows, in).ok());
    const auto t1 = std::chrono::steady_clock::now();
    auto p = prune_2_4_sparsegpt(w.data(), out, in, h);
    const auto t2 = std::chrono::steady_clock::now();
    ASSERT_TRUE(p.ok());
    expect_2_4(*p, out, in);
    std::printf("[%lld, %lld]: hessian of %lld rows %.2f s, sparsegpt %.2f s\n", (long long)out,
                (long long)in, (long long)rows, std::chrono::duration<double>(t1 - t0).count(),
                std::chrono::duration<double>(t2 - t1).count());
  }
}

}  // namespace
}  // namespace kiln::quant
