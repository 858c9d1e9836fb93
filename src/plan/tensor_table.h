// The plan's tensor directory ("tensors" section) and the tensors' bytes ("weights" section).
// Each tensor has a dtype, a shape, a layout (row-major, or a backend's packed layout named by
// its fingerprint) and optional per-output-channel scales (INT8 weights).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/status.h"

namespace kiln::plan {

/// Element type of a stored tensor.
enum class TensorType : uint8_t { kF32 = 0, kBF16 = 1, kI8 = 2, kF16 = 3 };

/// How a tensor's bytes are arranged.
enum class TensorLayout : uint8_t {
  kRowMajor = 0,  ///< C order over `shape`
  kPacked = 1,    ///< the backend's own layout (opaque here); `packing` names it
};

/// "F32", "BF16", "I8".
std::string_view tensor_type_name(TensorType type);
/// Bytes per element.
size_t tensor_type_size(TensorType type);

/// One tensor of a plan; `data` and `scales` point into the plan's weights section.
struct TensorInfo {
  std::string name;
  TensorType type = TensorType::kF32;
  TensorLayout layout = TensorLayout::kRowMajor;
  std::vector<int64_t> shape;
  std::string packing;  ///< layout fingerprint of a packed tensor
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  const float* scales = nullptr;  ///< [shape[0]] per-output-channel scales, or null
  uint64_t num_scales = 0;

  int64_t numel() const;
};

/// A tensor as the writer places it: offsets relative to the weights section.
struct TensorEntry {
  std::string name;
  TensorType type = TensorType::kF32;
  TensorLayout layout = TensorLayout::kRowMajor;
  std::vector<int64_t> shape;
  std::string packing;
  uint64_t offset = 0;
  uint64_t nbytes = 0;
  uint64_t scales_offset = 0;
  uint64_t num_scales = 0;
};

/// Encodes the directory.
std::string encode_tensor_table(const std::vector<TensorEntry>& entries);

/// Decodes and validates the directory against the weights section `weights` (64-byte aligned
/// in the file): every tensor inside it and aligned, row-major sizes equal to the shape's,
/// names unique, shapes positive.
Result<std::vector<TensorInfo>> decode_tensor_table(std::string_view table,
                                                    std::string_view weights);

}  // namespace kiln::plan
