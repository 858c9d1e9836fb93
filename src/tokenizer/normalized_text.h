// A normalized string that remembers, for every byte, which original characters it came from.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/unicode.h"

namespace kiln::tokenizer {

/// [start, end) byte range of one character of the original text.
struct Alignment {
  uint32_t start;  ///< first byte
  uint32_t end;    ///< one past the last byte
};

/// Normalized text plus one Alignment per byte, as `tokenizers`' NormalizedString keeps them:
/// a normalized range maps back to (alignment of its first byte).start ..
/// (alignment of its last byte).end.
struct NormalizedText {
  std::string text;              ///< normalized UTF-8
  std::vector<Alignment> align;  ///< align[i] for text[i]

  /// Resets to `original` (a slice starting at byte `base` of the full input), unchanged.
  void assign_original(std::string_view original, uint32_t base) {
    text.assign(original);
    align.resize(original.size());
    size_t i = 0;
    while (i < original.size()) {
      const size_t len = unicode::utf8_length(static_cast<uint8_t>(original[i]));
      const Alignment a{base + static_cast<uint32_t>(i), base + static_cast<uint32_t>(i + len)};
      for (size_t k = 0; k < len; ++k) align[i + k] = a;
      i += len;
    }
  }

  /// Appends `cp`, attributed to the original character `a`.
  void append(char32_t cp, Alignment a) {
    const size_t before = text.size();
    unicode::append_utf8(cp, &text);
    align.insert(align.end(), text.size() - before, a);
  }

  /// Original byte range of the normalized byte range [begin, end); `end > begin`.
  Alignment original_range(size_t begin, size_t end) const {
    return Alignment{align[begin].start, align[end - 1].end};
  }
};

/// A [begin, end) byte range of a NormalizedText.
struct Span {
  uint32_t begin;  ///< first byte
  uint32_t end;    ///< one past the last byte
};

}  // namespace kiln::tokenizer
