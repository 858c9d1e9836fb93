// CPU kernels against straightforward double-precision references, on both ISA paths.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/attention.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/embedding.h"
#include "backend/cpu/layer_norm.h"
#include "core/half.h"
#include "test_util.h"

namespace kiln::backend::cpu {
namespace {

using kiln::testing::max_rel_error;
using kiln::testing::random_vector;

std::vector<double> layer_norm_ref(const std::vector<float>& x, const std::vector<float>& g,
                                   const std::vector<float>& b, int64_t rows, int64_t cols,
                                   double eps) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int64_t c = 0; c < cols; ++c) mean += x[r * cols + c];
    mean /= cols;
    for (int64_t c = 0; c < cols; ++c) var += std::pow(x[r * cols + c] - mean, 2);
    var /= cols;
    for (int64_t c = 0; c < cols; ++c) {
      y[r * cols + c] = (x[r * cols + c] - mean) / std::sqrt(var + eps) * g[c] + b[c];
    }
  }
  return y;
}

class LayerNormTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(LayerNormTest, MatchesReferenceOnBothPaths) {
  const int64_t rows = 7, cols = GetParam();
  auto x = random_vector(rows * cols, 1, 3.0f);
  for (auto& v : x) v += 5.0f;  // a large mean tests the variance's stability
  const auto g = random_vector(cols, 2);
  const auto b = random_vector(cols, 3);
  const auto ref = layer_norm_ref(x, g, b, rows, cols, 1e-12);
  auto fast = x;
  std::vector<uint16_t> fast_bf16(x.size());
  layer_norm(fast.data(), g.data(), b.data(), rows, cols, 1e-12f, fast_bf16.data());
  EXPECT_LT(max_rel_error(fast, ref), 2e-6);
  for (size_t i = 0; i < fast.size(); ++i) {
    ASSERT_NEAR(core::bf16_to_float(fast_bf16[i]), fast[i], std::fabs(fast[i]) / 128 + 1e-6);
  }
  auto scalar = x;
  for (int64_t r = 0; r < rows; ++r) {
    detail::layer_norm_row_scalar(scalar.data() + r * cols, g.data(), b.data(), cols, 1e-12f,
                                  nullptr);
  }
  EXPECT_LT(max_rel_error(scalar, ref), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Widths, LayerNormTest, ::testing::Values(1, 15, 64, 100, 384, 768));

// Reference attention over a packed batch, in double.
std::vector<double> attention_ref(const std::vector<float>& qkv, const std::vector<int32_t>& cu,
                                  int64_t heads, int64_t dim) {
  const int64_t hidden = heads * dim;
  const int64_t tokens = cu.back();
  std::vector<double> out(tokens * hidden);
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = cu[s]; i < cu[s + 1]; ++i) {
        std::vector<double> p;
        double mx = -1e300;
        for (int64_t j = cu[s]; j < cu[s + 1]; ++j) {
          double d = 0;
          for (int64_t c = 0; c < dim; ++c) {
            d += double(qkv[i * 3 * hidden + h * dim + c]) *
                 qkv[j * 3 * hidden + hidden + h * dim + c];
          }
          p.push_back(d / std::sqrt(double(dim)));
          mx = std::max(mx, p.back());
        }
        double sum = 0;
        for (auto& v : p) sum += v = std::exp(v - mx);
        for (int64_t c = 0; c < dim; ++c) {
          double acc = 0;
          for (int64_t j = cu[s]; j < cu[s + 1]; ++j) {
            acc += p[j - cu[s]] * qkv[j * 3 * hidden + 2 * hidden + h * dim + c];
          }
          out[i * hidden + h * dim + c] = acc / sum;
        }
      }
    }
  }
  return out;
}

class AttentionTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(AttentionTest, RaggedBatchMatchesReference) {
  const int64_t heads = 3, dim = GetParam();
  // Lengths 1, 16, 63 and 130 exercise the row blocks, the key tails and a single token.
  const std::vector<int32_t> cu = {0, 1, 17, 80, 210};
  const int64_t tokens = cu.back(), hidden = heads * dim;
  const auto qkv = random_vector(tokens * 3 * hidden, 7, 1.5f);
  const auto ref = attention_ref(qkv, cu, heads, dim);
  const AttentionShape shape{heads, dim, 1.0f / std::sqrt(float(dim))};

  std::vector<float> out(tokens * hidden, NAN);
  attention(qkv.data(), cu.data(), 4, shape, out.data(), nullptr);
  EXPECT_LT(max_rel_error(out, ref), 2e-6);

