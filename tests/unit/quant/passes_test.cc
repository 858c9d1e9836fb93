// The optimization passes on the tiny random BERT of the golden tests, fed random token batches:
// INT8 calibration (static scales, SmoothQuant, GELU clip), mixed precision and 2:4 pruning.
#include <gtest/gtest.h>

#include <random>

#include "../plan/plan_test_util.h"
#include "backend/cpu/cpu_features.h"
#include "quant/mixed_precision.h"
#include "quant/prune_model.h"
#include "quant/quantize_model.h"

namespace kiln::quant {
namespace {

using quant::LinearSite;

bool have_int8() { return backend::cpu::cpu_features().avx512_vnni; }

struct Fixture {
  TrialModel model;
  model::EncoderWeights weights;
  CalibrationSet calib, valid;
};

CalibrationSet random_set(int64_t vocab, int sequences, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(vocab) - 1);
  std::uniform_int_distribution<int> len(4, 40);
  CalibrationSet set;
  TokenBatch b;
  for (int s = 0; s < sequences; ++s) {
    std::vector<int32_t> ids(static_cast<size_t>(len(rng)));
    for (int32_t& x : ids) x = id(rng);
    b.add(ids, {});
    set.tokens += static_cast<int64_t>(ids.size());
    ++set.texts;
    if (b.num_sequences() == 8) {
      set.batches.push_back(std::move(b));
      b = TokenBatch();
    }
  }
  if (b.num_sequences() > 0) set.batches.push_back(std::move(b));
  return set;
}

Fixture tiny() {
  auto src = plan::read_model_dir(plan::testing::tiny_model("bert"));
  EXPECT_TRUE(src.ok()) << src.status().to_string();
  Fixture f;
  auto device = backend::find_device("cpu");
  EXPECT_TRUE(device.ok());
  f.model.device = *device;
  f.model.config = src->config;
  f.model.pooling.mode = PoolingMode::kMean;
  f.model.num_threads = 1;
  f.weights = std::move(src->weights);
  f.calib = random_set(f.model.config.vocab_size, 48, 1);
  f.valid = random_set(f.model.config.vocab_size, 24, 2);
  return f;
}

ModelOutputs fp32_outputs(const Fixture& f, const model::EncoderWeights& w) {
  auto exec = compile_trial(f.model, w, nullptr);
  EXPECT_TRUE(exec.ok()) << exec.status().to_string();
  auto out = run_outputs(**exec, f.model, f.valid);
  EXPECT_TRUE(out.ok());
  return *out;
}

TEST(CalibrateInt8, StaticScalesComeFromTheCalibrator) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  Fixture f = tiny();
  QuantizeOptions max_opts;
  auto max = calibrate_int8(f.model, f.weights, f.calib, max_opts);
  ASSERT_TRUE(max.ok()) << max.status().to_string();
  ASSERT_EQ(max->sites.size(), 2u * quant::kLinearSites);
  QuantizeOptions pct_opts;
  pct_opts.calibrator.method = quant::Calibrator::kPercentile;
  pct_opts.calibrator.percentile = 99.0;
  auto pct = calibrate_int8(f.model, f.weights, f.calib, pct_opts);
  ASSERT_TRUE(pct.ok());
  for (size_t i = 0; i < max->sites.size(); ++i) {
    const SiteCalibration& c = max->sites[i];
    const quant::LinearQuant& q = max->quant.layers[c.layer].sites[static_cast<int>(c.site)];
    EXPECT_EQ(q.precision, Precision::kInt8);
    EXPECT_EQ(q.scaling, quant::ActivationScaling::kStaticPerTensor);
    EXPECT_GT(c.absmax, 0.0f);
    EXPECT_FLOAT_EQ(c.threshold, c.absmax);  // max calibrator
    EXPECT_FLOAT_EQ(q.input_scale, c.absmax / 127.0f);
    EXPECT_TRUE(q.smooth.empty());
    EXPECT_LT(pct->sites[i].threshold, c.absmax);  // the 99th percentile clips
  }
  // Static INT8 stays close to FP32 on held-out batches.
  const ModelOutputs ref = fp32_outputs(f, f.weights);
  auto c = measure(f.model, f.weights, max->quant, f.valid, ref);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_GT(c->mean, 0.99);
}

