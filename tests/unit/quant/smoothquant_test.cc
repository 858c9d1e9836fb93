#include "quant/smoothquant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace kiln::quant {
namespace {

struct Layer {
  int64_t rows = 64, in = 48, out = 32;
  std::vector<float> x, w;
  std::vector<float> act_absmax;
};

// Activations with a few outlier channels (as LayerNorm outputs of BERT have).
Layer make_layer(uint32_t seed) {
  Layer l;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  l.x.resize(l.rows * l.in);
  l.w.resize(l.out * l.in);
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t j = 0; j < l.in; ++j) l.x[r * l.in + j] = g(rng) * (j % 11 == 3 ? 40.0f : 1.0f);
  }
  for (auto& v : l.w) v = 0.05f * g(rng);
  l.act_absmax.assign(l.in, 0.0f);
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t j = 0; j < l.in; ++j) {
      l.act_absmax[j] = std::max(l.act_absmax[j], std::fabs(l.x[r * l.in + j]));
    }
  }
  return l;
}

// y = x w^T in double, x [rows, in], w [out, in]; x is divided by s per channel when given.
std::vector<double> matmul(const Layer& l, const std::vector<float>& w, const float* s) {
  std::vector<double> y(l.rows * l.out, 0.0);
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t o = 0; o < l.out; ++o) {
      double acc = 0;
      for (int64_t j = 0; j < l.in; ++j) {
        const double xv = s ? static_cast<double>(l.x[r * l.in + j]) / s[j] : l.x[r * l.in + j];
        acc += xv * w[o * l.in + j];
      }
      y[r * l.out + o] = acc;
    }
  }
  return y;
}

TEST(SmoothQuant, TransformLeavesTheProductUnchanged) {
  Layer l = make_layer(1);
  auto s = smooth_scales(l.act_absmax, l.w.data(), l.out, l.in, {});
  ASSERT_TRUE(s.ok());
  // In double, with the float factors: (X / s)(W * s)^T == X W^T up to double rounding.
  std::vector<double> xs(l.rows * l.in), ws(l.out * l.in);
  double worst = 0;
  for (int64_t r = 0; r < l.rows; ++r) {
    for (int64_t o = 0; o < l.out; ++o) {
      double a = 0, b = 0;
      for (int64_t j = 0; j < l.in; ++j) {
        const double x = l.x[r * l.in + j], w = l.w[o * l.in + j], sj = (*s)[j];
        a += (x / sj) * (w * sj);
        b += x * w;
      }
      worst = std::max(worst, std::fabs(a - b));
    }
  }
  EXPECT_LT(worst, 1e-12);
  // The float weights the library writes differ only by float rounding of W * s.
  std::vector<float> w2 = l.w;
  scale_weight_columns(w2.data(), l.out, l.in, s->data());
  const auto ref = matmul(l, l.w, nullptr), got = matmul(l, w2, s->data());
  double err = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    err = std::max(err, std::fabs(ref[i] - got[i]));
    norm = std::max(norm, std::fabs(ref[i]));
  }
  EXPECT_LT(err, 1e-6 * norm);
  // And the transform did something: the outlier channels' weights grew.
  EXPECT_GT(std::fabs(w2[3]), 3 * std::fabs(l.w[3]));
}

TEST(SmoothQuant, HalfAlphaBalancesActivationAndWeightMaxima) {
  Layer l = make_layer(2);
  model::DenseWeights d{l.w, std::vector<float>(l.out, 0.0f), l.out, l.in};
  auto s = smooth_linear(l.act_absmax, &d, {.alpha = 0.5f});
  ASSERT_TRUE(s.ok());
  for (int64_t j = 0; j < l.in; ++j) {
    float wmax = 0;
    for (int64_t o = 0; o < l.out; ++o) wmax = std::max(wmax, std::fabs(d.weight[o * l.in + j]));
    EXPECT_NEAR(l.act_absmax[j] / (*s)[j], wmax, 1e-5 * wmax) << j;
  }
}

TEST(SmoothQuant, AlphaOneMovesEverythingIntoTheWeights) {
  Layer l = make_layer(3);
  auto s = smooth_scales(l.act_absmax, l.w.data(), l.out, l.in, {.alpha = 1.0f});
  ASSERT_TRUE(s.ok());
  for (int64_t j = 0; j < l.in; ++j) EXPECT_FLOAT_EQ(l.act_absmax[j] / (*s)[j], 1.0f);
}

TEST(SmoothQuant, DeadChannelsAndBadInput) {
  Layer l = make_layer(4);
  l.act_absmax[5] = 0;
  for (int64_t o = 0; o < l.out; ++o) l.w[o * l.in + 7] = 0;
  auto s = smooth_scales(l.act_absmax, l.w.data(), l.out, l.in, {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[5], 1.0f);
  EXPECT_EQ((*s)[7], 1.0f);
  EXPECT_NE((*s)[6], 1.0f);
  // Tiny activations against large weights clamp at min_scale.
  l.act_absmax[9] = 1e-20f;
  auto c = smooth_scales(l.act_absmax, l.w.data(), l.out, l.in, {.alpha = 0.9f});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[9], 1e-5f);
  EXPECT_FALSE(smooth_scales(l.act_absmax, l.w.data(), l.out, l.in + 1, {}).ok());
  EXPECT_FALSE(smooth_scales(l.act_absmax, l.w.data(), l.out, l.in, {.alpha = 1.5f}).ok());
  l.act_absmax[0] = NAN;
  EXPECT_FALSE(smooth_scales(l.act_absmax, l.w.data(), l.out, l.in, {}).ok());
}

TEST(SmoothQuant, FoldIntoLayerNormDividesItsOutput) {
  model::NormWeights n{{1.0f, 2.0f, -0.5f}, {0.1f, -0.2f, 0.3f}};
  const std::vector<float> s = {2.0f, 0.5f, 4.0f};
  const std::vector<float> normalized = {0.3f, -1.2f, 2.0f};
  auto before = n;
  ASSERT_TRUE(fold_smooth_into_norm(s, &n).ok());
  for (int j = 0; j < 3; ++j) {
    const float y = before.gamma[j] * normalized[j] + before.beta[j];
    EXPECT_FLOAT_EQ(n.gamma[j] * normalized[j] + n.beta[j], y / s[j]);
  }
  EXPECT_FALSE(fold_smooth_into_norm({1.0f, 0.0f, 1.0f}, &n).ok());
  EXPECT_FALSE(fold_smooth_into_norm({1.0f}, &n).ok());
}

}  // namespace
}  // namespace kiln::quant