  // The portable kernel, called directly.
  std::vector<float> scalar(tokens * hidden, NAN);
  std::vector<float> scratch(detail::attention_scratch_floats(130, dim));
  for (int s = 0; s < 4; ++s) {
    for (int64_t h = 0; h < heads; ++h) {
      const float* q = qkv.data() + cu[s] * 3 * hidden + h * dim;
      detail::attention_head_scalar(q, q + hidden, q + 2 * hidden, cu[s + 1] - cu[s], 3 * hidden,
                                    shape, scalar.data() + cu[s] * hidden + h * dim, nullptr,
                                    hidden, scratch.data());
    }
  }
  EXPECT_LT(max_rel_error(scalar, ref), 2e-6);

  if (cpu_features().avx512_bf16) {
    std::vector<uint16_t> bf(tokens * hidden);
    attention(qkv.data(), cu.data(), 4, shape, nullptr, bf.data());
    std::vector<float> up(bf.size());
    for (size_t i = 0; i < bf.size(); ++i) up[i] = core::bf16_to_float(bf[i]);
    EXPECT_LT(max_rel_error(up, ref), 1e-2);
  }
}

TEST_P(AttentionTest, Bf16InputsMatchReference) {
  const int64_t heads = 3, dim = GetParam();
  const std::vector<int32_t> cu = {0, 1, 17, 80, 210};
  const int64_t tokens = cu.back(), hidden = heads * dim;
  const auto qkv = random_vector(tokens * 3 * hidden, 8, 1.5f);
  // The reference sees the same bfloat16-rounded inputs.
  std::vector<uint16_t> qkv_bf16(qkv.size());
  std::vector<float> rounded(qkv.size());
  for (size_t i = 0; i < qkv.size(); ++i) {
    qkv_bf16[i] = core::float_to_bf16(qkv[i]);
    rounded[i] = core::bf16_to_float(qkv_bf16[i]);
  }
  const auto ref = attention_ref(rounded, cu, heads, dim);
  const AttentionShape shape{heads, dim, 1.0f / std::sqrt(float(dim))};
  std::vector<uint16_t> out(tokens * hidden, 0xffff);  // NaN poison
  attention_bf16(qkv_bf16.data(), cu.data(), 4, shape, out.data());
  std::vector<float> up(out.size());
  for (size_t i = 0; i < out.size(); ++i) up[i] = core::bf16_to_float(out[i]);
  // Probabilities and the output are rounded to bfloat16 (8 significant bits).
  EXPECT_LT(max_rel_error(up, ref), 1.5e-2);
}

INSTANTIATE_TEST_SUITE_P(HeadDims, AttentionTest, ::testing::Values(16, 24, 32, 64, 128));

TEST(EmbeddingTest, SumsTablesWithOffsetsAndNormalises) {
  const int64_t h = 20, vocab = 11, positions = 12;
  const auto word = random_vector(vocab * h, 11);
  const auto pos = random_vector(positions * h, 12);
  const auto type = random_vector(2 * h, 13);
  const auto g = random_vector(h, 14);
  const auto b = random_vector(h, 15);
  // Offset 2 is RoBERTa's (pad id 1): the pad token inside sequence 0 takes position 1 and
  // does not advance the count.
  const std::vector<int32_t> ids = {3, 1, 5, 10, 0};
  const std::vector<int32_t> types = {0, 1, 1, 0, 1};
  const std::vector<int32_t> cu = {0, 3, 5};
  const EmbeddingTables t{word.data(), pos.data(), type.data(), g.data(), b.data(), h, 2, 1e-5f};
  std::vector<float> out(5 * h);
  embed_layer_norm(t, ids.data(), types.data(), cu.data(), 2, out.data(), nullptr);
  std::vector<float> sum(5 * h);
  for (int64_t tok = 0; tok < 5; ++tok) {
    const int64_t kPositions[5] = {2, 1, 3, 2, 3};  // restarts per sequence; pad -> 1
    const int64_t p = kPositions[tok];
    for (int64_t c = 0; c < h; ++c) {
      sum[tok * h + c] = word[ids[tok] * h + c] + type[types[tok] * h + c] + pos[p * h + c];
    }
  }
  EXPECT_LT(max_rel_error(out, layer_norm_ref(sum, g, b, 5, h, 1e-5)), 2e-6);
}

}  // namespace
}  // namespace kiln::backend::cpu
