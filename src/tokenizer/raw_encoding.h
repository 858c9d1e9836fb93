// The pipeline's working Encoding: tokenizers' Encoding with the same merge/truncate rules.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/status.h"
#include "kiln/tokenizer.h"

namespace kiln::tokenizer {

/// Token range [begin, end) of one input sequence (tokenizers' `sequence_ranges` entry).
struct SequenceRange {
  uint32_t sequence;  ///< 0 first text, 1 second text
  uint32_t begin;     ///< first token
  uint32_t end;       ///< one past the last token
};

/// An Encoding under construction. Mirrors tokenizers' Encoding field by field so that
/// truncation and merging (including their overflow quirks) can follow it exactly.
struct RawEncoding {
  std::vector<int32_t> ids;                            ///< token ids
  std::vector<int32_t> type_ids;                       ///< segment ids
  std::vector<uint8_t> special;                        ///< special-token mask
  std::vector<std::pair<uint32_t, uint32_t>> offsets;  ///< byte offsets into the source text
  std::vector<uint8_t> text_index;                     ///< which input text the offsets refer to
  /// Space-like characters at the start/end of the token's string, for ByteLevel offset
  /// trimming: kNoSpaces means "look it up by id"; added tokens matched with lstrip/rstrip
  /// carry the swallowed whitespace in their string, so they record it here.
  std::vector<uint32_t> spaces;
  /// Word index of each token within its sequence (the pre-tokenizer split it came from, as
  /// tokenizers' Encoding::words), -1 for template special tokens.
  std::vector<int32_t> words;
  std::vector<SequenceRange> ranges;     ///< a map keyed by `sequence`
  std::vector<RawEncoding> overflowing;  ///< windows cut off by truncation

  /// Number of tokens.
  size_t size() const { return ids.size(); }
  /// `spaces` value that defers to the per-id table.
  static constexpr uint32_t kNoSpaces = 0xFFFFFFFFu;
  /// Appends one token.
  void push(int32_t id, int32_t type_id, uint8_t is_special, std::pair<uint32_t, uint32_t> offset,
            uint8_t text, uint32_t token_spaces = kNoSpaces, int32_t word = -1) {
    spaces.push_back(token_spaces);
    words.push_back(word);
    ids.push_back(id);
    type_ids.push_back(type_id);
    special.push_back(is_special);
    offsets.push_back(offset);
    text_index.push_back(text);
  }
  /// Marks all tokens, and those of the overflowing windows, as belonging to `sequence`.
  void set_sequence_id(uint32_t sequence);
  /// Sets every type id to `type_id` (this encoding only, not its overflowing windows).
  void set_type_ids(int32_t type_id);
  /// Keeps the first `max_len` tokens and moves the rest into overflowing windows that share
  /// `stride` tokens; tokenizers' Encoding::truncate (direction right).
  Status truncate(size_t max_len, size_t stride);
  /// Appends `pair`, combining overflowing windows as tokenizers' Encoding::merge_with.
  void merge_with(const RawEncoding& pair);
  /// The public form (sequence ids resolved like Encoding::get_sequence_ids).
  Encoding to_public() const;
};

/// Merges `encodings` in order into one (tokenizers' Encoding::merge, no offset growth).
RawEncoding merge_all(std::vector<RawEncoding> encodings);

}  // namespace kiln::tokenizer
