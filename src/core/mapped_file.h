// Read-only memory mapping of a whole file (RAII).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/status.h"

namespace kiln::core {

/// A file mapped read-only into memory; unmapped on destruction. Movable, not copyable.
/// Thread-safe for concurrent reads.
class MappedFile {
 public:
  /// Maps `path`; an empty file maps to size 0.
  static Result<MappedFile> open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  /// First byte of the mapping (nullptr when empty).
  const uint8_t* data() const { return data_; }
  /// Length in bytes.
  size_t size() const { return size_; }

 private:
  void reset();
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

/// Reads a whole (small) file into a string.
Result<std::string> read_file(const std::string& path);

/// True when `path` names an existing regular file.
bool file_exists(const std::string& path);

}  // namespace kiln::core
