// Truncation of one or two encodings to a token budget (tokenizers' truncate_encodings).
#pragma once

#include <cstddef>

#include "kiln/tokenizer.h"
#include "tokenizer/raw_encoding.h"

namespace kiln::tokenizer {

/// Shortens `first` (and `second` when not null) so that together they hold at most
/// `max_length` tokens, moving the rest into overflowing windows with `stride` shared tokens.
/// Errors where tokenizers raises: a stride not below a sequence's budget, a sequence too short
/// for only_first/only_second, or only_second without a second sequence.
Status truncate_encodings(RawEncoding* first, RawEncoding* second, size_t max_length,
                          TruncationStrategy strategy, size_t stride);

}  // namespace kiln::tokenizer
