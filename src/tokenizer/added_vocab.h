// Added tokens: strings matched in the input before the model sees it (tokenizers'
// AddedVocabulary), e.g. "[MASK]" or "<mask>".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/normalizer.h"

namespace kiln::tokenizer {

/// One entry of tokenizer.json's "added_tokens".
struct AddedToken {
  std::string content;       ///< literal text
  int32_t id = -1;           ///< its id
  bool special = false;      ///< a special token (template/mask), not a plain added word
  bool single_word = false;  ///< only match as a whole word
  bool lstrip = false;       ///< swallow whitespace on its left
  bool rstrip = false;       ///< swallow whitespace on its right
  bool normalized = true;    ///< match against the normalized text instead of the original
};

/// A piece of a text: [begin, end) bytes, and the added token id it matched or -1.
struct AddedSplit {
  uint32_t begin;  ///< first byte
  uint32_t end;    ///< one past the last byte
  int32_t id;      ///< matched token id, or -1 for ordinary text
};

/// The added tokens of a tokenizer; immutable after build(), thread-safe.
class AddedVocab {
 public:
  /// Registers a token (before build()).
  void add(AddedToken token) { tokens_.push_back(std::move(token)); }
  /// Prepares the matchers; normalized tokens are matched in their normalized form.
  void build(const Normalizer* normalizer);
  /// All tokens, in registration order.
  const std::vector<AddedToken>& tokens() const { return tokens_; }
  /// Id of a token whose content is `content`, or -1.
  int32_t find(std::string_view content) const;
  /// True when some token must be matched in the original (resp. normalized) text.
  bool has_raw() const { return !raw_.patterns.empty(); }
  bool has_normalized() const { return !normalized_.patterns.empty(); }
  /// Splits `text` (original when `normalized` is false) into pieces covering it entirely;
  /// appends to `out`. An empty text yields one empty piece, as tokenizers does.
  void split(std::string_view text, bool normalized, std::vector<AddedSplit>* out) const;

 private:
  struct Pattern {
    std::string text;  // what is searched for
    size_t token;      // index into tokens_
  };
  struct Matcher {
    std::vector<Pattern> patterns;  // sorted longest first
    bool first_byte[256] = {};
  };
  void split_with(const Matcher& m, std::string_view text, std::vector<AddedSplit>* out) const;

  std::vector<AddedToken> tokens_;
  Matcher raw_;
  Matcher normalized_;
};

}  // namespace kiln::tokenizer