TEST(CalibrateInt8, SmoothQuantAndGeluClipAreRecordedAndApplied) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  Fixture f = tiny();
  QuantizeOptions o;
  o.smoothquant_alpha = 0.5f;
  o.gelu_clip = 0.5f;
  o.scaling = quant::ActivationScaling::kDynamicPerToken;
  auto cal = calibrate_int8(f.model, f.weights, f.calib, o);
  ASSERT_TRUE(cal.ok()) << cal.status().to_string();
  EXPECT_FLOAT_EQ(cal->quant.gelu_clip, 0.5f);
  for (const SiteCalibration& c : cal->sites) {
    const quant::LinearQuant& q = cal->quant.layers[c.layer].sites[static_cast<int>(c.site)];
    ASSERT_EQ(static_cast<int64_t>(q.smooth.size()),
              site_weights(f.weights.layers[c.layer], c.site).in);
    EXPECT_GT(c.max_smooth, 0.0f);
    if (c.site == LinearSite::kFfnOut) {
      EXPECT_LE(c.raw_absmax, 0.5f);  // clipped before the statistics
    }
  }
  // apply_smoothing scales exactly the INT8 layers' input columns.
  quant::ModelQuant q = cal->quant;
  q.layers[1].sites[0].precision = Precision::kBF16;
  const auto smoothed = apply_smoothing(f.weights, q);
  const auto& w0 = f.weights.layers[0].qkv;
  const auto& s0 = q.layers[0].sites[0].smooth;
  for (int64_t k = 0; k < w0.in; ++k) {
    EXPECT_FLOAT_EQ(smoothed.layers[0].qkv.weight[k], w0.weight[k] * s0[k]);
  }
  EXPECT_EQ(smoothed.layers[1].qkv.weight, f.weights.layers[1].qkv.weight);
  // Without the clip (which changes the model itself), smoothed INT8 tracks FP32.
  o.gelu_clip = 0;
  auto plain = calibrate_int8(f.model, f.weights, f.calib, o);
  ASSERT_TRUE(plain.ok());
  auto c = measure(f.model, f.weights, plain->quant, f.valid, fp32_outputs(f, f.weights));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_GT(c->mean, 0.99);
}

// Static scales with SmoothQuant: the second statistics pass sees the smoothed inputs, so each
// static scale covers what the layer really quantizes, and the model stays close to FP32.
TEST(CalibrateInt8, StaticScalesOfSmoothedInputs) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  Fixture f = tiny();
  QuantizeOptions o;
  o.smoothquant_alpha = 0.5f;
  auto cal = calibrate_int8(f.model, f.weights, f.calib, o);
  ASSERT_TRUE(cal.ok()) << cal.status().to_string();
  for (const SiteCalibration& c : cal->sites) {
    const quant::LinearQuant& q = cal->quant.layers[c.layer].sites[static_cast<int>(c.site)];
    ASSERT_FALSE(q.smooth.empty());
    EXPECT_EQ(q.scaling, quant::ActivationScaling::kStaticPerTensor);
    EXPECT_FLOAT_EQ(q.input_scale, c.absmax / 127.0f);  // max calibrator on smoothed inputs
    EXPECT_NE(c.absmax, c.raw_absmax);
  }
  auto c = measure(f.model, f.weights, cal->quant, f.valid, fp32_outputs(f, f.weights));
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_GT(c->mean, 0.99);
}

