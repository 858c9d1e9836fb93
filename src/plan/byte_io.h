// Little-endian encoding of the plan's binary sections. The reader checks every read against
// the end of its buffer, so a corrupt section is an error, never an out-of-bounds access.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "kiln/status.h"

namespace kiln::plan {

static_assert(std::endian::native == std::endian::little, "plan files are little-endian");

/// Appends values to a byte string.
class ByteWriter {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_arithmetic_v<T> || std::is_enum_v<T>);
    out_.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  void put_bytes(const void* data, size_t size) {
    out_.append(static_cast<const char*>(data), size);
  }
  /// u32 length, then the bytes.
  void put_string(std::string_view s) {
    put(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

/// Reads values from a byte range; every failure names `what` (the section).
class ByteReader {
 public:
  ByteReader(std::string_view data, std::string what) : data_(data), what_(std::move(what)) {}

  template <typename T>
  Status get(T* value) {
    static_assert(std::is_arithmetic_v<T>);
    if (data_.size() - pos_ < sizeof(T)) return truncated();
    std::memcpy(value, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return ok_status();
  }
  /// `size` bytes in place.
  Status get_bytes(size_t size, std::string_view* out) {
    if (data_.size() - pos_ < size) return truncated();
    *out = data_.substr(pos_, size);
    pos_ += size;
    return ok_status();
  }
  /// A u32-length-prefixed string of at most `max_size` bytes, in place.
  Status get_string(std::string_view* out, size_t max_size = 1 << 20) {
    uint32_t n = 0;
    KILN_RETURN_IF_ERROR(get(&n));
    if (n > max_size) return corrupt("string of " + std::to_string(n) + " bytes");
    return get_bytes(n, out);
  }
  size_t remaining() const { return data_.size() - pos_; }
  /// DataLoss naming the section.
  Status corrupt(const std::string& detail) const {
    return data_loss("plan section '" + what_ + "' is corrupt: " + detail);
  }

 private:
  Status truncated() const {
    return corrupt("ends early at byte " + std::to_string(pos_) + " of " +
                   std::to_string(data_.size()));
  }
  std::string_view data_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace kiln::plan
