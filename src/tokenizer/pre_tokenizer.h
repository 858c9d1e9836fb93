// Pre-tokenizers: split normalized text into words (tokenizers' `pre_tokenizers` module).
#pragma once

#include <memory>
#include <vector>

#include "tokenizer/normalized_text.h"

namespace kiln::tokenizer {

/// Splits a NormalizedText into word spans; immutable and thread-safe.
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  /// Appends the words of `text` to `words`. May edit `text` (ByteLevel's prefix space).
  virtual void pre_tokenize(NormalizedText* text, std::vector<Span>* words) const = 0;
  /// True when words are handed to the model as byte-level symbols (ByteLevel).
  virtual bool byte_level() const { return false; }
};

/// BERT: split on whitespace (dropped) and isolate each punctuation character.
std::unique_ptr<PreTokenizer> make_bert_pre_tokenizer();
/// Split on whitespace only (tokenizers' `WhitespaceSplit`).
std::unique_ptr<PreTokenizer> make_whitespace_split_pre_tokenizer();
/// GPT-2/RoBERTa byte-level: optional prefix space, then the GPT-2 regex split.
std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex);

}  // namespace kiln::tokenizer
