// `kiln bench --model DIR --batch 1,8,32 --seq 128,384`: throughput and latency of the engine
// on synthetic sequences of exactly `seq` tokens, with the fraction of the FMA roofline.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "options.h"

namespace kiln::cli {

namespace {

struct BenchFlags {
  std::string model;
  std::vector<int> batches{1, 8, 32};
  std::vector<int> seqs{128, 384};
  double min_seconds = 3.0;
  std::string name;  // label of the rows; empty = the model's file name
  int min_iters = 10;
  double ghz = 3.6;
  bool json = false;
  bool profile = false;
  EngineFlags engine;
};

// Multiply-adds of one sequence of `len` tokens, counted as 2 FLOP each.
double flops_per_sequence(const ModelInfo& m, int64_t len) {
  const double h = static_cast<double>(m.hidden_size);
  const double l = static_cast<double>(len);
  const double gemm = 2.0 * l * h * (3 * h + h + 2.0 * static_cast<double>(m.intermediate_size));
  const double attn = 2.0 * 2.0 * l * l * h;
  return static_cast<double>(m.num_layers) * (gemm + attn);
}

TokenBatch synthetic_batch(const ModelInfo& m, int batch, int seq, std::mt19937& rng) {
  // Ordinary word pieces sit above the first ~1000 ids (specials, unused) in BERT vocabularies.
  const auto vocab = static_cast<int32_t>(m.vocab_size);
  std::uniform_int_distribution<int32_t> id(std::min(1000, vocab / 2), vocab - 1);
  TokenBatch b;
  for (int i = 0; i < batch; ++i) {
    std::vector<int32_t> ids(static_cast<size_t>(seq));
    for (auto& x : ids) x = id(rng);
    b.add(ids, {});
  }
  return b;
}

int run(const BenchFlags& f) {
  EngineOptions options;
  if (!f.engine.to_options(&options)) return 1;
  options.profile = f.profile;
  auto loaded = Engine::load(f.model, options);
  if (!loaded.ok()) return fail(loaded.status());
  const Engine& engine = **loaded;
  const ModelInfo& m = engine.info();
  const int threads = options.num_threads > 0 ? options.num_threads : omp_get_num_procs();
  // A plan's own precision wins over --precision (Engine::load); report what runs.
  const Precision precision = engine.options().precision;
  const bool is_plan = f.model.size() > 5 && f.model.ends_with(".plan");
  // Peak throughput measured on Zen 4 per cycle per core: 32 FP32 or 64 BF16 FLOP (FMA), 128
  // INT8 ops (VNNI dot products).
  const double flop_per_cycle = precision == Precision::kInt8   ? 128.0
                                : precision == Precision::kBF16 ? 64.0
                                                                : 32.0;
  // The roofline is the CPU's; other devices report none (0).
  const double peak = options.device == "cpu" ? threads * flop_per_cycle * f.ghz * 1e9 : 0.0;
  auto roof = [peak](double gflops) { return peak > 0 ? gflops * 1e9 / peak : 0.0; };
  std::mt19937 rng(42);
  if (!f.json) {
    std::printf("%-28s %5s %5s %10s %9s %9s %9s %7s\n", "model", "batch", "seq", "seq/s", "p50 ms",
                "p99 ms", "GFLOP/s", "roof%");
  }
  for (int seq : f.seqs) {
    for (int batch : f.batches) {
      if (seq > m.max_sequence_length) continue;
      const TokenBatch b = synthetic_batch(m, batch, seq, rng);
      RunOutputs out;
      const RunOptions what{.embeddings = true};
      for (int i = 0; i < 2; ++i) {  // warm-up: primitive creation, page faults
        if (Status s = engine.run(b, what, &out); !s.ok()) return fail(s);
      }
      std::vector<double> lat;
      const auto start = std::chrono::steady_clock::now();
      double total = 0;
      while (total < f.min_seconds || static_cast<int>(lat.size()) < f.min_iters) {
        const auto t0 = std::chrono::steady_clock::now();
        if (Status s = engine.run(b, what, &out); !s.ok()) return fail(s);
        const auto t1 = std::chrono::steady_clock::now();
        lat.push_back(std::chrono::duration<double>(t1 - t0).count());
        total = std::chrono::duration<double>(t1 - start).count();
      }
      std::sort(lat.begin(), lat.end());
      const double p50 = lat[lat.size() / 2];
      const double p99 = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
      const double seq_s = static_cast<double>(batch) * static_cast<double>(lat.size()) / total;
      const double gflops = seq_s * flops_per_sequence(m, seq) / 1e9;
      const std::string name =
          f.name.empty() ? f.model.substr(f.model.find_last_of('/') + 1) : f.name;
      if (f.json) {
        std::printf(
            "{\"peer\":\"kiln-%s%s\",\"model\":\"%s\",\"batch\":%d,\"seq\":%d,\"seq_per_s\":%.3f,"
            "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"iters\":%zu,\"gflops\":%.1f,\"roofline\":%.4f,"
            "\"threads\":%d}\n",
            std::string(precision_name(precision)).c_str(), is_plan ? "-plan" : "", name.c_str(),
            batch, seq, seq_s, p50 * 1e3, p99 * 1e3, lat.size(), gflops, roof(gflops), threads);
      } else {
        std::printf("%-28s %5d %5d %10.1f %9.2f %9.2f %9.1f %6.1f%%\n", name.c_str(), batch, seq,
                    seq_s, p50 * 1e3, p99 * 1e3, gflops, 100.0 * roof(gflops));
      }
      if (f.profile) {
        for (const auto& line : engine.profile_report())
          std::fprintf(stderr, "  %s\n", line.c_str());
      }
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

void register_bench(CLI::App& app, Runner* runner) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand("bench", "Throughput and latency over batch x seq");
  cmd->add_option("--model", flags->model, "Hugging Face model directory")->required();
  cmd->add_option("--batch", flags->batches, "Batch sizes")->delimiter(',')->capture_default_str();
  cmd->add_option("--seq", flags->seqs, "Sequence lengths")->delimiter(',')->capture_default_str();
  cmd->add_option("--min-seconds", flags->min_seconds, "Time per workload")->capture_default_str();
  cmd->add_option("--name", flags->name, "Model label of the rows (default: the file name)");
  cmd->add_option("--min-iters", flags->min_iters, "Iterations per workload")
      ->capture_default_str();
  cmd->add_option("--ghz", flags->ghz, "Core clock for the roofline")->capture_default_str();
  cmd->add_flag("--json", flags->json, "One JSON object per workload");
  cmd->add_flag("--profile", flags->profile, "Print the time per op (cumulative) to stderr");
  flags->engine.add_to(cmd);
  cmd->callback([flags, runner] { *runner = [flags] { return run(*flags); }; });
}

}  // namespace kiln::cli
