// GEMM autotuning and the plan's CUDA device record: the record's JSON round trip and its
// corruption errors (no GPU needed), and on a GPU: a tuned encoder (and a plan built with
// tuning) computes what the CPU FP32 path does, a second load reuses the tuned algorithms, and
// --fast-gelu (tanh GELU fused in the GEMM) stays within the FP16 tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_encoder.h"
#include "backend/cuda/device_record.h"
#include "backend/device.h"
#include "core/mapped_file.h"
#include "cuda_test_util.h"
#include "kiln/engine.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model_util.h"
#include "plan/plan_builder.h"

namespace kiln::testing {
namespace {

using backend::cuda::DeviceRecord;
using backend::cuda::Epilogue;
using backend::cuda::GemmTuning;
using backend::cuda::TunedGemm;

const std::string& kTiny = kTinyModels;

TEST(CudaDeviceRecord, RoundTrip) {
  auto tuning = std::make_shared<GemmTuning>();
  TunedGemm t;
  t.shape = {128, 2304, 768, Epilogue::kBias, DType::kF16};
  for (int i = 0; i < 8; ++i) t.algo.data[i] = 0x0123456789abcdefull * static_cast<uint64_t>(i + 1);
  // Timings that RapidJSON's default (fast, not exact) number parsing reads back one ULP off.
  t.us = 941.7688889142197;
  t.heuristic_us = 149.31286762229787;
  t.candidates = 12;
  t.kernel = "algo 66 tile 20 stages 8 split-k 1 cluster 2";
  tuning->add(t);
  t.shape = {64, 3072, 768, Epilogue::kGeluTanhBias, DType::kBF16};
  tuning->add(t);
  const DeviceRecord rec{{"NVIDIA H100 80GB HBM3", 130100}, true, tuning};
  const std::string bytes = backend::cuda::encode_device_record(rec);
  auto back = backend::cuda::decode_device_record(bytes);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->target, rec.target);
  EXPECT_TRUE(back->fast_gelu);
  ASSERT_NE(back->gemms, nullptr);
  ASSERT_EQ(back->gemms->entries().size(), 2u);
  // Lookups go by bucket: 65..128 rows use the 128-row entry, 129 rows nothing of that shape.
  const auto* algo = back->gemms->find({100, 2304, 768, Epilogue::kBias, DType::kF16});
  ASSERT_NE(algo, nullptr);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(algo->data[i], t.algo.data[i]);
  EXPECT_NE(back->gemms->find({65, 2304, 768, Epilogue::kBias, DType::kF16}), nullptr);
  EXPECT_EQ(back->gemms->find({129, 2304, 768, Epilogue::kBias, DType::kF16}), nullptr);
  EXPECT_EQ(back->gemms->find({100, 2304, 768, Epilogue::kNone, DType::kF16}), nullptr);
  EXPECT_NE(back->gemms->find({33, 3072, 768, Epilogue::kGeluTanhBias, DType::kBF16}), nullptr);
  EXPECT_EQ(backend::cuda::encode_device_record(*back), bytes);
  EXPECT_EQ(GemmTuning::bucket(1), 16);
  EXPECT_EQ(GemmTuning::bucket(49152), 65536);
}

TEST(CudaDeviceRecord, CorruptRecordsNameTheProblem) {
  const std::string algo(128, 'a');
  const std::string entry =
      R"({"rows":128,"out":64,"in":64,"epilogue":"bias","dtype":"f16","algo":")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "device"},
      {"[1]", "not a JSON object"},
      {R"({"gpu":"x"})", "backend"},
      {R"({"backend":"cuda","fast_gelu":"yes"})", "fast_gelu"},
      {R"({"backend":"cuda","gemms":{}})", "not an array"},
      {R"({"backend":"cuda","gemms":[{"rows":-1}]})", "gemms[0].rows"},
      {R"({"backend":"cuda","gemms":[)" + entry + algo + R"(","us":NaN}]})", "invalid JSON"},
      {R"({"backend":"cuda","gemms":[)" + entry + algo + R"(","us":-1}]})", "out of range"},
      {R"({"backend":"cuda","gemms":[{"rows":100,"out":64,"in":64,"epilogue":"bias","dtype":"f16","algo":")" +
           algo + "\"}]}",
       "not a token bucket"},
      {R"({"backend":"cuda","gemms":[)" + entry + algo + "\"}," + entry + algo + "\"}]}",
       "repeats"},
      {R"({"backend":"cuda","gemms":[)" + entry + "xyz\"}]}", "128 hex digits"},
      {R"({"backend":"cuda","gemms":[{"rows":128,"out":64,"in":64,"epilogue":"swish","dtype":"f16","algo":")" +
           algo + "\"}]}",
       "epilogue"},
      {R"({"backend":"cuda","gemms":[{"rows":128,"out":64,"in":64,"epilogue":"bias","dtype":"f8","algo":")" +
           algo + "\"}]}",
       "dtype"},
  };
  for (const auto& [text, what] : cases) {
    auto r = backend::cuda::decode_device_record(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << text;
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().to_string();
  }
  auto other = backend::cuda::decode_device_record(R"({"backend":"cpu"})");
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
}

