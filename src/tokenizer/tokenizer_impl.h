// Assembles the pipeline stages into a kiln::Tokenizer.
#pragma once

#include <memory>

#include "kiln/tokenizer.h"
#include "tokenizer/added_vocab.h"
#include "tokenizer/decoder.h"
#include "tokenizer/model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"

namespace kiln::tokenizer {

/// The stages of a tokenizer; only `model` is required.
struct TokenizerParts {
  std::unique_ptr<Normalizer> normalizer;         ///< may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;    ///< may be null (whole text is one word)
  std::unique_ptr<Model> model;                   ///< required
  std::unique_ptr<PostProcessor> post_processor;  ///< may be null
  AddedVocab added;                               ///< added/special tokens (built by the impl)
  int32_t pad_id = -1;                            ///< from the padding section, or -1
  Decoder decoder;                                ///< tokens back to text
};

/// Builds the Tokenizer from its parts.
Result<std::unique_ptr<Tokenizer>> make_tokenizer(TokenizerParts parts);

/// Parses tokenizer.json's components into parts (tokenizer_json.cc).
Result<TokenizerParts> parse_tokenizer_json(std::string_view json);

/// A BERT WordPiece tokenizer over the lines of a vocab.txt, as `tokenizers`'
/// BertWordPieceTokenizer builds it (vocab_file.cc).
Result<TokenizerParts> bert_parts_from_vocab(std::string_view vocab_txt, bool lowercase);

}  // namespace kiln::tokenizer
