// The vector index: exact search is exact, HNSW finds what exact search finds (recall@10 on
// clustered random data), additions in several chunks grow the graph.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "server/vector_index.h"

namespace kiln::server {
namespace {

// Normalized rows around a few centres, like sentence embeddings of related texts.
std::vector<float> clustered(size_t n, size_t dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> centres(32 * dim);
  for (float& c : centres) c = g(rng);
  std::vector<float> rows(n * dim);
  for (size_t r = 0; r < n; ++r) {
    const size_t c = rng() % 32;
    for (size_t j = 0; j < dim; ++j) rows[r * dim + j] = centres[c * dim + j] + 0.7f * g(rng);
  }
  l2_normalize_rows(rows.data(), n, dim);
  return rows;
}

TEST(VectorIndexTest, ExactSearchRanksByInnerProduct) {
  VectorIndex index(2, {.exact = true});
  const std::vector<float> rows = {1, 0, 0, 1, 0.6f, 0.8f, -1, 0};
  ASSERT_TRUE(index.add(rows.data(), 4).ok());
  std::vector<int64_t> ids;
  std::vector<float> scores;
  const float q[2] = {0.8f, 0.6f};
  index.search(q, 3, &ids, &scores);
  EXPECT_EQ(ids, (std::vector<int64_t>{2, 0, 1}));
  EXPECT_NEAR(scores[0], 0.96f, 1e-6);
  index.search(q, 10, &ids, &scores);  // k beyond the collection: all of it
  EXPECT_EQ(ids.size(), 4u);
  VectorIndex empty(2, {});
  empty.search(q, 5, &ids, &scores);
  EXPECT_TRUE(ids.empty());
}

TEST(VectorIndexTest, HnswRecallAgainstExactSearch) {
  constexpr size_t kDim = 64, kRows = 6000, kQueries = 200, kK = 10;
  const auto rows = clustered(kRows, kDim, 1);
  const auto queries = clustered(kQueries, kDim, 2);
  VectorIndex exact(kDim, {.exact = true}), hnsw(kDim, {});
  ASSERT_TRUE(exact.add(rows.data(), kRows).ok());
  // Added in uneven chunks: the graph is resized several times.
  for (size_t lo = 0; lo < kRows;) {
    const size_t n = std::min(kRows - lo, lo == 0 ? size_t{100} : size_t{1700});
    ASSERT_TRUE(hnsw.add(rows.data() + lo * kDim, n).ok());
    lo += n;
  }
  EXPECT_EQ(hnsw.size(), kRows);
  size_t found = 0;
  std::vector<int64_t> a, b;
  std::vector<float> sa, sb;
  for (size_t q = 0; q < kQueries; ++q) {
    exact.search(queries.data() + q * kDim, kK, &a, &sa);
    hnsw.search(queries.data() + q * kDim, kK, &b, &sb);
    ASSERT_EQ(b.size(), kK);
    EXPECT_GE(sb.front(), sb.back());  // best first
    const std::set<int64_t> truth(a.begin(), a.end());
    for (int64_t id : b) found += truth.count(id);
  }
  const double recall = static_cast<double>(found) / (kQueries * kK);
  EXPECT_GE(recall, 0.99) << "recall@10 " << recall;
}

}  // namespace
}  // namespace kiln::server
