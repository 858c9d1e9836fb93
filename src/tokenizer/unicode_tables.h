// Character-class tables generated from `tokenizers` itself (see unicode_tables.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::tokenizer::unicode {

/// An inclusive range of code points.
struct CodepointRange {
  uint32_t lo;  ///< first code point
  uint32_t hi;  ///< last code point (inclusive)
};

/// A code point whose Rust `char::to_lowercase` differs from utf8proc's simple mapping.
struct LowercaseException {
  uint32_t cp;        ///< the upper-case code point
  uint32_t count;     ///< number of code points it lowercases to (0..3)
  uint32_t lower[3];  ///< the lowercase code points
};

// Sorted, non-overlapping ranges; see gen_unicode_tables.py for the exact meaning of each.
extern const CodepointRange kRemovedRanges[];            ///< dropped by BertNormalizer clean_text
extern const size_t kRemovedRangesSize;                  ///< entries in kRemovedRanges
extern const CodepointRange kWhitespaceRanges[];         ///< Rust char::is_whitespace
extern const size_t kWhitespaceRangesSize;               ///< entries in kWhitespaceRanges
extern const CodepointRange kPunctRanges[];              ///< BertPreTokenizer punctuation
extern const size_t kPunctRangesSize;                    ///< entries in kPunctRanges
extern const CodepointRange kNonspacingMarkRanges[];     ///< removed by strip_accents after NFD
extern const size_t kNonspacingMarkRangesSize;           ///< entries in kNonspacingMarkRanges
extern const CodepointRange kCjkRanges[];                ///< padded by handle_chinese_chars
extern const size_t kCjkRangesSize;                      ///< entries in kCjkRanges
extern const CodepointRange kLetterRanges[];             ///< \p{L} of the ByteLevel regex (onig)
extern const size_t kLetterRangesSize;                   ///< entries in kLetterRanges
extern const CodepointRange kNumberRanges[];             ///< \p{N} of the ByteLevel regex (onig)
extern const size_t kNumberRangesSize;                   ///< entries in kNumberRanges
extern const LowercaseException kLowercaseExceptions[];  ///< sorted by cp
extern const size_t kLowercaseExceptionsSize;            ///< entries in kLowercaseExceptions

}  // namespace kiln::tokenizer::unicode
