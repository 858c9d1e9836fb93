#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <memory>

#include "tokenizer/unicode_tables.h"

namespace kiln::tokenizer::unicode {
namespace {

constexpr size_t kNumCodepoints = 0x110000;

// One byte of property bits per code point (1.1 MB): a single load per character beats a
// binary search over seven range tables on the hot path.
const uint8_t* property_table() {
  static const std::unique_ptr<uint8_t[]> table = [] {
    auto t = std::make_unique<uint8_t[]>(kNumCodepoints);
    std::fill(t.get(), t.get() + kNumCodepoints, uint8_t{0});
    auto mark = [&](const CodepointRange* ranges, size_t n, uint8_t bit) {
      for (size_t i = 0; i < n; ++i) {
        for (uint32_t cp = ranges[i].lo; cp <= ranges[i].hi && cp < kNumCodepoints; ++cp) {
          t[cp] |= bit;
        }
      }
    };
    mark(kRemovedRanges, kRemovedRangesSize, kRemoved);
    mark(kWhitespaceRanges, kWhitespaceRangesSize, kWhitespace);
    mark(kPunctRanges, kPunctRangesSize, kPunct);
    mark(kNonspacingMarkRanges, kNonspacingMarkRangesSize, kNonspacingMark);
    mark(kCjkRanges, kCjkRangesSize, kCjk);
    mark(kLetterRanges, kLetterRangesSize, kLetter);
    mark(kNumberRanges, kNumberRangesSize, kNumber);
    return t;
  }();
  return table.get();
}

}  // namespace

uint8_t properties(char32_t cp) { return cp < kNumCodepoints ? property_table()[cp] : uint8_t{0}; }

void append_utf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t find_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t b = p[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    char32_t min;
    if (b >= 0xC2 && b <= 0xDF) {
      len = 2;
      min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
      len = 3;
      min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
      len = 4;
      min = 0x10000;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
    }
    size_t decoded_len;
    const char32_t cp = decode_utf8(s, i, &decoded_len);
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

size_t to_lower(char32_t cp, char32_t out[3]) {
  if (cp < 0x80) {
    out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    return 1;
  }
  const LowercaseException* end = kLowercaseExceptions + kLowercaseExceptionsSize;
  const LowercaseException* it =
      std::lower_bound(kLowercaseExceptions, end, cp,
                       [](const LowercaseException& e, char32_t c) { return e.cp < c; });
  if (it != end && it->cp == cp) {
    for (uint32_t k = 0; k < it->count; ++k) out[k] = it->lower[k];
    return it->count;
  }
  out[0] = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp)));
  return 1;
}

size_t decompose(char32_t cp, char32_t* out, size_t cap) {
  // The Rust normalization crate behind `tokenizers` predates this Unicode 13 decomposition.
  if (cp < 0xC0 || cp == 0x11938) {
    out[0] = cp;
    return 1;
  }
  utf8proc_int32_t buf[32];
  int last_boundclass = 0;
  const utf8proc_ssize_t n = utf8proc_decompose_char(static_cast<utf8proc_int32_t>(cp), buf, 32,
                                                     UTF8PROC_DECOMPOSE, &last_boundclass);
  if (n <= 0 || static_cast<size_t>(n) > cap) {
    out[0] = cp;
    return 1;
  }
  for (utf8proc_ssize_t k = 0; k < n; ++k) out[k] = static_cast<char32_t>(buf[k]);
  return static_cast<size_t>(n);
}

}  // namespace kiln::tokenizer::unicode
