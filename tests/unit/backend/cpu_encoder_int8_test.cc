// The CPU encoder with INT8 layers: uniform per-token INT8 and per-site mixed precision from a
// ModelQuant (static scales calibrated through run_observed, SmoothQuant, GELU clip) against
// FP32 on the tiny golden checkpoints, run_observed itself, and MiniLM-L6 on real sentences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/device.h"
#include "core/mapped_file.h"
#include "kiln/engine.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"
#include "model_util.h"

namespace kiln::backend {
namespace {

using quant::LinearSite;

bool have_int8() {
  return cpu::active_isa() == cpu::Isa::kAvx512 && cpu::cpu_features().avx512_vnni;
}

const std::string& kTiny = testing::kTinyModels;

using Model = testing::TestModel;
Model load(const std::string& dir) { return testing::load_test_model(dir); }

ExecutorOptions with(Precision p) {
  ExecutorOptions o;
  o.precision = p;
  return o;
}
ExecutorOptions with(std::shared_ptr<const quant::ModelQuant> q) {
  ExecutorOptions o;
  o.quant = std::move(q);
  return o;
}

std::unique_ptr<EncoderExecutor> compile(Model m, ExecutorOptions o) {
  auto dev = find_device("cpu").value();
  auto exec = dev->compile(m.config, std::move(m.weights), o);
  EXPECT_TRUE(exec.ok()) << exec.status().to_string();
  return exec.ok() ? std::move(exec).value() : nullptr;
}

// Three sequences of 37, 5 and 64 random ordinary tokens.
struct Batch {
  std::vector<int32_t> ids, cu{0};
  explicit Batch(int64_t vocab) {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int32_t> id(5, static_cast<int32_t>(vocab - 1));
    for (int len : {37, 5, 64}) {
      for (int i = 0; i < len; ++i) ids.push_back(id(rng));
      cu.push_back(static_cast<int32_t>(ids.size()));
    }
  }
  EncoderInputs inputs() const {
    return {ids.data(), nullptr, cu.data(), static_cast<int64_t>(cu.size()) - 1,
            static_cast<int64_t>(ids.size())};
  }
};

std::vector<float> run(const EncoderExecutor& e, const Batch& b, int64_t hidden) {
  std::vector<float> out(b.ids.size() * hidden);
  EXPECT_TRUE(e.run(b.inputs(), out.data()).ok());
  return out;
}

// Mean and worst cosine over rows.
std::pair<double, double> row_cosines(const std::vector<float>& a, const std::vector<float>& b,
                                      int64_t cols) {
  double sum = 0, worst = 1;
  const size_t rows = a.size() / cols;
  for (size_t r = 0; r < rows; ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t c = 0; c < cols; ++c) {
      ab += double(a[r * cols + c]) * b[r * cols + c];
      aa += double(a[r * cols + c]) * a[r * cols + c];
      bb += double(b[r * cols + c]) * b[r * cols + c];
    }
    const double cos = ab / std::sqrt(aa * bb);
    sum += cos;
    worst = std::min(worst, cos);
  }
  return {sum / rows, worst};
}

// Per-site absmax of the FP32 activations, through run_observed.
std::map<std::pair<int, int>, float> calibrate(const EncoderExecutor& e, const Batch& b,
                                               int64_t hidden) {
  std::map<std::pair<int, int>, float> amax;
  std::vector<float> out(b.ids.size() * hidden);
  const auto status =
      e.run_observed(b.inputs(), out.data(),
                     [&](int layer, LinearSite site, const float* x, int64_t rows, int64_t cols) {
                       float& m = amax[{layer, static_cast<int>(site)}];
                       for (int64_t i = 0; i < rows * cols; ++i) {
                         m = std::max(m, std::fabs(x[i]));
                       }
                     });
  EXPECT_TRUE(status.ok()) << status.to_string();
  return amax;
}

class TinyInt8Test : public ::testing::TestWithParam<const char*> {};

TEST_P(TinyInt8Test, PerTokenInt8IsCloseToFp32) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  const Model m = load(kTiny + GetParam());
  const Batch b(m.config.vocab_size);
  const int64_t h = m.config.hidden_size;
  const auto fp32 = run(*compile(m, {}), b, h);
  auto int8 = compile(m, with(Precision::kInt8));
  const auto [mean, worst] = row_cosines(run(*int8, b, h), fp32, h);
  std::printf("%s: int8 per-token cosine to fp32: mean %.5f worst %.5f\n", GetParam(), mean, worst);
  EXPECT_GT(mean, 0.995);
  EXPECT_GT(worst, 0.98);
  for (const auto& r : int8->describe()) {
    if (r.name.find("ffn_in") != std::string::npos) {
      EXPECT_EQ(r.precision, "int8 (per-token)");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TinyInt8Test,
                         ::testing::Values("bert", "bert_gelu_new", "distilbert", "roberta",
                                           "xlm_roberta_seq_cls"));

TEST(CpuEncoderInt8Test, MixedPrecisionFromCalibratedModelQuant) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  const Model m = load(kTiny + "bert");
  const Batch b(m.config.vocab_size);
  const int64_t h = m.config.hidden_size;
  auto fp32_exec = compile(m, {});
  const auto fp32 = run(*fp32_exec, b, h);
  const auto amax = calibrate(*fp32_exec, b, h);
  ASSERT_EQ(amax.size(), static_cast<size_t>(4 * m.config.num_layers));

  auto mq = std::make_shared<quant::ModelQuant>();
  mq->layers.resize(static_cast<size_t>(m.config.num_layers));
  mq->gelu_clip = 10.0f;
  for (int l = 0; l < m.config.num_layers; ++l) {
    for (int s = 0; s < quant::kLinearSites; ++s) {
      auto& q = mq->layers[l].sites[s];
      q.precision = Precision::kInt8;
      q.scaling = quant::ActivationScaling::kStaticPerTensor;
      q.input_scale = amax.at({l, s}) / 127;
    }
  }
  // Layer 0: QKV stays FP32 and, where the CPU has BF16, attention-out runs in BF16.
  mq->layers[0].sites[0].precision = Precision::kF32;
  if (cpu::cpu_features().avx512_bf16) mq->layers[0].sites[1].precision = Precision::kBF16;
  auto mixed = compile(m, with(mq));
  const auto [mean, worst] = row_cosines(run(*mixed, b, h), fp32, h);
  std::printf("mixed static int8 cosine to fp32: mean %.5f worst %.5f\n", mean, worst);
  EXPECT_GT(mean, 0.995);
  EXPECT_GT(worst, 0.98);
  const auto report = mixed->describe();
  auto precision_of = [&](const std::string& name) {
    for (const auto& r : report) {
      if (r.name == name) return r.precision;
    }
    return std::string("missing");
  };
  EXPECT_EQ(precision_of("layer.0.qkv"), "fp32");
  EXPECT_EQ(precision_of("layer.0.attention"), "fp32");
  EXPECT_EQ(precision_of("layer.1.ffn_out+residual").rfind("int8 (static ", 0), 0u);
  EXPECT_NE(precision_of("layer.1.ffn_out+residual").find("clip 10"), std::string::npos);

  // Scales 100x too small saturate everything: the static scales are really used.
  auto bad = std::make_shared<quant::ModelQuant>(*mq);
  for (auto& layer : bad->layers) {
    for (auto& q : layer.sites) q.input_scale /= 100;
  }
  EXPECT_LT(row_cosines(run(*compile(m, with(bad)), b, h), fp32, h).first, mean - 0.02);
}

TEST(CpuEncoderInt8Test, SmoothQuantFactorsAreHonoredAtEveryPrecision) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  const Model m = load(kTiny + "bert");
  const Batch b(m.config.vocab_size);
  const int64_t h = m.config.hidden_size;
  auto fp32_exec = compile(m, {});
  const auto fp32 = run(*fp32_exec, b, h);
  // SmoothQuant (alpha 0.5): s_k = sqrt(max |x_k| / max |W_:,k|) from per-channel activation
  // ranges, multiplied into the weights' input channels as `kiln build` would.
  std::map<std::pair<int, int>, std::vector<float>> act;
  std::vector<float> out(b.ids.size() * h);
  ASSERT_TRUE(fp32_exec
                  ->run_observed(
                      b.inputs(), out.data(),
                      [&](int layer, LinearSite site, const float* x, int64_t rows, int64_t cols) {
                        auto& a = act[{layer, static_cast<int>(site)}];
                        a.assign(static_cast<size_t>(cols), 1e-6f);
                        for (int64_t i = 0; i < rows * cols; ++i) {
                          a[i % cols] = std::max(a[i % cols], std::fabs(x[i]));
                        }
                      })
                  .ok());
  Model smoothed = m;
  auto mq = std::make_shared<quant::ModelQuant>();
  mq->layers.resize(static_cast<size_t>(m.config.num_layers));
  for (int l = 0; l < m.config.num_layers; ++l) {
    auto& lw = smoothed.weights.layers[l];
    model::DenseWeights* dense[] = {&lw.qkv, &lw.attn_out, &lw.ffn_in, &lw.ffn_out};
    for (int s = 0; s < quant::kLinearSites; ++s) {
      auto& d = *dense[s];
      auto& f = mq->layers[l].sites[s].smooth;
      const auto& a = act.at({l, s});
      for (int64_t k = 0; k < d.in; ++k) {
        float w = 1e-6f;
        for (int64_t n = 0; n < d.out; ++n) w = std::max(w, std::fabs(d.weight[n * d.in + k]));
        f.push_back(std::sqrt(a[k] / w));
      }
      for (int64_t n = 0; n < d.out; ++n) {
        for (int64_t k = 0; k < d.in; ++k) d.weight[n * d.in + k] *= f[k];
      }
    }
  }
  // FP32 sites: the factors come back out of the weights; the same function up to rounding.
  const auto fp32_smoothed = run(*compile(smoothed, with(mq)), b, h);
  EXPECT_GT(row_cosines(fp32_smoothed, fp32, h).second, 0.99999);
  // INT8 sites divide their inputs by the factors before quantizing.
  for (auto& layer : mq->layers) {
    for (auto& q : layer.sites) q.precision = Precision::kInt8;
  }
  const auto plain = row_cosines(run(*compile(m, with(Precision::kInt8)), b, h), fp32, h);
  const auto smooth = row_cosines(run(*compile(smoothed, with(mq)), b, h), fp32, h);
  std::printf("int8 per-token cosine to fp32: plain mean %.5f worst %.5f, smoothed %.5f %.5f\n",
              plain.first, plain.second, smooth.first, smooth.second);
  EXPECT_GT(smooth.first, 0.995);
  EXPECT_GT(smooth.second, 0.98);
  // Ignoring the factors would leave the activations unscaled against the scaled weights.
  auto ignored = mq;
  for (auto& layer : ignored->layers) {
    for (auto& q : layer.sites) std::fill(q.smooth.begin(), q.smooth.end(), 1.0f);
  }
  EXPECT_LT(row_cosines(run(*compile(smoothed, with(ignored)), b, h), fp32, h).first, 0.9);
}

