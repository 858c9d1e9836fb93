// The linear layers of one encoder layer through cuBLASLt, FP16 against FP8 (E4M3, per-tensor
// scales, with and without Hopper's fast FP8 accumulation), plus the cost of quantizing each
// GEMM's input to FP8: what an FP8 plan would gain per layer before it is built. Weights rotate
// through copies filling 256 MiB, so they come from HBM as in a forward pass, not from L2
// (--weight-mib 1: two copies, which stay in L2, to see what a prefetch into L2 could gain).
//   kiln_gemm_bench [--hidden 1024] [--ffn 4096] [--rows 49152,128] [--iters 50]
// Prints one RESULT line per shape and variant, and a per-layer sum per row count.
#include <cuda_runtime.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/cuda/activation.h"
#include "backend/cuda/fp8.h"
#include "backend/cuda/gemm.h"

namespace {

using kiln::DType;
using kiln::Status;
using kiln::backend::cuda::Epilogue;
using kiln::backend::cuda::GemmRunner;
using kiln::backend::cuda::GemmShape;

#define CHECK_OK(expr)                                                 \
  do {                                                                 \
    const Status s_ = (expr);                                          \
    if (!s_.ok()) {                                                    \
      std::fprintf(stderr, "%s: %s\n", #expr, s_.to_string().c_str()); \
      std::exit(1);                                                    \
    }                                                                  \
  } while (0)
#define CHECK_CUDA(expr)                                               \
  do {                                                                 \
    const cudaError_t e_ = (expr);                                     \
    if (e_ != cudaSuccess) {                                           \
      std::fprintf(stderr, "%s: %s\n", #expr, cudaGetErrorString(e_)); \
      std::exit(1);                                                    \
    }                                                                  \
  } while (0)

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, bytes));
  return p;
}

struct Layer {
  const char* name;
  int64_t out, in;
  Epilogue epilogue;
};

