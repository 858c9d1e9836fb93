// The four linear layers of an encoder layer at FP32, BF16 and INT8, configured exactly as the
// CPU engine configures them (layer_specs: fused epilogues, residual accumulation, bfloat16
// activations between layers where the engine uses them), on MiniLM (384 / 1536) and BERT-base
// (768 / 3072) shapes. Reports TOP/s (2 ops per multiply-add) and the fraction of the two-core
// roofline: 32 FP32, 64 BF16 or 128 INT8 ops per cycle per core at 3.6 GHz (Zen 4).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include "backend/cpu/layer_formats.h"
#include "backend/cpu/layer_norm.h"
#include "backend/cpu/linear.h"
#include "backend/cpu/quantize.h"

namespace kiln::backend::cpu {
namespace {

constexpr double kGhz = 3.6;

std::vector<float> randn(size_t n, float scale) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// args: rows, hidden, intermediate, site (0 qkv, 1 attn_out, 2 ffn_in, 3 ffn_out),
// precision (0 fp32, 1 bf16, 2 int8), threads
void BM_EncoderLinear(benchmark::State& state) {
  const int64_t rows = state.range(0), hidden = state.range(1), inter = state.range(2);
  const int site = static_cast<int>(state.range(3));
  const Precision p = state.range(4) == 0   ? Precision::kF32
                      : state.range(4) == 1 ? Precision::kBF16
                                            : Precision::kInt8;
  const int threads = static_cast<int>(state.range(5));
  omp_set_num_threads(threads);
  model::ModelConfig config;
  config.hidden_size = hidden;
  config.intermediate_size = inter;
  config.num_layers = 1;
  ExecutorOptions options;
  options.precision = p;
  auto specs = layer_specs(config, options);
  if (!specs.ok()) {
    state.SkipWithError(specs.status().to_string().c_str());
    return;
  }
  LinearSpec spec = (*specs)[0].linears[site];
  const int64_t outs[] = {3 * hidden, hidden, inter, hidden};
  spec.out = outs[site];
  spec.in = site == 3 ? inter : hidden;
  const auto w = randn(static_cast<size_t>(spec.out * spec.in), 0.05f);
  const auto b = randn(static_cast<size_t>(spec.out), 0.1f);
  auto lin = Linear::create(w.data(), b.data(), spec);
  if (!lin.ok()) {
    state.SkipWithError(lin.status().to_string().c_str());
    return;
  }
  const auto x = randn(static_cast<size_t>(rows * spec.in), 1.0f);
  std::vector<uint16_t> xb(x.size());
  convert_to_bf16(x.data(), static_cast<int64_t>(x.size()), xb.data());
  const bool bf16_in = p == Precision::kBF16 || spec.bf16_input;
  std::vector<float> y(static_cast<size_t>(rows * spec.out));  // also fits bfloat16 output
  for (auto _ : state) {
    const Status s =
        (*lin)->run(bf16_in ? static_cast<const void*>(xb.data()) : x.data(), rows, y.data());
    if (!s.ok()) state.SkipWithError(s.to_string().c_str());
    benchmark::DoNotOptimize(y.data());
  }
  const double ops = 2.0 * static_cast<double>(rows * spec.in * spec.out);
  const double ops_per_cycle = p == Precision::kF32 ? 32 : p == Precision::kBF16 ? 64 : 128;
  const double roof = ops_per_cycle * kGhz * 1e9 * threads;
  state.counters["TOP/s"] = benchmark::Counter(ops * static_cast<double>(state.iterations()) / 1e12,
                                               benchmark::Counter::kIsRate);
  state.counters["roof"] = benchmark::Counter(ops * static_cast<double>(state.iterations()) / roof,
                                              benchmark::Counter::kIsRate);
  state.SetLabel((*lin)->kernel_name());
}

void encoder_shapes(benchmark::internal::Benchmark* b) {
  for (auto [rows, hidden, inter] :
       {std::tuple<int, int, int>{4096, 384, 1536}, {1024, 768, 3072}}) {
    for (int site = 0; site < 4; ++site) {
      for (int p = 0; p < 3; ++p) {
        for (int threads : {1, 2}) b->Args({rows, hidden, inter, site, p, threads});
      }
    }
  }
}
BENCHMARK(BM_EncoderLinear)->Apply(encoder_shapes)->UseRealTime()->MinTime(1.0);

// The INT8 layers' own pass: quantizing the input (absmax per row, round) before the GEMM.
// args: rows, cols, threads
void BM_QuantizeRows(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  omp_set_num_threads(static_cast<int>(state.range(2)));
  const auto x = randn(static_cast<size_t>(rows * cols), 1.0f);
  std::vector<uint8_t> q(x.size());
  std::vector<float> scales(static_cast<size_t>(rows));
  for (auto _ : state) {
    quantize_rows(x.data(), false, rows, cols, {}, q.data(), scales.data());
    benchmark::DoNotOptimize(q.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 5);
}
BENCHMARK(BM_QuantizeRows)->Args({4096, 384, 2})->Args({4096, 1536, 2})->UseRealTime();

}  // namespace
}  // namespace kiln::backend::cpu
