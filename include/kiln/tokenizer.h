// Native tokenizer: Hugging Face tokenizer.json (WordPiece/BERT and byte-level BPE/RoBERTa) or
// a plain vocab.txt, with templates, truncation, stride/overflow and offsets, matching the
// `tokenizers` package token for token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/status.h"

namespace kiln {

/// One encoded input (a single text or a pair), as `tokenizers.Encoding`.
struct Encoding {
  std::vector<int32_t> ids;                        ///< token ids
  std::vector<int32_t> type_ids;                   ///< segment (token type) ids
  std::vector<uint8_t> special_tokens_mask;        ///< 1 for template special tokens
  std::vector<int32_t> sequence_ids;               ///< -1 special, 0 first text, 1 second text
  std::vector<std::pair<size_t, size_t>> offsets;  ///< [begin, end) byte offsets into the text
                                                   ///< the token came from; (0, 0) for specials
  std::vector<uint8_t> offset_text;                ///< which input (0 first, 1 second) each
                                                   ///< token's offsets index into
  std::vector<int32_t> word_ids;                   ///< word (pre-tokenizer split) index within
                                                   ///< its sequence; -1 for special tokens
  std::vector<Encoding> overflowing;               ///< extra windows when truncating with overflow
};

/// Which side(s) truncation may shorten, as in `tokenizers`.
enum class TruncationStrategy { kLongestFirst, kOnlyFirst, kOnlySecond };

/// Per-call encoding options. Defaults: add special tokens, no truncation.
struct EncodeOptions {
  bool add_special_tokens = true;  ///< apply the post-processor template
  size_t max_length = 0;           ///< 0: no truncation; else total length incl. specials
  TruncationStrategy strategy = TruncationStrategy::kLongestFirst;
  size_t stride = 0;                ///< tokens shared between consecutive overflow windows
  bool return_overflowing = false;  ///< keep the truncated rest as `overflowing` windows
};

/// A loaded tokenizer. Immutable after load: encode() is thread-safe.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  /// Loads `dir/tokenizer.json`, or else `dir/vocab.txt` (+ tokenizer_config.json's
  /// do_lower_case) as a BERT WordPiece tokenizer.
  static Result<std::unique_ptr<Tokenizer>> from_model_dir(const std::string& dir);
  /// Parses the contents of a tokenizer.json file.
  static Result<std::unique_ptr<Tokenizer>> from_json(std::string_view json);
  /// A BERT WordPiece tokenizer from a vocab.txt file.
  static Result<std::unique_ptr<Tokenizer>> from_vocab_file(const std::string& path,
                                                            bool lowercase);

  /// Encodes one text (UTF-8). Invalid UTF-8 is an InvalidArgument error.
  virtual Result<Encoding> encode(std::string_view text, const EncodeOptions& options) const = 0;
  /// Encodes a pair (e.g. question, context) with the pair template.
  virtual Result<Encoding> encode_pair(std::string_view first, std::string_view second,
                                       const EncodeOptions& options) const = 0;

  /// Id of a token string, or -1.
  virtual int32_t token_to_id(std::string_view token) const = 0;
  /// Token string of an id, or "" when out of range.
  virtual std::string id_to_token(int32_t id) const = 0;
  /// Token strings back to text with the tokenizer's decoder (transformers'
  /// convert_tokens_to_string): WordPiece, ByteLevel or Metaspace; others join with spaces.
  virtual std::string decode_tokens(const std::vector<std::string>& tokens) const = 0;
  /// Number of ids (vocabulary plus added tokens).
  virtual size_t vocab_size() const = 0;
  /// The padding id (from the padding section, else [PAD]/<pad>, else 0).
  virtual int32_t pad_id() const = 0;
  /// Number of special tokens the template adds to one text (2 for BERT) or to a pair.
  virtual size_t num_special_tokens(bool pair) const = 0;
};

/// Converts byte offsets into `text` to Unicode code point (character) offsets, as Python's
/// `tokenizers` reports them for `str` inputs. `text` must be valid UTF-8.
std::vector<std::pair<size_t, size_t>> byte_to_char_offsets(
    std::string_view text, const std::vector<std::pair<size_t, size_t>>& byte_offsets);

/// Rewrites all offsets of `encoding` (and its overflowing windows) from bytes to characters,
/// each token against the text named by its `offset_text` (`second` for 1, else `first`).
void convert_to_char_offsets(Encoding* encoding, std::string_view first,
                             std::string_view second = {});

}  // namespace kiln