using Model = TestModel;
Model load(const std::string& dir) { return load_test_model(dir); }

std::unique_ptr<backend::EncoderExecutor> compile(const std::string& device, const std::string& dir,
                                                  const backend::ExecutorOptions& o) {
  Model m = load(dir);
  auto exec = backend::find_device(device).value()->compile(m.config, std::move(m.weights), o);
  EXPECT_TRUE(exec.ok()) << exec.status().to_string();
  return exec.ok() ? std::move(exec).value() : nullptr;
}

// Hidden states of a ragged batch of random ids.
std::vector<float> run(const backend::EncoderExecutor& e, const model::ModelConfig& c,
                       const std::vector<int>& lens) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> id(5, static_cast<int32_t>(c.vocab_size - 1));
  std::vector<int32_t> ids, cu{0};
  for (int len : lens) {
    for (int i = 0; i < len; ++i) ids.push_back(id(rng));
    cu.push_back(static_cast<int32_t>(ids.size()));
  }
  std::vector<float> out(ids.size() * c.hidden_size, NAN);
  const backend::EncoderInputs in{ids.data(), nullptr, cu.data(), static_cast<int64_t>(lens.size()),
                                  static_cast<int64_t>(ids.size())};
  const Status s = e.run(in, out.data());
  EXPECT_TRUE(s.ok()) << s.to_string();
  return out;
}

TEST(CudaTuning, TunedEncoderMatchesCpuAndItsRecordReloads) {
  KILN_SKIP_WITHOUT_GPU();
  const std::string dir = kTiny + "bert";
  const Model m = load(dir);
  backend::ExecutorOptions cpu_o;
  auto cpu = compile("cpu", dir, cpu_o);
  backend::ExecutorOptions o;
  o.precision = Precision::kF16;
  o.autotune = true;
  o.autotune_max_tokens = 200;  // buckets 16..256
  auto tuned = compile("cuda", dir, o);
  ASSERT_NE(cpu, nullptr);
  ASSERT_NE(tuned, nullptr);
  const std::string record = tuned->device_record();
  auto rec = backend::cuda::decode_device_record(record);
  ASSERT_TRUE(rec.ok()) << rec.status().to_string();
  ASSERT_NE(rec->gemms, nullptr);
  EXPECT_EQ(rec->gemms->entries().size(), 5u * 4u);  // 16, 32, 64, 128, 256 x 4 linears
  for (const TunedGemm& t : rec->gemms->entries()) {
    EXPECT_GT(t.candidates, 0);
    EXPECT_GT(t.us, 0);
    EXPECT_LE(t.us, t.heuristic_us);  // the heuristic's choice is one of those timed
  }
  const std::vector<int> lens = {37, 1, 128, 64, 5, 100};  // 335 tokens: beyond the buckets too
  const auto ref = run(*cpu, m.config, lens);
  const auto out = run(*tuned, m.config, lens);
  EXPECT_LE(rel_error_nan_fails(out, ref), 1e-2);
  const auto small = run(*tuned, m.config, {20, 30});
  EXPECT_LE(rel_error_nan_fails(small, run(*cpu, m.config, {20, 30})), 1e-2);

  // A second load from the record uses the same algorithms: identical results.
  backend::ExecutorOptions again;
  again.precision = Precision::kF16;
  again.device_record = record;
  auto reloaded = compile("cuda", dir, again);
  ASSERT_NE(reloaded, nullptr);
  EXPECT_EQ(reloaded->device_record(), record);
  EXPECT_EQ(run(*reloaded, m.config, {20, 30}), small);
  bool tagged = false;
  for (const auto& l : reloaded->describe())
    tagged = tagged || l.kernel.find("[tuned]") != std::string::npos;
  EXPECT_TRUE(tagged);
}

