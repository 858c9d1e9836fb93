// Linear layers through oneDNN matmul: y = act(x W^T + b) [+ y], weights packed once at load
// into the blocked layout oneDNN's brgemm kernels want, bias/activation/residual fused into the
// GEMM epilogue. Handles any number of rows (the packed token count of a ragged batch). INT8
// layers (linear_int8.cc) quantize their input on the fly and still read and write float or
// bfloat16 activations, so they drop in wherever an FP32 or BF16 layer was.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/status.h"
#include "quant/quant_params.h"

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

  // INT8 only (precision kInt8): weights symmetric per output channel; the input is quantized
  // per token row (dynamic) or per tensor (static) as quant::LinearQuant describes.
  bool bf16_input = false;  ///< x is bfloat16 rather than float
  quant::ActivationScaling scaling = quant::ActivationScaling::kDynamicPerToken;
  float input_scale = 0.0f;  ///< kStaticPerTensor: real = int8 code * input_scale
  /// SmoothQuant factors per input channel (already multiplied into `weight`); the input is
  /// divided by them before quantizing. Empty = none.
  std::vector<float> smooth{};
  float input_clip = 0.0f;  ///< clamp the input to [-clip, clip] before quantizing; 0 = none
};

class Int8Linear;

/// INT8 activations passed from one INT8 layer to the next without a float round trip:
/// [rows, cols] u8 codes (value + 128) and, for per-token scaling, [rows] scales.
struct QuantizedRows {
  uint8_t* codes = nullptr;
  float* scales = nullptr;
};

/// A packed linear layer. Immutable after create(): run() is thread-safe.
class Linear {
 public:
  /// Packs `weight` ([out, in] row-major, as PyTorch stores it) and `bias` ([out], may be null).
  static Result<std::unique_ptr<Linear>> create(const float* weight, const float* bias,
                                                const LinearSpec& spec);
  /// Adopts weights already in this machine's packed layout (a plan file's), without copying:
  /// `packed` must stay alive and unchanged as long as the Linear. FailedPrecondition when
  /// `layout` (an earlier layout()) differs from the layout this machine's kernel wants.
  static Result<std::unique_ptr<Linear>> from_packed(const void* packed, size_t bytes,
                                                     std::string_view layout, const float* bias,
                                                     const LinearSpec& spec);
  /// "onednn 2.6.3": packed layouts are only reusable with the same library version.
  static std::string packing_library();
  ~Linear();
  Linear(const Linear&) = delete;
  Linear& operator=(const Linear&) = delete;

  /// y[rows, out] = epilogue(x[rows, in] W^T + b) (+ y when accumulating). x is float for FP32
  /// precision, bfloat16 for BF16, either for INT8 (spec.bf16_input); y is float unless
  /// spec.bf16_output.
  Status run(const void* x, int64_t rows, void* y) const;
  /// INT8 only: run(), but the output is quantized as `next` (an INT8 layer taking it as
  /// input) would quantize it, into `out`: the FFN's intermediate activations never exist in
  /// float outside a cache-resident block.
  Status run_quantized_output(const void* x, int64_t rows, const Linear& next,
                              QuantizedRows out) const;
  /// INT8 only: run() on an input that run_quantized_output quantized for this layer.
  Status run_quantized_input(QuantizedRows x, int64_t rows, void* y) const;

  const LinearSpec& spec() const { return spec_; }
  /// Bytes of packed weights.
  size_t weight_bytes() const;
  /// oneDNN's name for the kernel it chose, e.g. "brg:avx512_core_bf16".
  std::string kernel_name() const;
  /// The packed weights (weight_bytes() long), as a plan file stores them.
  const void* packed_weights() const;
  /// Fingerprint of the packed layout: library version, kernel, shape and blocking.
  std::string layout() const;

 private:
  struct Impl;
  explicit Linear(const LinearSpec& spec);
  // Types, post-ops, the packed weight descriptor this machine's kernel wants, and the bias.
  Status prepare(const float* bias);
  LinearSpec spec_;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<Int8Linear> int8_;  // set for kInt8 (linear_int8.h); impl_ is then unused
};

}  // namespace kiln::backend::cpu
