#include "quant/eval_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace kiln::quant {
namespace {

TEST(EvalMetrics, CosineStats) {
  const std::vector<float> a = {1, 0, /**/ 0, 2, /**/ 1, 1, /**/ 0, 0};
  const std::vector<float> b = {2, 0, /**/ 1, 0, /**/ -1, -1, /**/ 0, 0};
  const auto c = row_cosines(a.data(), b.data(), 4, 2);
  EXPECT_NEAR(c[0], 1.0, 1e-12);
  EXPECT_NEAR(c[1], 0.0, 1e-12);
  EXPECT_NEAR(c[2], -1.0, 1e-12);
  EXPECT_EQ(c[3], 1.0);  // two zero rows agree
  std::vector<double> v(201);
  for (int i = 0; i <= 200; ++i) v[i] = i / 200.0;  // 0, 0.005, ..., 1
  const auto s = cosine_stats(v);
  EXPECT_NEAR(s.mean, 0.5, 1e-12);
  EXPECT_NEAR(s.p1, 0.01, 1e-12);  // numpy.percentile(v, 1)
  EXPECT_EQ(s.min, 0.0);
  EXPECT_EQ(s.count, 201);
}

TEST(EvalMetrics, TopKOverlapAndRecall) {
  // Corpus rows along the axes; the query leans to row 2, then 0, then 1.
  const std::vector<float> corpus = {1, 0, 0, /**/ 0, 1, 0, /**/ 0, 0, 1};
  const std::vector<float> q = {0.5f, 0.1f, 0.9f, /**/ 0, 3, 0};
  const auto top = top_k_by_cosine(q.data(), 2, corpus.data(), 3, 3, 2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0], (std::vector<int32_t>{2, 0}));
  EXPECT_EQ(top[1][0], 1);
  EXPECT_EQ(top[1][1], 0);  // tie between rows 0 and 2: the lower index
  EXPECT_DOUBLE_EQ(top_k_overlap(top, top), 1.0);
  EXPECT_DOUBLE_EQ(top_k_overlap(top, {{2, 1}, {2, 0}}), (0.5 + 0.5) / 2);
  EXPECT_DOUBLE_EQ(recall_at_k(top, {0, 1}, 1), 0.5);
  EXPECT_DOUBLE_EQ(recall_at_k(top, {0, 1}, 2), 1.0);
}

TEST(EvalMetrics, LogisticProbeReachesTheRegularizedOptimum) {
  const int64_t n = 400, dim = 5;
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> x(n * dim);
  std::vector<int> y(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < dim; ++j) x[i * dim + j] = g(rng) * (j + 1) + 3;
    // Noisy labels from a linear rule on the first two features.
    y[i] = (x[i * dim] - 3) - 0.5 * (x[i * dim + 1] - 3) + 0.7 * g(rng) > 0 ? 1 : 0;
  }
  auto p = train_logistic_probe(x.data(), y, dim, {.l2 = 2.0});
  ASSERT_TRUE(p.ok());
  EXPECT_LT(p->iterations, 20);
  // Optimality: sum_i (p_i - y_i) z_i + l2 * w = 0 (the bias unpenalized).
  std::vector<double> grad(dim + 1, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double s = p->bias;
    std::vector<double> z(dim);
    for (int64_t j = 0; j < dim; ++j) {
      z[j] = (x[i * dim + j] - p->mean[j]) * p->inv_std[j];
      s += z[j] * p->weight[j];
    }
    const double r = 1 / (1 + std::exp(-s)) - y[i];
    for (int64_t j = 0; j < dim; ++j) grad[j] += r * z[j];
    grad[dim] += r;
  }
  for (int64_t j = 0; j < dim; ++j) EXPECT_NEAR(grad[j] + 2.0 * p->weight[j], 0, 1e-7) << j;
  EXPECT_NEAR(grad[dim], 0, 1e-6);
  EXPECT_GT(p->weight[0], 0);
  EXPECT_LT(p->weight[1], 0);
  EXPECT_GT(accuracy(probe_predict(*p, x.data(), n), y), 0.8);
  EXPECT_FALSE(train_logistic_probe(x.data(), std::vector<int>(n, 2), dim).ok());
}

TEST(EvalMetrics, SquadNormalizationMatchesTheOfficialScript) {
  // Expected values from evaluate-v1.1.py's normalize_answer.
  EXPECT_EQ(squad_normalize("The Cat!"), "cat");
  EXPECT_EQ(squad_normalize("  an   apple, a day "), "apple day");
  EXPECT_EQ(squad_normalize("Theory of the Anthem"), "theory of anthem");
  EXPECT_EQ(squad_normalize("Denver Broncos' 24\u201310 win"), "denver broncos 24\u201310 win");
  EXPECT_EQ(squad_normalize("the\u2019s"), "\u2019s");  // \b also breaks at non-ASCII marks
  EXPECT_EQ(squad_normalize("\u00c9COLE\u00a0normale"), "\u00e9cole normale");  // NBSP splits
  EXPECT_EQ(squad_normalize("a-an-the"), "aanthe");  // punctuation goes first
  // \w is letters, numbers and "_" (itself punctuation): not combining marks.
  EXPECT_EQ(squad_normalize("a_the an2 the\u00e9 the\u0301x"), "athe an2 the\u00e9 \u0301x");
  EXPECT_EQ(squad_normalize("..."), "");
}

TEST(EvalMetrics, SquadF1AndExactMatch) {
  EXPECT_DOUBLE_EQ(squad_f1("the cat sat", {"cat sat on"}), 0.8);
  EXPECT_DOUBLE_EQ(squad_f1("cat cat", {"cat"}), 2 * 0.5 * 1 / 1.5);  // counts clip
  EXPECT_DOUBLE_EQ(squad_f1("dog", {"cat", "the dog"}), 1.0);         // best over answers
  EXPECT_DOUBLE_EQ(squad_f1("", {"cat"}), 0.0);
  EXPECT_DOUBLE_EQ(squad_exact_match("The Broncos.", {"Denver", "broncos"}), 1.0);
  EXPECT_DOUBLE_EQ(squad_exact_match("Broncos win", {"broncos"}), 0.0);
}

TEST(EvalMetrics, BestAnswerSpan) {
  // Tokens: [CLS] q q [SEP] c c c c [SEP]; sequence ids -1 0 0 -1 1 1 1 1 -1.
  const std::vector<int32_t> seq = {-1, 0, 0, -1, 1, 1, 1, 1, -1};
  std::vector<float> logits(2 * seq.size(), 0.0f);
  logits[2 * 0] = 9;        // start on [CLS]: outside the context
  logits[2 * 5] = 3;        // start at token 5
  logits[2 * 4 + 1] = 4.5;  // end at token 4: only with a start <= 4
  logits[2 * 7 + 1] = 2;    // end at token 7
  double score;
  auto span = best_answer_span(logits.data(), 9, seq, 1, 30, &score);
  EXPECT_EQ(span, (std::pair<int64_t, int64_t>{5, 7}));
  EXPECT_DOUBLE_EQ(score, 5.0);
  span = best_answer_span(logits.data(), 9, seq, 1, 2, &score);  // at most 2 tokens
  EXPECT_EQ(span, (std::pair<int64_t, int64_t>{4, 4}));
  EXPECT_DOUBLE_EQ(score, 4.5);
  EXPECT_EQ(best_answer_span(logits.data(), 3, seq, 1, 30, &score).first, -1);
}

}  // namespace
}  // namespace kiln::quant
