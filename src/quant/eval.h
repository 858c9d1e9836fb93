// `kiln eval`: how close an optimized model (a plan, or an engine at a lower precision) stays to
// the FP32 reference on held-out real data (see quant/eval_data.h for the sets), by the model's
// task:
//   every model     cosine of the last hidden states, token by token, on SST-2 dev sentences
//   embedding       pooled-embedding cosine; top-k retrieval overlap with the reference ranking
//                   (SQuAD dev questions against their paragraphs) and recall of the gold
//                   paragraph; an SST-2 logistic-regression probe
//   classification  argmax agreement with the reference on SST-2 dev; accuracy against the
//                   SST-2 labels when the head has 2 labels
//   token labels    per-token argmax agreement on SST-2 dev sentences
//   QA              SQuAD v1.1 dev exact match and F1 (official normalization), answer agreement
// No STS (human similarity) set is available, so there is no Spearman correlation.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kiln/engine.h"
#include "kiln/status.h"
#include "quant/eval_data.h"
#include "quant/eval_metrics.h"

namespace kiln::quant {

/// What to evaluate on.
struct EvalOptions {
  std::string data_dir = kEvalDataDir;
  int64_t dev_sentences = 0;           ///< SST-2 dev sentences (0: all 872)
  int64_t retrieval_paragraphs = 300;  ///< corpus size = query count
  int top_k = 10;
  int64_t probe_train = 2000;  ///< SST-2 train rows for the probe
  int64_t qa_examples = 1000;  ///< SQuAD dev questions (0: all 10,570)
  int max_answer_tokens = 30;
  int64_t qa_max_length = 384;  ///< window length for QA (stride 128, as HF's run_qa)
  int64_t batch_texts = 32;     ///< sequences per engine run
  /// Called with a line of progress now and then; may be empty.
  std::function<void(const std::string&)> progress;
};

/// Embedding-model metrics.
struct EmbeddingEval {
  CosineStats cosine;  ///< pooled embeddings of every text evaluated
  int64_t queries = 0, corpus = 0;
  int top_k = 0;
  double top_k_overlap = 0;                               ///< candidate's top k vs the reference's
  double reference_recall_1 = 0, candidate_recall_1 = 0;  ///< gold paragraph ranked first
  double reference_recall_k = 0, candidate_recall_k = 0;  ///< gold paragraph in the top k
  int64_t probe_train = 0, probe_test = 0;
  double probe_reference = 0;  ///< reference probe on reference embeddings
  double probe_same = 0;       ///< the same (reference-trained) probe on candidate embeddings
  double probe_retrained = 0;  ///< a probe trained on candidate embeddings, on them
};

/// Sequence-classification metrics on SST-2 dev.
struct ClassificationEval {
  int64_t examples = 0;
  double agreement = 0;   ///< same argmax (or same sign for one-logit heads) as the reference
  bool labelled = false;  ///< accuracies are meaningful (a 2-label head)
  double reference_accuracy = 0, candidate_accuracy = 0;
  double max_logit_diff = 0;
};

/// Token-classification metrics on SST-2 dev sentences.
struct TokenEval {
  int64_t tokens = 0;
  double agreement = 0;
};

/// Question answering on SQuAD v1.1 dev.
struct QaEval {
  int64_t examples = 0;
  double reference_em = 0, reference_f1 = 0;
  double candidate_em = 0, candidate_f1 = 0;
  double agreement = 0;  ///< same answer text as the reference
};

/// The report of one evaluation.
struct EvalReport {
  std::string task;
  CosineStats hidden_cosine;  ///< last hidden states, per token
  std::optional<EmbeddingEval> embedding;
  std::optional<ClassificationEval> classification;
  std::optional<TokenEval> tokens;
  std::optional<QaEval> qa;
  std::vector<std::string> notes;
  double seconds = 0;
};

/// Evaluates `candidate` against `reference` (same architecture and task, both with a
/// tokenizer). Reads the data under options.data_dir.
Result<EvalReport> evaluate(const Engine& reference, const Engine& candidate,
                            const EvalOptions& options);

/// The report as an aligned text table.
std::string format_report(const EvalReport& report);
/// The report as one JSON object.
std::string report_json(const EvalReport& report);

}  // namespace kiln::quant
