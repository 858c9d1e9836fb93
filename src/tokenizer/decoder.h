// tokenizers' decoders, turning token strings back into text (`convert_tokens_to_string`):
// WordPiece (join words, glue "##" continuations, clean up spaces before punctuation),
// ByteLevel (map the GPT-2 byte alphabet back to bytes) and Metaspace (SentencePiece's "▁"). The
// NER post-processing uses it for entity words as Hugging Face's token-classification pipeline
// reports them.
#pragma once

#include <string>
#include <vector>

#include "core/json.h"
#include "kiln/status.h"

namespace kiln::tokenizer {

struct Decoder {
  enum class Kind { kJoin, kWordPiece, kByteLevel, kMetaspace };
  Kind kind = Kind::kJoin;    ///< no (or an unsupported) decoder: tokens joined with spaces
  std::string prefix = "##";  ///< WordPiece continuation prefix
  bool cleanup = true;        ///< WordPiece clean-up of spaces before punctuation
  std::string replacement = "\u2581";  ///< Metaspace's stand-in for a space
  bool strip_first_space = true;       ///< Metaspace: drop the space the pre-tokenizer added

  std::string decode(const std::vector<std::string>& tokens) const;
};

/// tokenizer.json's "decoder" (absent, null or of another type: kJoin).
Result<Decoder> parse_decoder(const core::json::Value* decoder);

}  // namespace kiln::tokenizer
