// oneDNN linear layers (packing, fused epilogues, residual accumulation) against a reference.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/layer_norm.h"
#include "backend/cpu/linear.h"
#include "core/half.h"
#include "test_util.h"

namespace kiln::backend::cpu {
namespace {

using kiln::testing::max_rel_error;
using kiln::testing::random_vector;

double apply(Epilogue e, double v) {
  switch (e) {
    case Epilogue::kGeluErf:
      return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    case Epilogue::kGeluTanh:
      return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    case Epilogue::kTanh:
      return std::tanh(v);
    case Epilogue::kRelu:
      return std::max(v, 0.0);
    case Epilogue::kNone:
      return v;
  }
  return v;
}

struct Case {
  Precision precision;
  Epilogue epilogue;
  bool accumulate;
};

class LinearTest : public ::testing::TestWithParam<Case> {};

TEST_P(LinearTest, MatchesReferenceForRaggedRowCounts) {
  const Case c = GetParam();
  if (c.precision == Precision::kBF16 && !cpu_features().avx512_bf16) GTEST_SKIP() << "no BF16";
  const int64_t n = 96, k = 80;
  const auto w = random_vector(n * k, 21, 0.2f);
  const auto bias = random_vector(n, 22);
  auto lin = Linear::create(w.data(), bias.data(),
                            {.out = n,
                             .in = k,
                             .precision = c.precision,
                             .epilogue = c.epilogue,
                             .accumulate = c.accumulate});
  ASSERT_TRUE(lin.ok()) << lin.status().to_string();
  for (int64_t rows : {1, 5, 37, 130}) {
    const auto x = random_vector(rows * k, 23 + rows);
    const auto y0 = random_vector(rows * n, 99);
    std::vector<double> ref(rows * n);
    std::vector<uint16_t> xb(x.size());
    for (size_t i = 0; i < x.size(); ++i) xb[i] = core::float_to_bf16(x[i]);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t o = 0; o < n; ++o) {
        double s = bias[o];
        for (int64_t i = 0; i < k; ++i) s += double(x[r * k + i]) * w[o * k + i];
        ref[r * n + o] = apply(c.epilogue, s) + (c.accumulate ? y0[r * n + o] : 0.0);
      }
    }
    std::vector<float> y = c.accumulate ? y0 : std::vector<float>(rows * n, NAN);
    const void* in =
        c.precision == Precision::kBF16 ? static_cast<const void*>(xb.data()) : x.data();
    ASSERT_TRUE((*lin)->run(in, rows, y.data()).ok());
    const double tol = c.precision == Precision::kBF16 ? 2e-2 : 1e-5;
    EXPECT_LT(max_rel_error(y, ref), tol) << "rows=" << rows;
  }
}

INSTANTIATE_TEST_SUITE_P(Epilogues, LinearTest,
                         ::testing::Values(Case{Precision::kF32, Epilogue::kNone, false},
                                           Case{Precision::kF32, Epilogue::kGeluErf, false},
                                           Case{Precision::kF32, Epilogue::kGeluTanh, false},
                                           Case{Precision::kF32, Epilogue::kTanh, false},
                                           Case{Precision::kF32, Epilogue::kNone, true},
                                           Case{Precision::kBF16, Epilogue::kGeluErf, false},
                                           Case{Precision::kBF16, Epilogue::kNone, true}));

}  // namespace
}  // namespace kiln::backend::cpu
