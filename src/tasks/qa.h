// Extractive question answering around the encoder, as Hugging Face's question-answering
// pipeline does it: the context split into windows with a document stride, every window run
// with the question, spans scored from start/end probabilities, aligned to whole words and
// merged across windows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/status.h"
#include "kiln/tokenizer.h"

namespace kiln::tasks {

/// Decoding settings (the pipeline's arguments and defaults).
struct QaOptions {
  size_t max_seq_len = 384;               ///< tokens per window, question and specials included
  size_t doc_stride = 128;                ///< tokens shared by consecutive windows
  size_t max_answer_len = 15;             ///< tokens per answer
  size_t top_k = 1;                       ///< answers returned
  bool handle_impossible_answer = false;  ///< may answer "" (SQuAD 2.0 models)
};

/// One window: the question and a part of the context, as the model runs it.
struct QaFeature {
  std::vector<int32_t> ids;
  std::vector<int32_t> type_ids;
  std::vector<uint8_t> allowed;                    ///< may be in an answer: context tokens, [CLS]
  std::vector<std::pair<size_t, size_t>> offsets;  ///< byte offsets (context tokens: into it)
  std::vector<int32_t> words;                      ///< word ids (-1 for special tokens)
  std::vector<int32_t> sequence;                   ///< 0 question, 1 context, -1 special
};

/// A question over a context, split into features.
struct QaExample {
  std::string context;
  std::vector<QaFeature> features;
};

/// One answer: text, score and [start, end) in characters (code points) of the context.
struct QaAnswer {
  std::string text;
  double score = 0;
  int64_t start = 0;
  int64_t end = 0;
};

/// Tokenizes (question, context) into windows: truncation only of the context, `max_seq_len`
/// tokens, `doc_stride` overlap. An empty question or context, or a question too long to leave
/// room for the context, is InvalidArgument.
Result<QaExample> make_qa_example(const Tokenizer& tokenizer, std::string_view question,
                                  std::string_view context, const QaOptions& options);

/// The best `top_k` answers from each feature's logits ([tokens, 2]: start, end interleaved),
/// best first. Equal answers (case-insensitive) found in several places add their scores.
std::vector<QaAnswer> decode_answers(const QaExample& example,
                                     std::span<const float* const> feature_logits,
                                     const QaOptions& options);

/// Checks options: a stride that leaves no progress, zero lengths.
Status check_qa_options(const QaOptions& options);

}  // namespace kiln::tasks