TEST(CudaTuning, FastGeluStaysWithinTolerance) {
  KILN_SKIP_WITHOUT_GPU();
  for (const char* name : {"bert", "distilbert"}) {
    const std::string dir = kTiny + name;
    SCOPED_TRACE(dir);
    const Model m = load(dir);
    ASSERT_EQ(m.config.activation, Activation::kGeluErf);
    backend::ExecutorOptions cpu_o, o;
    o.precision = Precision::kF16;
    o.fast_gelu = true;
    auto cpu = compile("cpu", dir, cpu_o);
    auto gpu = compile("cuda", dir, o);
    ASSERT_NE(gpu, nullptr);
    const std::vector<int> lens = {37, 1, 128, 64};
    const double rel = rel_error_nan_fails(run(*gpu, m.config, lens), run(*cpu, m.config, lens));
    EXPECT_LE(rel, 1e-2);
    std::printf("%s fast GELU fp16: hidden rel error %.2e\n", name, rel);
    auto rec = backend::cuda::decode_device_record(gpu->device_record());
    ASSERT_TRUE(rec.ok());
    EXPECT_TRUE(rec->fast_gelu);
    EXPECT_EQ(rec->gemms, nullptr);
  }
  // The CPU refuses the option rather than ignore it.
  backend::ExecutorOptions o;
  o.fast_gelu = true;
  Model m = load(kTiny + "bert");
  auto cpu = backend::find_device("cpu").value()->compile(m.config, std::move(m.weights), o);
  ASSERT_FALSE(cpu.ok());
  EXPECT_NE(cpu.status().message().find("fast-gelu"), std::string::npos);
}

// The tiny BERT built into a tuned CUDA plan at `precision` under the temp folder and loaded on
// the GPU; null after a failed expectation. The plan file is removed once loaded.
std::unique_ptr<Engine> tuned_tiny_plan(Precision precision) {
  auto source = plan::read_model_dir(kTiny + "bert");
  EXPECT_TRUE(source.ok()) << source.status().to_string();
  if (!source.ok()) return nullptr;
  plan::BuildOptions b;
  b.device = "cuda";
  b.precision = precision;
  b.autotune_max_tokens = 64;
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("kiln_cuda_tuning_test_" + std::string(precision_name(precision)) + ".plan"))
          .string();
  const Status built = plan::write_plan(*source, b, path);
  EXPECT_TRUE(built.ok()) << built.to_string();
  if (!built.ok()) return nullptr;
  EngineOptions eo;
  eo.device = "cuda";
  auto engine = Engine::load(path, eo);
  std::filesystem::remove(path);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  return engine.ok() ? std::move(*engine) : nullptr;
}

TEST(CudaTuning, PlanCarriesTheTuning) {
  KILN_SKIP_WITHOUT_GPU();
  auto engine = tuned_tiny_plan(Precision::kF16);
  ASSERT_NE(engine, nullptr);
  bool tagged = false;
  for (const auto& l : engine->describe_layers())
    tagged = tagged || l.find("[tuned]") != std::string::npos;
  EXPECT_TRUE(tagged);
}

// `kiln build --device cuda --precision fp8`: the plan says fp8; loaded, its linears run as
// per-row E4M3 GEMMs (QKV and FFN-in) from fp8_min_tokens(hidden) tokens, as tuned FP16 below.
TEST(CudaTuning, Fp8PlanLoadsWithFp8Linears) {
  KILN_SKIP_WITHOUT_GPU();
  unsetenv("KILN_CUDA_FP8_MIN_TOKENS");  // the default bound
  auto engine = tuned_tiny_plan(Precision::kFp8);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->options().precision, Precision::kFp8);
  const std::string bound =
      std::to_string(backend::cuda::fp8_min_tokens(engine->info().hidden_size));
  int fp8_layers = 0, tuned = 0;
  for (const auto& l : engine->describe_layers()) {
    fp8_layers += l.find("fp8 e4m3 per row from " + bound + " tokens") != std::string::npos;
    tuned += l.find("[tuned below " + bound + " tokens]") != std::string::npos;
    // Only QKV and FFN-in run in FP8 by default (KILN_CUDA_FP8_LINEARS=all: all four).
    if (l.find("attn_out") != std::string::npos || l.find("ffn_out") != std::string::npos) {
      EXPECT_EQ(l.find("fp8"), std::string::npos) << l;
    }
  }
  EXPECT_GT(fp8_layers, 0);
  EXPECT_GT(tuned, 0);
}

}  // namespace
}  // namespace kiln::testing
