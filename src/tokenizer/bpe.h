// Byte-pair encoding (GPT-2/RoBERTa): merges applied by rank.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/model.h"

namespace kiln::tokenizer {

/// Options of the BPE model, as in tokenizer.json.
struct BpeOptions {
  std::optional<std::string> unk_token;  ///< replaces unknown symbols; dropped when unset
  bool fuse_unk = false;                 ///< merge consecutive unknown symbols into one
  bool ignore_merges = false;            ///< a word found whole in the vocab is one token
  bool byte_level = false;               ///< words arrive as raw bytes; vocab strings use the GPT-2
                            ///< byte-to-unicode alphabet (set when the pre-tokenizer is ByteLevel)
};

/// Builds a BPE model; `merges` are (left, right) token strings, highest priority first.
Result<std::unique_ptr<Model>> make_bpe(
    Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
    const BpeOptions& options);

/// The GPT-2 byte-to-unicode map: the code point that stands for byte `b`.
char32_t byte_to_unicode(uint8_t b);

}  // namespace kiln::tokenizer
