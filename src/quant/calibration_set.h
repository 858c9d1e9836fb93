// The calibration texts `kiln build` runs the FP32 model on: one sample per line of a text file
// (a line with a TAB is a text pair, e.g. question<TAB>context for QA models), tokenized with the
// model's tokenizer and packed into ragged batches. Part of the lines can be held out to measure
// accuracy during the build (mixed precision) without touching the evaluation sets.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/status.h"
#include "kiln/tokenizer.h"

namespace kiln::quant {

/// Fewest calibration lines accepted: fewer cannot give stable activation ranges.
inline constexpr int64_t kMinCalibrationLines = 16;

/// Tokenized texts in ragged batches.
struct CalibrationSet {
  std::vector<TokenBatch> batches;
  int64_t texts = 0;
  int64_t tokens = 0;
  int64_t truncated = 0;  ///< texts longer than the model's max length, cut to it
};

/// Non-blank lines of `path` (at most `max_lines`; 0 = all). NotFound for a missing file,
/// InvalidArgument for one with fewer than `min_lines` non-blank lines (naming the count).
/// With `line_numbers`, the 1-based line of the file each returned line came from.
Result<std::vector<std::string>> read_calibration_lines(
    const std::string& path, int64_t max_lines = 0, int64_t min_lines = kMinCalibrationLines,
    std::vector<int64_t>* line_numbers = nullptr);

/// What the model accepts: ids below `vocab_size`, type ids below `type_vocab_size` (0: the
/// model takes none, and they are dropped).
struct TokenLimits {
  int64_t max_length = 0;
  int64_t vocab_size = 0;
  int64_t type_vocab_size = 0;
};

/// Tokenizes `lines` (a TAB splits a pair) to at most `limits.max_length` tokens each and packs
/// them into batches of at most `batch_tokens` tokens. Invalid UTF-8, an empty encoding or ids
/// the model does not have are InvalidArgument naming `what` and the line: `line_numbers[i]`
/// when given (the file's own numbering), else the 1-based index in `lines`.
Result<CalibrationSet> tokenize_lines(const Tokenizer& tokenizer,
                                      const std::vector<std::string>& lines,
                                      const TokenLimits& limits, int64_t batch_tokens = 8192,
                                      const std::string& what = "calibration",
                                      const std::vector<int64_t>* line_numbers = nullptr);

}  // namespace kiln::quant
