// INT8 linear layers: weights symmetric per output channel, activations quantized per token row
// (dynamic) or per tensor (static, from calibration), u8 x s8 -> s32 GEMM on AVX512_VNNI through
// oneDNN, dequantized with bias, activation and residual in the GEMM's epilogue. Used through
// Linear (precision kInt8); internal to the CPU backend.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include <memory>
#include <string>
#include <string_view>

#include "backend/cpu/linear.h"

namespace kiln::backend::cpu {

/// See the file comment. Immutable after create(): run() is thread-safe.
class Int8Linear {
 public:
  /// Quantizes `weight` ([out, in] row-major float) per output channel and packs it.
  static Result<std::unique_ptr<Int8Linear>> create(const float* weight, const float* bias,
                                                    const LinearSpec& spec);
  /// Adopts a blob from an earlier packed_weights() (same layout(), checked by the caller) in
  /// place: `blob` must outlive the layer.
  static Result<std::unique_ptr<Int8Linear>> adopt(const void* blob, size_t bytes,
                                                   const float* bias, const LinearSpec& spec);
  ~Int8Linear();
  Int8Linear(const Int8Linear&) = delete;
  Int8Linear& operator=(const Int8Linear&) = delete;

  /// As Linear::run: x float or bfloat16 (spec.bf16_input), y float or bfloat16.
  Status run(const void* x, int64_t rows, void* y) const;
  /// See Linear::run_quantized_output.
  Status run_quantized_output(const void* x, int64_t rows, const Int8Linear& next,
                              QuantizedRows out) const;
  /// See Linear::run_quantized_input.
  Status run_quantized_input(QuantizedRows x, int64_t rows, void* y) const;

  /// The packed blob: oneDNN's blocked int8 weights, then per output channel the weight scale
  /// and the zero-point compensation (floats).
  const void* packed_weights() const;
  size_t weight_bytes() const;
  /// oneDNN's kernel name with the quantization scheme, e.g. "brg:avx512_core_vnni u8s8s32".
  std::string kernel_name() const;
  /// The blocked weight descriptor (for the layout fingerprint).
  const dnnl::memory::desc& weight_md() const;

 private:
  struct Impl;
  Int8Linear();
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::backend::cpu
