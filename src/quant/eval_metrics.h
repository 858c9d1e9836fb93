// The metrics of `kiln eval` as pure functions: agreement of a candidate model's outputs with the
// FP32 reference (cosine, top-k retrieval overlap) and task metrics on labelled data (a
// logistic-regression probe on embeddings, SQuAD exact match and F1).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/status.h"

namespace kiln::quant {

/// Distribution of per-row cosine similarities between two [rows, dim] matrices.
struct CosineStats {
  double mean = 0;
  double p1 = 0;   ///< 1st percentile ("worst 1%": 99% of the rows are at least this close)
  double min = 0;  ///< the worst row
  int64_t count = 0;
};

/// Cosine of each row of `a` with the same row of `b`; a zero row against a zero row counts
/// as 1, a zero row against a nonzero one as 0.
std::vector<double> row_cosines(const float* a, const float* b, int64_t rows, int64_t dim);
/// mean, 1st percentile (numpy's linear interpolation) and min of `cosines`.
CosineStats cosine_stats(std::vector<double> cosines);

/// Indices of the k corpus rows most cosine-similar to each query row (best first; ties by the
/// lower index): [queries][min(k, corpus)].
std::vector<std::vector<int32_t>> top_k_by_cosine(const float* queries, int64_t num_queries,
                                                  const float* corpus, int64_t num_corpus,
                                                  int64_t dim, int k);
/// Mean over queries of |a_q intersect b_q| / |a_q|: how much of ranking `a`'s top k `b` keeps.
double top_k_overlap(const std::vector<std::vector<int32_t>>& a,
                     const std::vector<std::vector<int32_t>>& b);
/// Fraction of queries whose gold corpus row is among their first k results.
double recall_at_k(const std::vector<std::vector<int32_t>>& ranking,
                   const std::vector<int32_t>& gold, int k);

/// A binary logistic-regression classifier on standardized features.
struct LogisticProbe {
  std::vector<double> mean, inv_std;  ///< feature standardization from the training set
  std::vector<double> weight;         ///< [dim]
  double bias = 0;
  int iterations = 0;  ///< Newton steps taken
};

/// Options of train_logistic_probe().
struct ProbeOptions {
  double l2 = 1.0;  ///< penalty l2/2 ||w||^2 on the summed log-loss (scikit-learn's C = 1/l2)
  int max_iterations = 50;
};

/// Fits labels y (0/1) from features x [n, dim] by Newton's method on the L2-regularized
/// log-loss (the optimum is unique, so the probe is deterministic). InvalidArgument for empty
/// input or labels other than 0/1.
Result<LogisticProbe> train_logistic_probe(const float* x, const std::vector<int>& y, int64_t dim,
                                           const ProbeOptions& options = {});
/// Predicted labels (0/1) for x [n, dim].
std::vector<int> probe_predict(const LogisticProbe& probe, const float* x, int64_t n);
/// Fraction of predictions equal to labels.
double accuracy(const std::vector<int>& predicted, const std::vector<int>& labels);

/// The official SQuAD v1.1 normalization: lower case, drop ASCII punctuation, drop the words
/// "a", "an", "the", collapse (Unicode) whitespace.
std::string squad_normalize(std::string_view text);
/// Exact match of normalized texts, maximized over the gold answers.
double squad_exact_match(std::string_view prediction, const std::vector<std::string>& golds);
/// Token-level F1 of normalized texts, maximized over the gold answers.
double squad_f1(std::string_view prediction, const std::vector<std::string>& golds);

/// The best answer span (first, last token, inclusive) by start + end logit among tokens whose
/// sequence id is `context_id`, with first <= last < first + max_tokens; {-1, -1} when none.
/// `logits` holds (start, end) per token.
std::pair<int64_t, int64_t> best_answer_span(const float* logits, int64_t tokens,
                                             const std::vector<int32_t>& sequence_ids,
                                             int context_id, int max_tokens, double* score);

}  // namespace kiln::quant
