// Linear layers through cuBLASLt: Y[n, m] = X[n, k] W[m, k]^T (+ bias, + activation), FP16 or
// BF16 in and out with FP32 accumulation, bias and activation fused into the GEMM's epilogue
// where cuBLASLt has one.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "backend/cuda/memory.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// The Status for a failed cuBLASLt call (Internal, naming the call and place).
Status cublas_error(cublasStatus_t status, const char* expr, const char* file, int line);

class GemmTuning;
struct TunedGemm;

/// What the GEMM adds to X W^T. cuBLASLt's GELU is the tanh approximation, so only models whose
/// activation is gelu_new/gelu_pytorch_tanh use kGeluTanhBias (exact-erf GELU runs after the
/// GEMM, see activation.h).
enum class Epilogue { kNone, kBias, kGeluTanhBias, kReluBias };

/// One GEMM: rows = tokens (n), out = m, in = k.
struct GemmShape {
  int64_t rows = 0;
  int64_t out = 0;
  int64_t in = 0;
  Epilogue epilogue = Epilogue::kNone;
  DType dtype = DType::kF16;  ///< of X, W, bias and Y: kF16 or kBF16
  /// X and W are FP8 E4M3 with per-tensor scales (run_fp8); bias and Y stay `dtype`.
  bool fp8 = false;
  /// For fp8: Hopper's fast FP8 accumulation (partial sums not promoted to FP32 along K).
  bool fp8_fast_accum = false;
  /// For fp8: the scales are vectors (cuBLASLt's outer-vector mode): one per token row of X
  /// (`rows` floats) and one per output channel of W (`out` floats), instead of one each.
  bool fp8_rowwise = false;
};

/// A cuBLASLt handle, its workspace and the descriptors and chosen algorithm per shape. Not
/// thread-safe: each stream context owns one (descriptors are mutated per call).
class GemmRunner {
 public:
  GemmRunner() = default;
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  /// Creates the handle and a workspace of `workspace_bytes` (32 MiB suits Hopper).
  Status init(size_t workspace_bytes = size_t{32} << 20);

  /// Enqueues Y = X W^T (+ bias)(activation) on `stream`. X [rows, in], W [out, in], bias [out]
  /// (may be null for kNone), Y [rows, out], all row-major on the device, 16-byte aligned.
  Status run(const GemmShape& shape, const void* x, const void* w, const void* bias, void* y,
             cudaStream_t stream);
  /// As run() for a shape with fp8 set: Y = (x_scale X)(w_scale W)^T (+ bias)(activation), X and
  /// W E4M3, `x_scale` and `w_scale` one float each on the device (see fp8.h), or with
  /// fp8_rowwise one per row of X and one per row of W.
  Status run_fp8(const GemmShape& shape, const void* x, const void* w, const void* bias, void* y,
                 const float* x_scale, const float* w_scale, cudaStream_t stream);

  /// Algorithms chosen at build time (gemm_tuning.h), consulted before cuBLASLt's heuristic;
  /// null = heuristic only. Must outlive the runner's use of it.
  void set_tuning(const GemmTuning* tuning);

  /// Whether batches of at most 128 token rows take kiln's split-K cluster kernel
  /// (small_gemm.h) instead of cuBLASLt, where it applies. Off by default.
  void set_small_gemm(bool on) { small_ = on; }

  /// Times up to `max_candidates` of cuBLASLt's algorithms for `shape` on `stream` (synchronous)
  /// and returns the fastest. The weight of each timed call is the next of `weights` (copies of
  /// one matrix, so that it comes from memory, not L2, as in a forward pass).
  Result<TunedGemm> tune(const GemmShape& shape, const void* x,
                         const std::vector<const void*>& weights, const void* bias, void* y,
                         cudaStream_t stream, int max_candidates);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  using Key = std::tuple<int64_t, int64_t, int64_t, int, int, int>;
  Result<Plan*> plan_for(const GemmShape& shape);
  // Bias, FP8 scales (for an fp8 shape) and the cuBLASLt call shared by run and run_fp8.
  Status matmul(const GemmShape& shape, const void* x, const void* w, const void* bias, void* y,
                const float* x_scale, const float* w_scale, cudaStream_t stream);
  Status describe(const GemmShape& shape, Plan* plan) const;  // descriptors and layouts
  // cuBLASLt's best `count` algorithms for the plan's descriptors, best first.
  Result<std::vector<cublasLtMatmulHeuristicResult_t>> heuristics(const Plan& plan,
                                                                  int count) const;
  static void destroy(Plan& plan);

  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  std::map<Key, Plan> plans_;
  const GemmTuning* tuning_ = nullptr;
  bool small_ = false;
};

}  // namespace kiln::backend::cuda

/// Returns a Status from the enclosing function when the cuBLASLt call `expr` fails.
#define KILN_CUBLAS_CHECK(expr)                                                                   \
  do {                                                                                            \
    const cublasStatus_t kiln_cublas_status_ = (expr);                                            \
    if (kiln_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                                           \
      return ::kiln::backend::cuda::cublas_error(kiln_cublas_status_, #expr, __FILE__, __LINE__); \
    }                                                                                             \
  } while (0)
