// Linear layers through oneDNN matmul: y = act(x W^T + b) [+ y], weights packed once at load
// into the blocked layout oneDNN's brgemm kernels want, bias/activation/residual fused into the
// GEMM epilogue. Handles any number of rows (the packed token count of a ragged batch).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::backend::cpu {

/// Epilogue activation fused into the GEMM.
enum class Epilogue { kNone, kGeluErf, kGeluTanh, kTanh, kRelu };

/// How a Linear is built.
struct LinearSpec {
  int64_t out = 0;                        ///< N
  int64_t in = 0;                         ///< K
  Precision precision = Precision::kF32;  ///< weights and input activations (bf16: both bf16)
  Epilogue epilogue = Epilogue::kNone;
  bool accumulate = false;   ///< y += result (the residual add)
  bool bf16_output = false;  ///< write y as bfloat16 (feeds a bf16 GEMM)
};

/// A packed linear layer. Immutable after create(): run() is thread-safe.
class Linear {
 public:
  /// Packs `weight` ([out, in] row-major, as PyTorch stores it) and `bias` ([out], may be null).
  static Result<std::unique_ptr<Linear>> create(const float* weight, const float* bias,
                                                const LinearSpec& spec);
  ~Linear();
  Linear(const Linear&) = delete;
  Linear& operator=(const Linear&) = delete;

  /// y[rows, out] = epilogue(x[rows, in] W^T + b) (+ y when accumulating). x is float for FP32
  /// precision and bfloat16 for BF16; y is float unless spec.bf16_output.
  Status run(const void* x, int64_t rows, void* y) const;

  const LinearSpec& spec() const { return spec_; }
  /// Bytes of packed weights.
  size_t weight_bytes() const;
  /// oneDNN's name for the kernel it chose, e.g. "brg:avx512_core_bf16".
  std::string kernel_name() const;

 private:
  struct Impl;
  explicit Linear(const LinearSpec& spec);
  LinearSpec spec_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cpu
