// optimize(): option checks, and the whole pipeline on the in-memory micro BERT with text
// calibration (pruning, calibration, mixed precision) written to a plan and loaded back.
#include <gtest/gtest.h>

#include "../plan/plan_test_util.h"
#include "backend/cpu/cpu_features.h"
#include "plan/plan_loader.h"
#include "quant/build_pipeline.h"

namespace kiln::quant {
namespace {

using plan::testing::TempDir;
using plan::testing::write_text;

bool have_int8() { return backend::cpu::cpu_features().avx512_vnni; }

std::string calibration_file(const TempDir& dir, int lines) {
  const char* words[] = {"the", "quick", "brown", "fox", "hello", "world", "kiln", "plan", "abc"};
  std::string text;
  for (int i = 0; i < lines; ++i) {
    for (int w = 0; w < 3 + i % 7; ++w) text += std::string(words[(i * 7 + w * 3) % 9]) + " ";
    text += "\n";
  }
  const std::string path = dir.file("calib.txt");
  write_text(path, text);
  return path;
}

void expect_invalid(const OptimizeOptions& o, const std::string& needle) {
  Status s = check_options(o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << needle;
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
}

TEST(OptimizeOptions, UnsupportedCombinationsAreRefused) {
  OptimizeOptions base;
  EXPECT_TRUE(check_options(base).ok());
  OptimizeOptions o = base;
  o.quantize.smoothquant_alpha = 0.5f;
  expect_invalid(o, "--smoothquant needs --precision int8");
  o.precision = Precision::kInt8;
  expect_invalid(o, "--smoothquant needs calibration texts");
  o.calibration = "x.txt";
  EXPECT_TRUE(check_options(o).ok());
  o.quantize.smoothquant_alpha = 1.5f;
  expect_invalid(o, "[0, 1]");

  o = base;
  o.max_accuracy_drop = 0.01;
  expect_invalid(o, "--max-accuracy-drop needs --precision int8");
  o.precision = Precision::kInt8;
  expect_invalid(o, "--max-accuracy-drop needs calibration texts");
  o.calibration = "x.txt";
  o.fallback = Precision::kInt8;
  expect_invalid(o, "--fallback-precision");

  o = base;
  o.precision = Precision::kInt8;
  o.quantize.scaling = quant::ActivationScaling::kStaticPerTensor;
  expect_invalid(o, "static activation scales needs calibration texts");
  o.calibration = "x.txt";
  o.calibrator_given = true;
  EXPECT_TRUE(check_options(o).ok());
  o.quantize.scaling = quant::ActivationScaling::kDynamicPerToken;
  expect_invalid(o, "--calibrator picks static activation scales");

  o = base;
  o.prune = true;
  expect_invalid(o, "sparsegpt pruning needs calibration texts");
  o.prune_method = PruneMethod::kMagnitude;
  EXPECT_TRUE(check_options(o).ok());  // magnitude pruning needs no data

  o = base;
  o.validation = "v.txt";
  expect_invalid(o, "--validation needs --calibration");
  o = base;
  o.quantize.gelu_clip = 10;
  expect_invalid(o, "--gelu-clip needs --precision int8");

  o = base;
  o.precision = Precision::kFp8;
  expect_invalid(o, "--precision fp8 is for --device cuda");
  o.device = "cuda";
  EXPECT_TRUE(check_options(o).ok());  // dynamic per-token scales: no calibration
  o.calibrator_given = true;
  expect_invalid(o, "--calibrator needs --precision int8");
  o = base;
  o.precision = Precision::kInt8;
  o.device = "cuda";
  expect_invalid(o, "plans are fp16, bf16 or fp8");
}

TEST(OptimizePipeline, CalibrationErrorsNameTheFile) {
  TempDir dir;
  plan::ModelSource src = plan::testing::micro_source();
  OptimizeOptions o;
  o.precision = Precision::kInt8;
  o.quantize.scaling = quant::ActivationScaling::kStaticPerTensor;
  o.calibration = dir.file("missing.txt");
  plan::BuildOptions build;
  EXPECT_EQ(optimize(&src, o, &build).status().code(), StatusCode::kNotFound);
  write_text(dir.file("tiny.txt"), "hello world\n");
  o.calibration = dir.file("tiny.txt");
  auto tiny = optimize(&src, o, &build);
  EXPECT_EQ(tiny.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(tiny.status().message().find("tiny.txt has 1 non-blank lines"), std::string::npos);
  // 16 lines would leave 13 to calibrate once every fifth is held out: 20 are needed.
  std::string sixteen;
  for (int i = 0; i < 16; ++i) sixteen += "hello world\n";
  write_text(dir.file("sixteen.txt"), sixteen);
  o.calibration = dir.file("sixteen.txt");
  auto few = optimize(&src, o, &build);
  EXPECT_EQ(few.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(few.status().message().find("at least 20 are needed"), std::string::npos)
      << few.status().to_string();

  // A bad line is named by its line in the file (held-out lines included in the count).
  std::string texts;
  for (int i = 1; i <= 25; ++i) texts += i == 7 ? std::string("\xff\xfe\n") : "hello world\n";
  write_text(dir.file("bad.txt"), texts);
  o.calibration = dir.file("bad.txt");
  auto bad = optimize(&src, o, &build);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("bad.txt line 7"), std::string::npos)
      << bad.status().to_string();

  plan::ModelSource no_tok = plan::testing::micro_source(false);
  o.calibration = calibration_file(dir, 40);
  auto none = optimize(&no_tok, o, &build);
  EXPECT_EQ(none.status().code(), StatusCode::kFailedPrecondition);
}

TEST(OptimizePipeline, PruneCalibrateMixedWriteAndLoad) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  TempDir dir;
  plan::ModelSource src = plan::testing::micro_source();
  OptimizeOptions o;
  o.precision = Precision::kInt8;
  o.calibration = calibration_file(dir, 60);
  o.calibration_samples = 40;
  o.validation_samples = 10;
  o.calibrator_given = true;
  o.quantize.calibrator.method = quant::Calibrator::kEntropy;
  o.quantize.scaling = quant::ActivationScaling::kStaticPerTensor;
  o.quantize.smoothquant_alpha = 0.5f;
  o.max_accuracy_drop = 0.0;  // every layer back to the fallback
  o.fallback = Precision::kF32;
  o.prune = true;
  o.num_threads = 1;
  plan::BuildOptions build;
  auto report = optimize(&src, o, &build);
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_EQ(report->calibration_texts, 40);
  EXPECT_EQ(report->validation_texts, 10);
  EXPECT_EQ(report->pruned.size(), 4u);
  ASSERT_TRUE(report->pruned_fp32.has_value());
  ASSERT_TRUE(report->mixed.has_value());
  EXPECT_TRUE(report->mixed->reached);
  EXPECT_EQ(report->mixed->kept_high.size(), 4u);
  ASSERT_TRUE(report->final_accuracy.has_value());
  // All FP32 again: the plan's model is the pruned FP32 model.
  EXPECT_NEAR(report->final_accuracy->mean, report->pruned_fp32->mean, 1e-5);
  ASSERT_NE(build.quant, nullptr);
  for (const auto& s : build.quant->layers[0].sites) EXPECT_EQ(s.precision, Precision::kF32);
  for (plan::Sparsity s : build.sparsity[0]) EXPECT_EQ(s, plan::Sparsity::kTwoFour);

  const std::string text = format_build_report(*report);
  for (const char* needle : {"pruning        2:4, sparsegpt", "sensitivity", "mixed",
                             "plan accuracy", "layer 0 ffn_out"}) {
    EXPECT_NE(text.find(needle), std::string::npos) << needle << "\n" << text;
  }
  EXPECT_NE(build_report_json(*report).find("\"kept_high\": [{"), std::string::npos);

  const std::string path = dir.file("m.plan");
  ASSERT_TRUE(plan::write_plan(src, build, path).ok());
  auto device = backend::find_device("cpu");
  ASSERT_TRUE(device.ok());
  auto loaded = plan::load_plan(path, **device);
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  for (plan::Sparsity s : loaded->sparsity[0]) EXPECT_EQ(s, plan::Sparsity::kTwoFour);
}

TEST(OptimizePipeline, StaticInt8WithoutFallbackKeepsEveryLayerInt8) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  TempDir dir;
  plan::ModelSource src = plan::testing::micro_source();
  OptimizeOptions o;
  o.precision = Precision::kInt8;
  o.calibration = calibration_file(dir, 40);
  o.quantize.scaling = quant::ActivationScaling::kStaticPerTensor;
  o.num_threads = 1;
  plan::BuildOptions build;
  auto report = optimize(&src, o, &build);
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  ASSERT_NE(build.quant, nullptr);
  for (const auto& s : build.quant->layers[0].sites) {
    EXPECT_EQ(s.precision, Precision::kInt8);
    EXPECT_EQ(s.scaling, quant::ActivationScaling::kStaticPerTensor);
    EXPECT_GT(s.input_scale, 0.0f);
  }
  ASSERT_TRUE(report->final_accuracy.has_value());
  EXPECT_GT(report->final_accuracy->mean, 0.98);
  const std::string path = dir.file("s.plan");
  ASSERT_TRUE(plan::write_plan(src, build, path).ok());
  auto engine = plan::testing::load(path);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->options().precision, Precision::kInt8);
}

}  // namespace
}  // namespace kiln::quant
