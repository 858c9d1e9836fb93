#include "kiln/dtype.h"

namespace kiln {

namespace {
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "F32", 4},   {DType::kF16, "F16", 2}, {DType::kBF16, "BF16", 2},
    {DType::kF64, "F64", 8},   {DType::kI8, "I8", 1},   {DType::kU8, "U8", 1},
    {DType::kI16, "I16", 2},   {DType::kI32, "I32", 4}, {DType::kI64, "I64", 8},
    {DType::kBool, "BOOL", 1},
};
}  // namespace

size_t dtype_size(DType dtype) {
  for (const auto& d : kDTypes) {
    if (d.dtype == dtype) return d.size;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  for (const auto& d : kDTypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "UNKNOWN";
}

bool parse_dtype(std::string_view name, DType* out) {
  for (const auto& d : kDTypes) {
    if (d.name == name) {
      *out = d.dtype;
      return true;
    }
  }
  return false;
}

std::string_view precision_name(Precision precision) {
  switch (precision) {
    case Precision::kF32:
      return "fp32";
    case Precision::kBF16:
      return "bf16";
    case Precision::kInt8:
      return "int8";
    case Precision::kF16:
      return "fp16";
    case Precision::kFp8:
      return "fp8";
  }
  return "fp32";
}

bool parse_precision(std::string_view name, Precision* out) {
  if (name == "fp32" || name == "f32" || name == "float32") {
    *out = Precision::kF32;
    return true;
  }
  if (name == "bf16" || name == "bfloat16") {
    *out = Precision::kBF16;
    return true;
  }
  if (name == "int8") {
    *out = Precision::kInt8;
    return true;
  }
  if (name == "fp16" || name == "f16" || name == "float16") {
    *out = Precision::kF16;
    return true;
  }
  if (name == "fp8" || name == "e4m3") {
    *out = Precision::kFp8;
    return true;
  }
  return false;
}

}  // namespace kiln
