#include "quant/calibration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

namespace kiln::quant {
namespace {

// numpy.percentile(|x|, p) with its default linear interpolation.
double numpy_percentile_abs(std::vector<float> x, double p) {
  for (auto& v : x) v = std::fabs(v);
  std::sort(x.begin(), x.end());
  const double pos = p / 100.0 * static_cast<double>(x.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, x.size() - 1);
  return x[lo] + (pos - static_cast<double>(lo)) * (x[hi] - x[lo]);
}

std::vector<float> uniform(size_t n, float a, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-a, a);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  return x;
}

// N(0, 1) with `outliers` values spread uniformly over +-[10, 50] (activation outliers).
std::vector<float> gaussian_with_outliers(size_t n, size_t outliers, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::uniform_real_distribution<float> u(10, 50);
  std::vector<float> x(n);
  for (auto& v : x) v = g(rng);
  for (size_t i = 0; i < outliers; ++i) x[(i * 7919) % n] = (i % 2 ? -1 : 1) * u(rng);
  return x;
}

std::vector<float> laplace(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> e(1);
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = (i % 2 ? -1 : 1) * e(rng);
  return x;
}

// Fed in rows of 1000 "channels", in several batches, so that the range grows on the way.
ActivationStats collect(const std::vector<float>& x, int64_t batch_rows = 50) {
  ActivationStats s;
  const int64_t cols = 1000, rows = static_cast<int64_t>(x.size()) / cols;
  for (int64_t r = 0; r < rows; r += batch_rows) {
    EXPECT_TRUE(s.add(x.data() + r * cols, std::min(batch_rows, rows - r), cols).ok());
  }
  return s;
}

// Mean squared error of fake-quantizing x to int8 with clip threshold t.
double quant_mse(const std::vector<float>& x, double t) {
  double e = 0;
  const double step = t / 127;
  for (float v : x) {
    const double q = std::clamp(std::nearbyint(v / step), -127.0, 127.0) * step;
    e += (v - q) * (v - q);
  }
  return e / static_cast<double>(x.size());
}

float threshold(const ActivationStats& s, Calibrator c, double percentile = 99.99) {
  CalibratorOptions o;
  o.method = c;
  o.percentile = percentile;
  auto t = select_threshold(s, o);
  EXPECT_TRUE(t.ok()) << t.status().to_string();
  return t.ok() ? *t : 0.0f;
}

TEST(ActivationStats, RangesCountsAndChannelMaxima) {
  ActivationStats s;
  const std::vector<float> x = {1, -2, 0.5f, 0, -4, 3, NAN, 0.25f, 1};  // 3 rows x 3 channels
  ASSERT_TRUE(s.add(x.data(), 3, 3).ok());
  EXPECT_EQ(s.absmax(), 4.0f);
  EXPECT_EQ(s.count(), 8);
  EXPECT_EQ(s.non_finite(), 1);
  EXPECT_EQ(s.channel_absmax(), (std::vector<float>{1, 4, 3}));
  EXPECT_FALSE(s.add(x.data(), 1, 4).ok());  // channel count is fixed by the first batch
  int64_t total = 0;
  for (int64_t c : s.histogram()) total += c;
  EXPECT_EQ(total, 8);
}

TEST(ActivationStats, GrowingRangeKeepsEveryCountInItsExactBin) {
  const auto small = uniform(20000, 1.0f, 1);
  const auto large = uniform(20000, 3.5f, 2);
  ActivationStats grown;
  ASSERT_TRUE(grown.add(small.data(), 20, 1000).ok());
  const double first_range = grown.range();
  ASSERT_TRUE(grown.add(large.data(), 20, 1000).ok());
  EXPECT_EQ(grown.range(), 4 * first_range);  // doubled twice to cover 3.5
  EXPECT_GT(grown.absmax(), 3.4f);
  EXPECT_LE(grown.absmax(), 3.5f);
  // Binning everything directly at the final width gives the same histogram.
  std::vector<int64_t> direct(kHistogramBins, 0);
  for (const auto* v : {&small, &large}) {
    for (float f : *v) {
      const auto k = static_cast<int64_t>(std::fabs(f) * (kHistogramBins / grown.range()));
      ++direct[std::min<int64_t>(k, kHistogramBins - 1)];
    }
  }
  EXPECT_EQ(grown.histogram(), direct);
  // The data fill more than half the bins.
  EXPECT_GT(grown.absmax(), grown.range() / 2);
}

TEST(Calibrators, MaxIsAbsmax) {
  const auto x = gaussian_with_outliers(200000, 20, 3);
  float absmax = 0;
  for (float v : x) absmax = std::max(absmax, std::fabs(v));
  const auto s = collect(x);
  EXPECT_EQ(threshold(s, Calibrator::kMax), absmax);
}

TEST(Calibrators, PercentileMatchesNumpyWithinABin) {
  const auto x = gaussian_with_outliers(400000, 40, 4);
  const auto s = collect(x);
  for (double p : {50.0, 99.0, 99.9, 99.99}) {
    const double want = numpy_percentile_abs(x, p);
    const float got = threshold(s, Calibrator::kPercentile, p);
    EXPECT_GE(got, want - 1e-6) << p;  // the upper edge of the percentile's bin
    EXPECT_LE(got, want + s.bin_width()) << p;
  }
  EXPECT_EQ(threshold(s, Calibrator::kPercentile, 100), s.absmax());
  CalibratorOptions bad{Calibrator::kPercentile, 0.0};
  EXPECT_FALSE(select_threshold(s, bad).ok());
}

TEST(Calibrators, UniformDataKeepNearlyTheWholeRange) {
  const auto x = uniform(400000, 2.0f, 5);
  const auto s = collect(x);
  EXPECT_GT(threshold(s, Calibrator::kEntropy), 0.97f * s.absmax());
  EXPECT_GT(threshold(s, Calibrator::kMse), 0.98f * s.absmax());
}

TEST(Calibrators, ARareOutlierIsClipped) {
  auto x = gaussian_with_outliers(400000, 0, 6);
  x[123] = -40;
  const auto s = collect(x);
  const float t_entropy = threshold(s, Calibrator::kEntropy);
  const float t_mse = threshold(s, Calibrator::kMse);
  // A good range for N(0, 1) lies a few sigma out.
  EXPECT_LT(t_entropy, 0.3f * s.absmax());
  EXPECT_GT(t_entropy, 2.5f);
  // mse trades the outlier's clipping error against finer steps for everything else.
  EXPECT_LT(t_mse, 0.5f * s.absmax());
  EXPECT_GT(t_mse, 2.5f);
  // On the raw samples, the chosen clip beats no clip.
  EXPECT_LT(quant_mse(x, t_mse), 0.7 * quant_mse(x, s.absmax()));
}

TEST(Calibrators, FrequentOutliersSplitEntropyAndMse) {
  // 100 outliers in 400k: clipping them costs more squared error than the coarser steps do,
  // so mse keeps them; entropy ignores how far clipped values move and still clips.
  const auto x = gaussian_with_outliers(400000, 100, 6);
  const auto s = collect(x);
  const float t_entropy = threshold(s, Calibrator::kEntropy);
  const float t_mse = threshold(s, Calibrator::kMse);
  EXPECT_LT(t_entropy, 0.3f * s.absmax());
  EXPECT_GT(t_entropy, 2.5f);
  EXPECT_GT(t_mse, 0.5f * s.absmax());
  EXPECT_LE(quant_mse(x, t_mse), quant_mse(x, s.absmax()));
  EXPECT_LT(quant_mse(x, t_mse), quant_mse(x, t_entropy));
}

TEST(Calibrators, LaplaceIsClippedBelowAbsmax) {
  const auto x = laplace(400000, 7);
  const auto s = collect(x);
  const float t_entropy = threshold(s, Calibrator::kEntropy);
  const float t_mse = threshold(s, Calibrator::kMse);
  // pytorch-quantization's entropy calibrator gives ~0.78-0.87 of absmax on such samples.
  EXPECT_LT(t_entropy, 0.9f * s.absmax());
  EXPECT_LT(t_mse, 0.8f * s.absmax());
  EXPECT_GT(t_mse, 4.0f);  // Laplace(1): clipping below ~4 costs more than it saves
  EXPECT_LT(quant_mse(x, t_mse), quant_mse(x, s.absmax()));
}

TEST(Calibrators, EntropyMatchesPytorchQuantization) {
  // Thresholds (in bins) from pytorch-quantization's _compute_amax_entropy (TensorRT
  // 8.6, without its bins[0] = bins[1] hack) on the same histograms.
  std::vector<int64_t> h(2048), h2(2048);
  for (int k = 0; k < 2048; ++k) {
    h[k] =
        k <= 1200 || k % 3 == 0 ? static_cast<int64_t>(std::floor(1e6 * std::exp(-k / 150.0))) : 0;
    h2[k] = static_cast<int64_t>(std::floor(1e5 * std::exp(-std::pow(k / 300.0, 2) / 2)));
  }
  h[2047] = 5;
  h2[1500] += 40;
  h2[2047] = 3;
  EXPECT_EQ(threshold_entropy(h, 1.0), 1492);
  EXPECT_EQ(threshold_entropy(h2, 1.0), 1397);
  EXPECT_EQ(threshold_entropy(h, 0.5), 746);  // thresholds scale with the bin width
}

TEST(Calibrators, MseFindsTheBestBinEdgeOnAHistogram) {
  // Half the mass at |x| ~ 0 and one bin far out: clipping it costs (2000 - t)^2 per count,
  // rounding costs ~step^2 / 12 per count; brute force over every edge agrees.
  std::vector<int64_t> h(2048, 0);
  for (int k = 0; k < 300; ++k) h[k] = 1000;
  h[2000] = 3;
  const double t = threshold_mse(h, 1.0, 128, 1);
  double best = 1e300, best_t = 0;
  for (int i = 1; i <= 2001; ++i) {
    const double step = i / 127.0;
    double e = 0;
    for (int k = 0; k < 2048; ++k) {
      if (!h[k]) continue;
      const double c = k + 0.5, q = std::min(std::nearbyint(c / step), 127.0) * step;
      e += h[k] * (c - q) * (c - q);
    }
    if (e < best) best = e, best_t = i;
  }
  EXPECT_EQ(t, best_t);
}

TEST(Calibrators, EntropyOfExactlyRepresentableDataIsLossless) {
  // Data that 128 levels represent exactly (one non-empty bin per level): KL is 0 at the full
  // range, so nothing is clipped; a tail in the last bins makes clipping it cost.
  std::vector<int64_t> h(1024, 0);
  for (int k = 0; k < 1024; k += 8) h[k] = 100;
  EXPECT_EQ(threshold_entropy(h, 1.0), 1024 - 7);  // one past the last non-empty bin
  EXPECT_EQ(threshold_percentile(h, 1.0, 100), 1024 - 7);
}

TEST(Calibrators, AllZeroAndEmpty) {
  ActivationStats s;
  EXPECT_FALSE(select_threshold(s, {}).ok());
  const std::vector<float> z(64, 0.0f);
  ASSERT_TRUE(s.add(z.data(), 8, 8).ok());
  for (auto c : {Calibrator::kMax, Calibrator::kEntropy, Calibrator::kMse}) {
    EXPECT_EQ(threshold(s, c), 1.0f);
  }
}

TEST(Calibrators, NamesRoundTrip) {
  for (auto c :
       {Calibrator::kMax, Calibrator::kPercentile, Calibrator::kEntropy, Calibrator::kMse}) {
    Calibrator back;
    ASSERT_TRUE(parse_calibrator(calibrator_name(c), &back));
    EXPECT_EQ(back, c);
  }
  Calibrator c;
  EXPECT_FALSE(parse_calibrator("kl", &c));
}

TEST(CalibrationCollector, ConcurrentObserversLoseNothing) {
  CalibrationCollector col(2);
  const auto x = uniform(4000, 1.0f, 8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        EXPECT_TRUE(col.observe(1, LinearSite::kFfnIn, x.data(), 100, 40).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(col.stats(1, LinearSite::kFfnIn).count(), 4 * 25 * 4000);
  EXPECT_EQ(col.stats(0, LinearSite::kFfnIn).count(), 0);
  EXPECT_FALSE(col.observe(2, LinearSite::kQkv, x.data(), 1, 40).ok());
}

}  // namespace
}  // namespace kiln::quant