TEST(MixedPrecision, FallsBackMostSensitiveFirstUntilTheDropIsMet) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  Fixture f = tiny();
  QuantizeOptions o;
  o.calibrator.method = quant::Calibrator::kPercentile;
  o.calibrator.percentile = 90.0;  // coarse on purpose: a measurable drop to recover
  auto cal = calibrate_int8(f.model, f.weights, f.calib, o);
  ASSERT_TRUE(cal.ok());
  const ModelOutputs ref = fp32_outputs(f, f.weights);

  MixedOptions loose;
  loose.max_drop = 0.5;
  auto none = choose_mixed_precision(f.model, f.weights, cal->quant, f.valid, ref, loose);
  ASSERT_TRUE(none.ok()) << none.status().to_string();
  EXPECT_TRUE(none->reached);
  EXPECT_TRUE(none->kept_high.empty());
  ASSERT_EQ(none->sensitivity.size(), 8u);
  for (size_t i = 1; i < none->sensitivity.size(); ++i) {
    EXPECT_GE(none->sensitivity[i - 1].drop, none->sensitivity[i].drop);
  }

  MixedOptions tight;
  tight.max_drop = none->all_int8_drop / 4;
  tight.fallback = Precision::kF32;
  auto some = choose_mixed_precision(f.model, f.weights, cal->quant, f.valid, ref, tight);
  ASSERT_TRUE(some.ok());
  EXPECT_TRUE(some->reached);
  EXPECT_LE(some->drop, tight.max_drop);
  ASSERT_FALSE(some->kept_high.empty());
  // The most sensitive layer went first, and every kept layer is FP32 without smoothing.
  EXPECT_EQ(some->kept_high[0].layer, some->sensitivity[0].layer);
  EXPECT_EQ(some->kept_high[0].site, some->sensitivity[0].site);
  for (const SiteSensitivity& s : some->kept_high) {
    const auto& q = some->quant.layers[s.layer].sites[static_cast<int>(s.site)];
    EXPECT_EQ(q.precision, Precision::kF32);
    EXPECT_TRUE(q.smooth.empty());
  }

  MixedOptions zero;
  zero.max_drop = 0.0;
  zero.fallback = Precision::kF32;
  auto all = choose_mixed_precision(f.model, f.weights, cal->quant, f.valid, ref, zero);
  ASSERT_TRUE(all.ok());
  EXPECT_LE(all->drop, 1e-6);  // everything back in FP32 reproduces the reference
}

TEST(PruneModel, MagnitudeAndSparseGptGiveTwoFourAndSparseGptErrsLess) {
  Fixture f = tiny();
  plan::SparsityRecord mag_record, gpt_record;
  model::EncoderWeights mag = f.weights, gpt = f.weights;
  auto m = prune_model(f.model, &mag, PruneMethod::kMagnitude, nullptr, {}, &mag_record);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  auto g = prune_model(f.model, &gpt, PruneMethod::kSparseGpt, &f.calib, {}, &gpt_record);
  ASSERT_TRUE(g.ok()) << g.status().to_string();
  ASSERT_EQ(g->size(), 8u);
  for (const auto* rec : {&mag_record, &gpt_record}) {
    ASSERT_EQ(rec->size(), 2u);
    for (const auto& layer : *rec) {
      for (plan::Sparsity s : layer) EXPECT_EQ(s, plan::Sparsity::kTwoFour);
    }
  }
  for (const PrunedLayer& p : *g) {
    const auto& d = site_weights(gpt.layers[p.layer], p.site);
    std::vector<uint8_t> mask(d.weight.size());
    for (size_t i = 0; i < mask.size(); ++i) mask[i] = d.weight[i] != 0.0f;
    EXPECT_TRUE(quant::is_2_4(mask.data(), d.out, d.in));
    EXPECT_GE(p.error, 0.0);
    EXPECT_LT(p.error, p.magnitude_error) << "layer " << p.layer;
  }
  // The whole pruned model stays closer to FP32 with SparseGPT.
  const ModelOutputs ref = fp32_outputs(f, f.weights);
  const double mag_cos = compare_outputs(ref, fp32_outputs(f, mag)).mean;
  const double gpt_cos = compare_outputs(ref, fp32_outputs(f, gpt)).mean;
  std::printf("tiny bert 2:4 held-out cosine: magnitude %.4f, sparsegpt %.4f\n", mag_cos, gpt_cos);
  EXPECT_GT(gpt_cos, mag_cos);

  plan::SparsityRecord r;
  model::EncoderWeights w = f.weights;
  auto no_data = prune_model(f.model, &w, PruneMethod::kSparseGpt, nullptr, {}, &r);
  EXPECT_EQ(no_data.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::quant
