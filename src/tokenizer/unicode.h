// UTF-8 decoding and the character properties the tokenizer pipeline needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kiln::tokenizer::unicode {

/// Property bits of a code point, as `tokenizers` classifies it.
enum Property : uint8_t {
  kRemoved = 1 << 0,         ///< control/format/private use: dropped by clean_text
  kWhitespace = 1 << 1,      ///< Rust char::is_whitespace
  kPunct = 1 << 2,           ///< split off by BertPreTokenizer
  kNonspacingMark = 1 << 3,  ///< dropped by strip_accents
  kCjk = 1 << 4,             ///< padded with spaces by handle_chinese_chars
  kLetter = 1 << 5,          ///< \p{L}
  kNumber = 1 << 6,          ///< \p{N}
};

/// The property bits of `cp`. Thread-safe (tables are built once, on first use).
uint8_t properties(char32_t cp);

/// Length in bytes of the UTF-8 sequence starting with `lead` (1 for continuation bytes).
inline size_t utf8_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

/// Decodes the code point at `s[i]`; `s` must be valid UTF-8. Sets `*len` to its byte length.
inline char32_t decode_utf8(std::string_view s, size_t i, size_t* len) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  const uint8_t b0 = p[0];
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  if (b0 < 0xE0) {
    *len = 2;
    return (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    *len = 3;
    return (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  *len = 4;
  return (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) |
         (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

/// Appends the UTF-8 encoding of `cp` to `out`.
void append_utf8(char32_t cp, std::string* out);

/// Byte offset of the first invalid UTF-8 sequence in `s`, or npos when `s` is valid.
size_t find_invalid_utf8(std::string_view s);

/// Writes the lowercase mapping of `cp` (as Rust's char::to_lowercase) into `out`; returns
/// the number of code points (1..3).
size_t to_lower(char32_t cp, char32_t out[3]);

/// Writes the canonical decomposition (NFD) of `cp` into `out` (capacity `cap`); returns the
/// number of code points, at least 1.
size_t decompose(char32_t cp, char32_t* out, size_t cap);

}  // namespace kiln::tokenizer::unicode
