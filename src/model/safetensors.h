// Reader for the safetensors format: an 8-byte little-endian header length, a JSON header
// mapping tensor names to {dtype, shape, data_offsets}, then the raw bytes. Every header field is
// validated before any data is touched, so a corrupt or hostile file is an error, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::model {

/// One tensor of a safetensors file; `data` points into the mapping (may be unaligned).
struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  /// Number of elements (product of the shape; 1 for a scalar).
  int64_t numel() const;
  /// "[30522, 384] F32".
  std::string describe() const;
};

/// A parsed safetensors file. Owns its mapping when opened from a path. Immutable: thread-safe.
class SafeTensors {
 public:
  /// Maps and validates `path`.
  static Result<SafeTensors> open(const std::string& path);
  /// Validates a buffer the caller keeps alive (used by tests and the fuzzer).
  static Result<SafeTensors> parse(const uint8_t* data, size_t size);

  /// The tensor named `name`, or nullptr.
  const TensorView* find(std::string_view name) const;
  /// All tensors in file order of their data offsets.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  /// The optional "__metadata__" string map.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  core::MappedFile file_;
  std::vector<TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

/// Copies a F32/F16/BF16 tensor into float32, converting the element type.
Result<std::vector<float>> to_float32(const TensorView& tensor);

}  // namespace kiln::model
