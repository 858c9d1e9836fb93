// Engine-only latency and throughput on a device: fixed-length batches of random token ids
// through Engine::run (pooled embeddings, so the hidden states cross to the host as in serving),
// optionally from several threads at once. Prints one RESULT line per workload for report.py.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kiln/engine.h"

namespace {

using Clock = std::chrono::steady_clock;

kiln::TokenBatch make_batch(int64_t vocab, int batch, int seq, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> id(1000 < vocab ? 1000 : 1,
                                            static_cast<int32_t>(vocab - 1));
  kiln::TokenBatch b;
  for (int s = 0; s < batch; ++s) {
    std::vector<int32_t> ids(seq);
    for (auto& x : ids) x = id(rng);
    b.add(ids, {});
  }
  return b;
}

double percentile(std::vector<double> v, double q);

// Token counts, one per line ('#' comments), each capped at `cap`.
std::vector<int> read_lengths(const std::string& path, int cap) {
  std::vector<int> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    out.push_back(std::min(cap, std::max(1, std::stoi(line))));
  }
  return out;
}

// The real length mix: consecutive batches of `batch` sequences of the file's lengths, each run
// ragged (no padding). One pass runs every batch; prints seq/s of the median pass.
int run_mix(const kiln::Engine& e, const std::vector<int>& lens, int batch, int iters, int warmup,
            const std::string& label, const std::string& device, const std::string& precision) {
  std::vector<kiln::TokenBatch> batches;
  std::mt19937 rng(23);
  std::uniform_int_distribution<int32_t> id(1000, static_cast<int32_t>(e.info().vocab_size - 1));
  for (size_t i = 0; i < lens.size(); i += static_cast<size_t>(batch)) {
    kiln::TokenBatch b;
    for (size_t j = i; j < std::min(lens.size(), i + static_cast<size_t>(batch)); ++j) {
      std::vector<int32_t> ids(static_cast<size_t>(lens[j]));
      for (auto& x : ids) x = id(rng);
      b.add(ids, {});
    }
    batches.push_back(std::move(b));
  }
  std::vector<double> passes;
  kiln::RunOutputs out;
  for (int i = 0; i < warmup + iters; ++i) {
    const auto t0 = Clock::now();
    for (const auto& b : batches) {
      const kiln::Status s = e.run(b, {.embeddings = true}, &out);
      if (!s.ok()) {
        std::fprintf(stderr, "%s\n", s.to_string().c_str());
        return 1;
      }
    }
    if (i >= warmup) passes.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  long tokens = 0;
  for (int l : lens) tokens += l;
  const double median = percentile(passes, 0.5);
  std::printf(
      "RESULT\tkiln\t%s\t%s\t%s\tbatch=%d\tseq=mix\tconc=1\tmedian_ms=%.3f\tp90_ms=%.3f\t"
      "seq_per_s=%.1f\ttokens=%ld\n",
      label.c_str(), device.c_str(), precision.c_str(), batch,
      1e3 * median / static_cast<double>(batches.size()),
      1e3 * percentile(passes, 0.9) / static_cast<double>(batches.size()),
      static_cast<double>(lens.size()) / median, tokens);
  return 0;
}

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("kiln engine benchmark on one device");
  std::string model, device = "cuda", precision = "fp16", label;
  std::vector<int> batches = {1, 64};
  int seq = 128, iters = 50, warmup = 10, concurrency = 1;
  bool profile = false;
  std::string lengths;
  app.add_option("model", model, "model directory")->required();
  app.add_option("--device", device);
  app.add_option("--precision", precision);
  app.add_option("--batches", batches)->delimiter(',');
  app.add_option("--seq", seq);
  app.add_option("--iters", iters);
  app.add_option("--warmup", warmup);
  app.add_option("--concurrency", concurrency, "threads calling run() on the one engine");
  app.add_option("--label", label);
  app.add_flag("--profile", profile, "print device time per op (all batches together)");
  app.add_option("--lengths", lengths,
                 "file of token counts (one per line): run them ragged in batches of each "
                 "--batches size, capped at --seq, instead of fixed-length batches");
  CLI11_PARSE(app, argc, argv);
  if (label.empty()) label = model;

  kiln::EngineOptions opts;
  opts.device = device;
  opts.profile = profile;
  if (!kiln::parse_precision(precision, &opts.precision)) {
    std::fprintf(stderr, "unknown precision %s\n", precision.c_str());
    return 2;
  }
  auto engine = kiln::Engine::load(model, opts);
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().to_string().c_str());
    return 1;
  }
  const kiln::Engine& e = **engine;
  if (!lengths.empty()) {
    const std::vector<int> lens = read_lengths(lengths, seq);
    if (lens.empty()) {
      std::fprintf(stderr, "no lengths in %s\n", lengths.c_str());
      return 2;
    }
    for (int batch : batches) {
      if (run_mix(e, lens, batch, iters, warmup, label, device, precision) != 0) return 1;
    }
    return 0;
  }
  for (int batch : batches) {
    std::vector<kiln::TokenBatch> inputs;
    for (int c = 0; c < concurrency; ++c) {
      inputs.push_back(make_batch(e.info().vocab_size, batch, seq, 17 + c));
    }
    std::vector<std::vector<double>> times(concurrency);
    bool failed = false;
    auto worker = [&](int c) {
      kiln::RunOutputs out;
      for (int i = 0; i < warmup + iters; ++i) {
        const auto t0 = Clock::now();
        const kiln::Status s = e.run(inputs[c], {.embeddings = true}, &out);
        const auto t1 = Clock::now();
        if (!s.ok()) {
          std::fprintf(stderr, "%s\n", s.to_string().c_str());
          failed = true;
          return;
        }
        if (i >= warmup)
          times[c].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
    };
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < concurrency; ++c) threads.emplace_back(worker, c);
    for (auto& t : threads) t.join();
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    if (failed) return 1;
    std::vector<double> all;
    for (const auto& t : times) all.insert(all.end(), t.begin(), t.end());
    const double median = percentile(all, 0.5);
    // Throughput from the median latency (single caller) or the wall clock (concurrent callers,
    // warm-up included, so a lower bound).
    const double seq_per_s =
        concurrency == 1 ? batch / (median / 1e3)
                         : static_cast<double>(batch) * concurrency * (warmup + iters) / wall;
    std::printf(
        "RESULT\tkiln\t%s\t%s\t%s\tbatch=%d\tseq=%d\tconc=%d\tmedian_ms=%.3f\tp90_ms=%.3f\t"
        "seq_per_s=%.1f\n",
        label.c_str(), device.c_str(), precision.c_str(), batch, seq, concurrency, median,
        percentile(all, 0.9), seq_per_s);
    std::fflush(stdout);
  }
  if (profile) {
    for (const auto& line : e.profile_report())
      std::printf("PROFILE\t%s\t%s\n", label.c_str(), line.c_str());
  }
  return 0;
}
