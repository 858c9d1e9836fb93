// Normalizers: text -> normalized text with alignments (tokenizers' `normalizers` module).
#pragma once

#include <memory>
#include <vector>

#include "tokenizer/normalized_text.h"

namespace kiln::tokenizer {

/// Rewrites a NormalizedText; implementations are immutable and thread-safe.
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  /// Normalizes `in` into `out` (cleared first); `in` and `out` are distinct.
  virtual void normalize(const NormalizedText& in, NormalizedText* out) const = 0;
};

/// Options of BertNormalizer, as in tokenizer.json.
struct BertNormalizerOptions {
  bool clean_text = true;            ///< drop control chars, map whitespace to ' '
  bool handle_chinese_chars = true;  ///< surround CJK ideographs with spaces
  bool strip_accents = true;         ///< NFD, then drop non-spacing marks (resolved: null ->
                                     ///< lowercase by the loader)
  bool lowercase = true;             ///< Rust char::to_lowercase per character
};

/// BERT's normalizer.
std::unique_ptr<Normalizer> make_bert_normalizer(const BertNormalizerOptions& options);
/// Lowercases every character (tokenizers' `Lowercase`).
std::unique_ptr<Normalizer> make_lowercase_normalizer();
/// Applies `parts` in order (tokenizers' `Sequence`).
std::unique_ptr<Normalizer> make_sequence_normalizer(
    std::vector<std::unique_ptr<Normalizer>> parts);

}  // namespace kiln::tokenizer