// Median device time in ms of one call of f(i): `reps` calls f(0) .. f(reps - 1) captured in a
// CUDA graph, launched `iters` times between two events after `warmup` launches. The graph
// leaves the host's time per call (a cuBLASLt call takes longer than a small GEMM) out, as the
// forward pass's graphs do.
template <typename F>
double time_ms(int iters, int warmup, int reps, cudaStream_t stream, F&& f) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  f(0);  // plans the GEMM (cuBLASLt's heuristic) outside the capture
  CHECK_CUDA(cudaStreamSynchronize(stream));
  CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  for (int r = 0; r < reps; ++r) f(r);
  CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
  CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < warmup; ++i) CHECK_CUDA(cudaGraphLaunch(exec, stream));
  std::vector<float> ms;
  for (int i = 0; i < iters; ++i) {
    CHECK_CUDA(cudaEventRecord(a, stream));
    CHECK_CUDA(cudaGraphLaunch(exec, stream));
    CHECK_CUDA(cudaEventRecord(b, stream));
    CHECK_CUDA(cudaEventSynchronize(b));
    float t = 0;
    CHECK_CUDA(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t / reps);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("FP16 and FP8 GEMMs of one encoder layer");
  int64_t hidden = 1024, ffn = 4096;
  std::vector<int64_t> rows_list = {49152, 128};
  int iters = 50, warmup = 10;
  size_t weight_mib = 256;
  app.add_option("--hidden", hidden);
  app.add_option("--ffn", ffn);
  app.add_option("--rows", rows_list)->delimiter(',');
  app.add_option("--iters", iters);
  app.add_option("--warmup", warmup);
  app.add_option("--weight-mib", weight_mib, "weight copies to rotate through (MiB)");
  CLI11_PARSE(app, argc, argv);

  const std::vector<Layer> layers = {{"qkv", 3 * hidden, hidden, Epilogue::kBias},
                                     {"attn_out", hidden, hidden, Epilogue::kBias},
                                     {"ffn_in", ffn, hidden, Epilogue::kGeluTanhBias},
                                     {"ffn_out", hidden, ffn, Epilogue::kBias}};
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreate(&stream));
  GemmRunner gemm;
  CHECK_OK(gemm.init());
  // amax scratch, the input's scale, then one scale per weight copy, each in its own
  // kFp8ScaleStride slot (cuBLASLt wants its scale pointers aligned).
  constexpr int kMaxCopies = 4096;
  constexpr int64_t kS = kiln::backend::cuda::kFp8ScaleStride;
  auto* scales = static_cast<float*>(device_alloc((2 + kMaxCopies) * kS * sizeof(float)));
  const auto slot = [&](int64_t i) { return scales + i * kS; };
  const int64_t max_rows = *std::max_element(rows_list.begin(), rows_list.end());

  for (int64_t rows : rows_list) {
    double sum16 = 0, sum8 = 0, sum8_fast = 0, sum_quant = 0, sum8_rows = 0, sum_quant_rows = 0;
    for (const Layer& l : layers) {
      // Weights: enough copies to fill --weight-mib (at least 2), rotated per call.
      const size_t w16 = static_cast<size_t>(l.out * l.in) * 2;
      const int copies = static_cast<int>(
          std::min<size_t>(kMaxCopies, std::max<size_t>(2, (weight_mib << 20) / w16)));
      std::vector<void*> w16s, w8s;
      for (int c = 0; c < copies; ++c) {
        w16s.push_back(device_alloc(w16));
        CHECK_OK(kiln::backend::cuda::fill_random(DType::kF16, w16s.back(), l.out * l.in, 100 + c,
                                                  stream));
        w8s.push_back(device_alloc(w16 / 2));
        CHECK_OK(kiln::backend::cuda::quantize_fp8_dynamic(
            DType::kF16, w16s.back(), l.out * l.in, scales, slot(2 + c), w8s.back(), stream));
      }
      void* x16 = device_alloc(static_cast<size_t>(max_rows * l.in) * 2);
      void* x8 = device_alloc(static_cast<size_t>(max_rows * l.in));
      void* y = device_alloc(static_cast<size_t>(max_rows * l.out) * 2);
      void* bias = device_alloc(static_cast<size_t>(l.out) * 2);
      // Outer-vector scales: per token row of X, per output channel of W (timing only: every
      // copy shares the first copy's channel scales).
      auto* x_rows = static_cast<float*>(device_alloc(static_cast<size_t>(max_rows) * 4));
      auto* w_rows = static_cast<float*>(device_alloc(static_cast<size_t>(l.out) * 4));
      void* w8_rows = device_alloc(w16 / 2);
      CHECK_OK(kiln::backend::cuda::quantize_fp8_rows(DType::kF16, w16s[0], l.out, l.in, w_rows,
                                                      w8_rows, stream));
      cudaFree(w8_rows);
      CHECK_OK(kiln::backend::cuda::fill_random(DType::kF16, x16, rows * l.in, 7, stream));
      CHECK_OK(kiln::backend::cuda::fill_random(DType::kF16, bias, l.out, 8, stream));
      CHECK_OK(kiln::backend::cuda::quantize_fp8_dynamic(DType::kF16, x16, rows * l.in, scales,
                                                         slot(1), x8, stream));
      // Calls per graph: enough to cycle through copies well beyond L2's 50 MB (at least 8).
      const int reps = static_cast<int>(std::min<size_t>(
          copies, std::max<size_t>(8, (size_t{128} << 20) / std::max<size_t>(w16, 1))));
      const GemmShape s16{rows, l.out, l.in, l.epilogue, DType::kF16};
      GemmShape s8 = s16;
      s8.fp8 = true;
      GemmShape s8f = s8;
      s8f.fp8_fast_accum = true;
      const double t16 = time_ms(iters, warmup, reps, stream, [&](int i) {
        CHECK_OK(gemm.run(s16, x16, w16s[i % copies], bias, y, stream));
      });
      const double t8 = time_ms(iters, warmup, reps, stream, [&](int i) {
        CHECK_OK(
            gemm.run_fp8(s8, x8, w8s[i % copies], bias, y, slot(1), slot(2 + i % copies), stream));
      });
      const double t8f = time_ms(iters, warmup, reps, stream, [&](int i) {
        CHECK_OK(
            gemm.run_fp8(s8f, x8, w8s[i % copies], bias, y, slot(1), slot(2 + i % copies), stream));
      });
      GemmShape s8r = s8;
      s8r.fp8_rowwise = true;
      const double tqr = time_ms(iters, warmup, reps, stream, [&](int) {
        CHECK_OK(kiln::backend::cuda::quantize_fp8_rows(DType::kF16, x16, rows, l.in, x_rows, x8,
                                                        stream));
      });
      const double t8r = time_ms(iters, warmup, reps, stream, [&](int i) {
        CHECK_OK(gemm.run_fp8(s8r, x8, w8s[i % copies], bias, y, x_rows, w_rows, stream));
      });
      // Static quantization of the input (a calibrated scale): one read, one narrower write.
      const double tq = time_ms(iters, warmup, reps, stream, [&](int) {
        CHECK_OK(
            kiln::backend::cuda::quantize_fp8(DType::kF16, x16, rows * l.in, slot(1), x8, stream));
      });
      const double tqd = time_ms(iters, warmup, reps, stream, [&](int) {
        CHECK_OK(kiln::backend::cuda::quantize_fp8_dynamic(DType::kF16, x16, rows * l.in, scales,
                                                           slot(1), x8, stream));
      });
      const double flop = 2.0 * static_cast<double>(rows) * static_cast<double>(l.out * l.in);
      std::printf(
          "RESULT\tgemm\t%s\trows=%ld\tout=%ld\tin=%ld\tfp16_ms=%.4f\tfp8_ms=%.4f\t"
          "fp8_fast_ms=%.4f\tquant_static_ms=%.4f\tquant_dynamic_ms=%.4f\tfp16_tflops=%.0f\t"
          "fp8_tflops=%.0f\tfp8_fast_tflops=%.0f\tfp8_rowwise_ms=%.4f\tquant_rows_ms=%.4f\n",
          l.name, static_cast<long>(rows), static_cast<long>(l.out), static_cast<long>(l.in), t16,
          t8, t8f, tq, tqd, flop / t16 / 1e9, flop / t8 / 1e9, flop / t8f / 1e9, t8r, tqr);
      std::fflush(stdout);
      sum16 += t16;
      sum8 += t8;
      sum8_fast += t8f;
      sum_quant += tq;
      sum8_rows += t8r;
      sum_quant_rows += tqr;
      for (void* p : w16s) cudaFree(p);
      for (void* p : w8s) cudaFree(p);
      for (void* p : {x16, x8, y, bias, static_cast<void*>(x_rows), static_cast<void*>(w_rows)}) {
        cudaFree(p);
      }
    }
    std::printf(
        "LAYER\trows=%ld\tfp16_ms=%.4f\tfp8_ms=%.4f\tfp8_fast_ms=%.4f\tquant_static_ms=%.4f\t"
        "fp8_plus_quant_ms=%.4f\tfp8_fast_plus_quant_ms=%.4f\tfp8_rowwise_plus_quant_ms=%.4f\n",
        static_cast<long>(rows), sum16, sum8, sum8_fast, sum_quant, sum8 + sum_quant,
        sum8_fast + sum_quant, sum8_rows + sum_quant_rows);
  }
  cudaFree(scales);
  cudaStreamDestroy(stream);
  return 0;
}
