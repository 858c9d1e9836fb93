// Element types of tensors, named as in the safetensors and KServe v2 specs where they overlap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kiln {

/// Element type of a tensor.
enum class DType { kF32, kF16, kBF16, kF64, kI8, kU8, kI16, kI32, kI64, kBool };

/// Size of one element in bytes.
size_t dtype_size(DType dtype);
/// Name as in safetensors headers ("F32", "BF16", ...).
std::string_view dtype_name(DType dtype);
/// Parses a safetensors dtype name; false when unknown.
bool parse_dtype(std::string_view name, DType* out);

/// Compute precision of an engine or of one layer: weights are converted to it at load. kInt8
/// is symmetric per-output-channel int8 weights with int8 activations (see quant/). kF16 is
/// IEEE half with float accumulation (GPU devices). kFp8 (GPU devices) runs the QKV and FFN-in
/// linears as E4M3 GEMMs, weights scaled per output channel and activations per token (dynamic
/// scales, no calibration), and everything else in FP16. New values go last: plans store the
/// number.
enum class Precision { kF32, kBF16, kInt8, kF16, kFp8 };

/// "fp32", "bf16", "int8", "fp16" or "fp8".
std::string_view precision_name(Precision precision);
/// Parses "fp32"/"f32"/"float32", "bf16"/"bfloat16", "int8", "fp16"/"f16"/"float16" or
/// "fp8"/"e4m3"; false when unknown.
bool parse_precision(std::string_view name, Precision* out);

}  // namespace kiln