TEST(CpuEncoderInt8Test, RunObservedSeesEveryLinearInput) {
  const Model m = load(kTiny + "bert");
  const Batch b(m.config.vocab_size);
  const int64_t h = m.config.hidden_size, inter = m.config.intermediate_size;
  const int64_t t = static_cast<int64_t>(b.ids.size());
  auto exec = compile(m, {});
  std::vector<std::pair<int, int>> calls;
  std::vector<float> observed(t * h), plain(t * h);
  const auto& layers = m.weights.layers;
  const model::NormWeights* norm = &m.weights.embedding_norm;  // before layer 0's QKV
  const auto status = exec->run_observed(
      b.inputs(), observed.data(),
      [&](int layer, LinearSite site, const float* x, int64_t rows, int64_t cols) {
        calls.emplace_back(layer, static_cast<int>(site));
        EXPECT_EQ(rows, t);
        EXPECT_EQ(cols, site == LinearSite::kFfnOut ? inter : h);
        if (site == LinearSite::kQkv || site == LinearSite::kFfnIn) {
          // The LayerNorm'd hidden states: (x - beta) / gamma has mean 0, variance 1 per row.
          if (site == LinearSite::kFfnIn) norm = &layers[layer].attn_norm;
          for (int64_t r = 0; r < rows; ++r) {
            double s = 0, ss = 0;
            for (int64_t c = 0; c < cols; ++c) {
              const double z = (x[r * cols + c] - norm->beta[c]) / norm->gamma[c];
              s += z;
              ss += z * z;
            }
            ASSERT_NEAR(s / cols, 0.0, 1e-3) << layer << " " << static_cast<int>(site);
            ASSERT_NEAR(ss / cols, 1.0, 1e-2) << layer << " " << static_cast<int>(site);
          }
          if (site == LinearSite::kFfnIn) norm = &layers[layer].ffn_norm;
        }
        if (site == LinearSite::kFfnOut) {  // GELU outputs: never below -0.17
          for (int64_t i = 0; i < rows * cols; ++i) ASSERT_GT(x[i], -0.1701f);
        }
      });
  ASSERT_TRUE(status.ok()) << status.to_string();
  ASSERT_EQ(calls.size(), static_cast<size_t>(4 * m.config.num_layers));
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i], std::make_pair(static_cast<int>(i / 4), static_cast<int>(i % 4)));
  }
  ASSERT_TRUE(exec->run(b.inputs(), plain.data()).ok());
  EXPECT_EQ(observed, plain);
  if (have_int8()) {
    auto int8 = compile(m, with(Precision::kInt8));
    EXPECT_EQ(int8->run_observed(b.inputs(), plain.data(), [](auto...) {}).code(),
              StatusCode::kUnimplemented);
  }
}

