// WordPiece (BERT): greedy longest-match-first subwords with a continuation prefix.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/model.h"

namespace kiln::tokenizer {

/// Options of the WordPiece model, as in tokenizer.json.
struct WordPieceOptions {
  std::string unk_token = "[UNK]";               ///< whole-word replacement on failure
  std::string continuing_subword_prefix = "##";  ///< marks non-initial pieces
  size_t max_input_chars_per_word = 100;         ///< longer words become unk_token
};

/// Builds a WordPiece model; the unk token must be in `vocab`.
Result<std::unique_ptr<Model>> make_wordpiece(Vocab vocab, const WordPieceOptions& options);

}  // namespace kiln::tokenizer
