// Google Benchmark micro benchmarks of the CPU kernels on BERT shapes (one thread unless the
// benchmark name says otherwise). Reports GFLOP/s as a counter.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <random>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/layer_norm.h"
#include "backend/cpu/linear.h"

namespace kiln::backend::cpu {
namespace {

std::vector<float> random_floats(size_t n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// args: sequences, sequence length, heads, head dim, threads
void BM_Attention(benchmark::State& state) {
  const int64_t seqs = state.range(0), len = state.range(1), heads = state.range(2),
                dim = state.range(3);
  omp_set_num_threads(static_cast<int>(state.range(4)));
  const int64_t hidden = heads * dim;
  const auto qkv = random_floats(seqs * len * 3 * hidden);
  std::vector<float> out(seqs * len * hidden);
  std::vector<int32_t> cu(seqs + 1);
  for (int64_t s = 0; s <= seqs; ++s) cu[s] = static_cast<int32_t>(s * len);
  const AttentionShape shape{heads, dim, 0.125f};
  for (auto _ : state) {
    attention(qkv.data(), cu.data(), seqs, shape, out.data(), nullptr);
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = 4.0 * seqs * heads * len * len * dim;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
void BM_AttentionBf16(benchmark::State& state) {
  const int64_t seqs = state.range(0), len = state.range(1), heads = state.range(2),
                dim = state.range(3);
  omp_set_num_threads(1);
  const int64_t hidden = heads * dim;
  const auto qkv = random_floats(seqs * len * 3 * hidden);
  std::vector<uint16_t> qkvb(qkv.size());
  convert_to_bf16(qkv.data(), static_cast<int64_t>(qkv.size()), qkvb.data());
  std::vector<uint16_t> out(seqs * len * hidden);
  std::vector<int32_t> cu(seqs + 1);
  for (int64_t s = 0; s <= seqs; ++s) cu[s] = static_cast<int32_t>(s * len);
  const AttentionShape shape{heads, dim, 0.125f};
  for (auto _ : state) {
    attention_bf16(qkvb.data(), cu.data(), seqs, shape, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  const double flops = 4.0 * seqs * heads * len * len * dim;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttentionBf16)->Args({8, 128, 12, 32})->Args({2, 384, 12, 32})->Args({8, 128, 12, 64});

BENCHMARK(BM_Attention)
    ->Args({1, 128, 12, 32, 1})
    ->Args({8, 128, 12, 32, 1})
    ->Args({2, 384, 12, 32, 1})
    ->Args({8, 128, 12, 64, 1})
    ->Args({32, 128, 12, 32, 2})
    ->UseRealTime();

// args: rows, in, out, precision (0 fp32, 1 bf16), threads, epilogue (0 none, 1 gelu_erf)
void BM_Linear(benchmark::State& state) {
  const int64_t rows = state.range(0), in = state.range(1), out = state.range(2);
  const Precision p = state.range(3) ? Precision::kBF16 : Precision::kF32;
  omp_set_num_threads(static_cast<int>(state.range(4)));
  const auto w = random_floats(in * out);
  const auto b = random_floats(out);
  const Epilogue e = state.range(5) ? Epilogue::kGeluErf : Epilogue::kNone;
  auto lin =
      Linear::create(w.data(), b.data(), {.out = out, .in = in, .precision = p, .epilogue = e})
          .value();
  const auto x = random_floats(rows * in);
  std::vector<uint16_t> xb(x.size());
  convert_to_bf16(x.data(), static_cast<int64_t>(x.size()), xb.data());
  std::vector<float> y(rows * out);
  const void* src = p == Precision::kBF16 ? static_cast<const void*>(xb.data()) : x.data();
  for (auto _ : state) {
    (void)lin->run(src, rows, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * in * out * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Linear)
    ->Args({4096, 384, 1536, 0, 2, 0})
    ->Args({4096, 384, 1536, 0, 2, 1})
    ->Args({4096, 1536, 384, 0, 2, 0})
    ->Args({4096, 384, 1152, 0, 2, 0})
    ->Args({4096, 384, 1536, 1, 2, 1})
    ->Args({128, 384, 1536, 0, 2, 1})
    ->UseRealTime();

void BM_LayerNorm(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  omp_set_num_threads(1);
  auto x = random_floats(rows * cols);
  const auto g = random_floats(cols);
  const auto b = random_floats(cols);
  for (auto _ : state) {
    layer_norm(x.data(), g.data(), b.data(), rows, cols, 1e-12f, nullptr);
    benchmark::DoNotOptimize(x.data());
  }
  state.SetBytesProcessed(state.iterations() * rows * cols * 8);
}
BENCHMARK(BM_LayerNorm)->Args({4096, 384});

}  // namespace
}  // namespace kiln::backend::cpu

BENCHMARK_MAIN();