TEST(CpuEncoderInt8Test, RejectsQuantizationOfAnotherModel) {
  const Model m = load(kTiny + "bert");
  auto mq = std::make_shared<quant::ModelQuant>();
  mq->layers.resize(static_cast<size_t>(m.config.num_layers + 1));
  auto dev = find_device("cpu").value();
  EXPECT_EQ(dev->compile(m.config, m.weights, with(mq)).status().code(),
            StatusCode::kInvalidArgument);
}

// Real weights on real sentences: the first 64 of SST-2's dev set, pooled embeddings.
TEST(CpuEncoderInt8Test, MiniLmEmbeddingsOnRealSentences) {
  const std::string dir = std::string(KILN_SOURCE_DIR) + "/var/models/all-MiniLM-L6-v2";
  const std::string data = std::string(KILN_SOURCE_DIR) + "/../shared/data/sst2/dev.tsv";
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  std::ifstream f(data);
  if (!core::file_exists(dir + "/config.json") || !f) GTEST_SKIP() << "no MiniLM or SST-2";
  std::vector<std::string> texts;
  std::string line;
  std::getline(f, line);  // header
  while (texts.size() < 64 && std::getline(f, line))
    texts.push_back(line.substr(0, line.find('\t')));
  auto fp32 = Engine::load(dir, {}).value();
  EngineOptions int8_options;
  int8_options.precision = Precision::kInt8;
  auto int8 = Engine::load(dir, int8_options).value();
  const TokenBatch batch = fp32->tokenize(texts).value();
  RunOutputs a, b;
  ASSERT_TRUE(fp32->run(batch, {.embeddings = true}, &a).ok());
  ASSERT_TRUE(int8->run(batch, {.embeddings = true}, &b).ok());
  const auto [mean, worst] = row_cosines(b.embeddings, a.embeddings, fp32->info().hidden_size);
  std::printf("MiniLM-L6 int8 per-token, %zu SST-2 sentences: cosine mean %.5f worst %.5f\n",
              texts.size(), mean, worst);
  EXPECT_GT(mean, 0.995);
  EXPECT_GT(worst, 0.98);
}

}  // namespace
}  // namespace kiln::backend
