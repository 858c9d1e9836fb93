// INT8 linear layers: the quantization kernel against its portable reference (bit for bit), the
// layer against a double-precision evaluation of the same quantized math (tight) and against
// FP32 (int8 tolerance), for per-token and static scaling, SmoothQuant, the GELU clip, every
// epilogue and ragged row counts.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/layer_norm.h"
#include "backend/cpu/linear.h"
#include "backend/cpu/linear_int8.h"
#include "backend/cpu/quantize.h"
#include "core/half.h"
#include "test_util.h"

namespace kiln::backend::cpu {
namespace {

using kiln::testing::max_rel_error;
using kiln::testing::random_vector;

bool have_int8() { return active_isa() == Isa::kAvx512 && cpu_features().avx512_vnni; }

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

// The layer's math in double: x quantized by the portable kernel (the AVX-512 one is tested
// equal to it below), W quantized per output channel, exact integer dot products.
std::vector<double> quantized_reference(const std::vector<float>& x, const std::vector<float>& w,
                                        const std::vector<float>& bias, int64_t rows,
                                        const LinearSpec& s, const std::vector<float>& y0) {
  const int64_t n = s.out, k = s.in;
  std::vector<float> inv_smooth;
  for (float f : s.smooth) inv_smooth.push_back(1.0f / f);
  const bool dynamic = s.scaling == quant::ActivationScaling::kDynamicPerToken;
  const QuantizeParams p{inv_smooth.empty() ? nullptr : inv_smooth.data(), s.input_clip,
                         dynamic ? 0.0f : s.input_scale};
  std::vector<uint8_t> qx(static_cast<size_t>(k));
  std::vector<double> ref(static_cast<size_t>(rows * n));
  std::vector<int> qw(static_cast<size_t>(n * k));
  std::vector<double> sw(static_cast<size_t>(n));
  for (int64_t o = 0; o < n; ++o) {
    float amax = 0;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(w[o * k + i]));
    sw[o] = amax / 127.0f;
    for (int64_t i = 0; i < k; ++i) {
      qw[o * k + i] = static_cast<int>(std::nearbyint(w[o * k + i] * (127.0f / amax)));
    }
  }
  for (int64_t r = 0; r < rows; ++r) {
    float sx = s.input_scale;
    detail::quantize_row_scalar(x.data() + r * k, false, k, p, qx.data(), &sx);
    for (int64_t o = 0; o < n; ++o) {
      int64_t acc = 0;
      for (int64_t i = 0; i < k; ++i) acc += (qx[i] - kQuantZeroPoint) * qw[o * k + i];
      const double v = apply(s.epilogue, acc * double(sx) * sw[o] + bias[o]);
      ref[r * n + o] = v + (s.accumulate ? y0[r * n + o] : 0.0);
    }
  }
  return ref;
}

// x W^T + b in double from the float operands (what the layer approximates).
std::vector<double> fp32_reference(const std::vector<float>& x, const std::vector<float>& w,
                                   const std::vector<float>& bias, int64_t rows, int64_t n,
                                   int64_t k, Epilogue e) {
  std::vector<double> ref(static_cast<size_t>(rows * n));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < n; ++o) {
      double s = bias[o];
      for (int64_t i = 0; i < k; ++i) s += double(x[r * k + i]) * w[o * k + i];
      ref[r * n + o] = apply(e, s);
    }
  }
  return ref;
}

TEST(QuantizeTest, Avx512MatchesScalarBitForBit) {
  if (active_isa() != Isa::kAvx512) GTEST_SKIP() << "no AVX-512";
  const auto inv_smooth = random_vector(1000, 7, 0.5f);
  for (int64_t cols : {1, 15, 16, 17, 80, 384, 1000}) {
    auto x = random_vector(static_cast<size_t>(cols), 3 + cols, 4.0f);
    x[0] = 9.0f;  // beyond the clip
    std::vector<uint16_t> xb(x.size());
    for (size_t i = 0; i < x.size(); ++i) xb[i] = core::float_to_bf16(x[i]);
    for (const QuantizeParams& p :
         {QuantizeParams{}, QuantizeParams{nullptr, 2.5f, 0.0f},
          QuantizeParams{inv_smooth.data(), 0.0f, 0.0f},
          QuantizeParams{inv_smooth.data(), 3.0f, 0.02f}, QuantizeParams{nullptr, 0.0f, 0.01f}}) {
      for (bool bf16 : {false, true}) {
        const void* in = bf16 ? static_cast<const void*>(xb.data()) : x.data();
        std::vector<uint8_t> q1(x.size()), q2(x.size());
        float s1 = -1, s2 = -1;  // static scaling leaves them
        detail::quantize_row_scalar(in, bf16, cols, p, q1.data(), &s1);
        detail::quantize_row_avx512(in, bf16, cols, p, q2.data(), &s2);
        ASSERT_EQ(q1, q2) << "cols=" << cols << " bf16=" << bf16 << " clip=" << p.clip;
        ASSERT_EQ(s1, s2);
      }
    }
  }
}

TEST(QuantizeTest, PerTokenUsesTheFullRangeAndStaticSaturates) {
  const std::vector<float> x = {0.5f, -2.0f, 1.0f, 0.0f};
  std::vector<uint8_t> q(4);
  float scale = 0;
  quantize_rows(x.data(), false, 1, 4, {}, q.data(), &scale);
  EXPECT_FLOAT_EQ(scale, 2.0f / 127);
  EXPECT_EQ(q, (std::vector<uint8_t>{128 + 32, 128 - 127, 128 + 64, 128}));  // 31.75 -> 32
  quantize_rows(x.data(), false, 1, 4, {.static_scale = 0.01f}, q.data(), nullptr);
  EXPECT_EQ(q, (std::vector<uint8_t>{128 + 50, 128 - 127, 128 + 100, 128}));
  const std::vector<float> zero(4, 0.0f);
  quantize_rows(zero.data(), false, 1, 4, {}, q.data(), &scale);
  EXPECT_EQ(scale, 0.0f);
  EXPECT_EQ(q, std::vector<uint8_t>(4, 128));
}

using S = quant::ActivationScaling;

TEST(DequantizeTest, EpiloguesMatchDoublePrecision) {
  if (active_isa() != Isa::kAvx512) GTEST_SKIP() << "no AVX-512";
  std::vector<float> acc;  // -12 ... 12 densely, plus far tails
  for (int i = -24000; i <= 24000; ++i) acc.push_back(static_cast<float>(i) * 5e-4f);
  for (float v : {-1e30f, -200.0f, -30.0f, 30.0f, 200.0f, 1e30f}) acc.push_back(v);
  const auto bias = random_vector(acc.size(), 3, 0.01f);
  for (Epilogue e : {Epilogue::kNone, Epilogue::kGeluErf, Epilogue::kGeluTanh, Epilogue::kTanh,
                     Epilogue::kRelu}) {
    std::vector<float> y(acc.size());
    const DequantizeParams p{.bias = bias.data(), .epilogue = e};
    detail::dequantize_row_avx512(acc.data(), static_cast<int64_t>(acc.size()), 0.5f, p, y.data());
    for (size_t i = 0; i < acc.size(); ++i) {
      const double ref = apply(e, 0.5 * acc[i] + bias[i]);
      ASSERT_NEAR(y[i], ref, 1e-6 * std::max(1.0, std::fabs(ref)))
          << "epilogue " << static_cast<int>(e) << " at " << acc[i];
    }
  }
}

struct Case {
  Epilogue epilogue;
  bool accumulate;
  quant::ActivationScaling scaling;
  bool smooth;
  float clip;
};

class Int8LinearTest : public ::testing::TestWithParam<Case> {};

TEST_P(Int8LinearTest, MatchesQuantizedReferenceAndFp32ForRaggedRows) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  const Case c = GetParam();
  for (auto [n, k] : {std::pair<int64_t, int64_t>{96, 80}, {13, 37}}) {
    auto w = random_vector(static_cast<size_t>(n * k), 21, 0.2f);
    const auto bias = random_vector(static_cast<size_t>(n), 22);
    LinearSpec spec{.out = n,
                    .in = k,
                    .precision = Precision::kInt8,
                    .epilogue = c.epilogue,
                    .accumulate = c.accumulate,
                    .scaling = c.scaling,
                    .input_scale = (c.smooth ? 5.0f : 40.0f) / 127,
                    .input_clip = c.clip};
    // Activation outliers in two channels, migrated into the weights when smoothing.
    auto w_layer = w;
    if (c.smooth) {
      spec.smooth.assign(static_cast<size_t>(k), 1.0f);
      spec.smooth[1] = 8.0f;
      spec.smooth[k - 2] = 5.0f;
      for (int64_t o = 0; o < n; ++o) {
        for (int64_t i = 0; i < k; ++i) w_layer[o * k + i] *= spec.smooth[i];
      }
    }
    auto lin = Linear::create(w_layer.data(), bias.data(), spec);
    ASSERT_TRUE(lin.ok()) << lin.status().to_string();
    EXPECT_NE((*lin)->kernel_name().find("brg:avx512_core_vnni"), std::string::npos)
        << (*lin)->kernel_name();
    for (int64_t rows : {1, 5, 37, 130}) {
      auto x = random_vector(static_cast<size_t>(rows * k), 23 + rows);
      for (int64_t r = 0; r < rows; ++r) {
        x[r * k + 1] *= 8.0f;
        x[r * k + k - 2] *= 5.0f;
      }
      const auto y0 = random_vector(static_cast<size_t>(rows * n), 99);
      std::vector<float> y = c.accumulate ? y0 : std::vector<float>(rows * n, NAN);
      ASSERT_TRUE((*lin)->run(x.data(), rows, y.data()).ok());
      const auto ref = quantized_reference(x, w_layer, bias, rows, spec, y0);
      EXPECT_LT(max_rel_error(y, ref), 2e-6) << "rows=" << rows << " n=" << n;
      // Against FP32: unclipped inputs, and not through tanh, whose flat tails hide the scale.
      if (c.clip > 0 || c.accumulate || c.epilogue == Epilogue::kTanh) continue;
      const auto fp = fp32_reference(x, w, bias, rows, n, k, c.epilogue);
      // One static scale for every row and channel is coarse on inputs with outlier channels
      // (what SmoothQuant is for).
      const bool coarse = c.scaling == S::kStaticPerTensor && !c.smooth;
      EXPECT_LT(max_rel_error(y, fp), coarse ? 0.12 : 0.035) << "rows=" << rows << " n=" << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Epilogues, Int8LinearTest,
    ::testing::Values(Case{Epilogue::kNone, false, S::kDynamicPerToken, false, 0.0f},
                      Case{Epilogue::kGeluErf, false, S::kDynamicPerToken, false, 0.0f},
                      Case{Epilogue::kGeluTanh, false, S::kDynamicPerToken, false, 0.0f},
                      Case{Epilogue::kTanh, false, S::kDynamicPerToken, false, 0.0f},
                      Case{Epilogue::kRelu, false, S::kDynamicPerToken, false, 0.0f},
                      Case{Epilogue::kNone, true, S::kDynamicPerToken, false, 0.0f},
                      Case{Epilogue::kNone, false, S::kStaticPerTensor, false, 0.0f},
                      Case{Epilogue::kGeluErf, true, S::kStaticPerTensor, false, 0.0f},
                      Case{Epilogue::kNone, false, S::kDynamicPerToken, true, 0.0f},
                      Case{Epilogue::kNone, false, S::kStaticPerTensor, true, 0.0f},
                      Case{Epilogue::kNone, true, S::kDynamicPerToken, false, 1.5f},
                      Case{Epilogue::kNone, false, S::kStaticPerTensor, true, 1.5f}));

TEST(Int8LinearTest, PerTokenBeatsStaticOnRowsOfDifferentScales) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  const int64_t n = 64, k = 128, rows = 16;
  const auto w = random_vector(n * k, 1, 0.1f);
  const std::vector<float> bias(n, 0.0f);
  auto x = random_vector(rows * k, 2);
  float amax = 0;
  for (int64_t r = 0; r < rows; ++r) {  // row scales from 1/64 to 2
    for (int64_t i = 0; i < k; ++i) x[r * k + i] *= std::ldexp(1.0f, static_cast<int>(r % 8) - 6);
  }
  for (float v : x) amax = std::max(amax, std::fabs(v));
  const LinearSpec base{.out = n, .in = k, .precision = Precision::kInt8};
  LinearSpec st = base;
  st.scaling = S::kStaticPerTensor;
  st.input_scale = amax / 127;
  auto dyn_lin = Linear::create(w.data(), bias.data(), base).value();
  auto st_lin = Linear::create(w.data(), bias.data(), st).value();
  std::vector<float> yd(rows * n), ys(rows * n);
  ASSERT_TRUE(dyn_lin->run(x.data(), rows, yd.data()).ok());
  ASSERT_TRUE(st_lin->run(x.data(), rows, ys.data()).ok());
  const auto fp = fp32_reference(x, w, bias, rows, n, k, Epilogue::kNone);
  // Error relative to each row's own magnitude: static scaling loses the small rows.
  auto worst_row = [&](const std::vector<float>& y) {
    double worst = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double d = 0, m = 1e-12;
      for (int64_t o = 0; o < n; ++o) {
        d = std::max(d, std::fabs(y[r * n + o] - fp[r * n + o]));
        m = std::max(m, std::fabs(fp[r * n + o]));
      }
      worst = std::max(worst, d / m);
    }
    return worst;
  };
  EXPECT_LT(worst_row(yd), 0.04);
  EXPECT_GT(worst_row(ys), 0.2);
}

TEST(Int8LinearTest, Bf16InputAndOutput) {
  if (!have_int8() || !cpu_features().avx512_bf16) GTEST_SKIP() << "no VNNI or BF16";
  const int64_t n = 96, k = 80, rows = 37;
  const auto w = random_vector(n * k, 5, 0.2f);
  const auto bias = random_vector(n, 6);
  const auto x = random_vector(rows * k, 7);
  std::vector<uint16_t> xb(x.size());
  convert_to_bf16(x.data(), static_cast<int64_t>(x.size()), xb.data());
  std::vector<float> xr(x.size());  // the values the bfloat16 input carries
  for (size_t i = 0; i < x.size(); ++i) xr[i] = core::bf16_to_float(xb[i]);
  LinearSpec spec{.out = n, .in = k, .precision = Precision::kInt8, .bf16_output = true};
  spec.bf16_input = true;
  auto lin = Linear::create(w.data(), bias.data(), spec).value();
  EXPECT_NE(lin->kernel_name().find("brg:avx512_core_vnni"), std::string::npos);
  std::vector<uint16_t> yb(rows * n);
  ASSERT_TRUE(lin->run(xb.data(), rows, yb.data()).ok());
  std::vector<float> y(yb.size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = core::bf16_to_float(yb[i]);
  const auto ref = quantized_reference(xr, w, bias, rows, spec, {});
  EXPECT_LT(max_rel_error(y, ref), 8e-3);  // bfloat16 output rounding
}

TEST(Int8LinearTest, AdoptedBlobGivesTheSameOutputs) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  const int64_t n = 40, k = 64, rows = 9;
  const auto w = random_vector(n * k, 8, 0.3f);
  const auto bias = random_vector(n, 9);
  const auto x = random_vector(rows * k, 10);
  const LinearSpec spec{.out = n, .in = k, .precision = Precision::kInt8};
  auto a = Linear::create(w.data(), bias.data(), spec).value();
  const auto* blob = static_cast<const uint8_t*>(a->packed_weights());
  const std::vector<uint8_t> copy(blob, blob + a->weight_bytes());
  auto b = Linear::from_packed(copy.data(), copy.size(), a->layout(), bias.data(), spec);
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  std::vector<float> ya(rows * n), yb(rows * n);
  ASSERT_TRUE(a->run(x.data(), rows, ya.data()).ok());
  ASSERT_TRUE((*b)->run(x.data(), rows, yb.data()).ok());
  EXPECT_EQ(ya, yb);
  EXPECT_FALSE(
      Linear::from_packed(copy.data(), copy.size() - 4, a->layout(), bias.data(), spec).ok());
}

TEST(Int8LinearTest, QuantizedHandOverEqualsTheFloatRoundTrip) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  const int64_t k = 64, mid = 96, n = 40;
  const auto w1 = random_vector(mid * k, 11, 0.2f), b1 = random_vector(mid, 12);
  const auto w2 = random_vector(n * mid, 13, 0.2f), b2 = random_vector(n, 14);
  auto ffn_in =
      Linear::create(
          w1.data(), b1.data(),
          {.out = mid, .in = k, .precision = Precision::kInt8, .epilogue = Epilogue::kGeluErf})
          .value();
  for (S scaling : {S::kDynamicPerToken, S::kStaticPerTensor}) {
    LinearSpec spec{.out = n,
                    .in = mid,
                    .precision = Precision::kInt8,
                    .accumulate = true,
                    .scaling = scaling,
                    .input_scale = 0.02f,
                    .input_clip = 1.5f};
    spec.smooth.assign(mid, 0.5f);
    spec.smooth[3] = 4.0f;
    auto ffn_out = Linear::create(w2.data(), b2.data(), spec).value();
    for (int64_t rows : {1, 7, 130}) {
      const auto x = random_vector(rows * k, 15 + rows);
      const auto y0 = random_vector(rows * n, 16);
      std::vector<float> h(rows * mid), y1 = y0, y2 = y0;
      ASSERT_TRUE(ffn_in->run(x.data(), rows, h.data()).ok());
      ASSERT_TRUE(ffn_out->run(h.data(), rows, y1.data()).ok());
      std::vector<uint8_t> codes(rows * mid);
      std::vector<float> scales(rows);
      const QuantizedRows q{codes.data(), scales.data()};
      ASSERT_TRUE(ffn_in->run_quantized_output(x.data(), rows, *ffn_out, q).ok());
      ASSERT_TRUE(ffn_out->run_quantized_input(q, rows, y2.data()).ok());
      EXPECT_EQ(y1, y2) << "rows=" << rows;
    }
  }
}

TEST(Int8LinearTest, RejectsBadQuantizationParameters) {
  if (!have_int8()) GTEST_SKIP() << "no AVX512_VNNI";
  const auto w = random_vector(8 * 4, 1);
  LinearSpec s{.out = 8, .in = 4, .precision = Precision::kInt8};
  s.scaling = S::kStaticPerTensor;  // and no scale
  EXPECT_EQ(Linear::create(w.data(), nullptr, s).status().code(), StatusCode::kInvalidArgument);
  s.scaling = S::kDynamicPerToken;
  s.smooth = {1.0f, 2.0f};
  EXPECT_EQ(Linear::create(w.data(), nullptr, s).status().code(), StatusCode::kInvalidArgument);
  s.smooth = {1.0f, 2.0f, 0.0f, 1.0f};
  EXPECT_EQ(Linear::create(w.data(), nullptr, s).status().code(), StatusCode::kInvalidArgument);
  s.smooth.clear();
  auto bad = w;
  bad[13] = NAN;
  EXPECT_EQ(Linear::create(bad.data(), nullptr, s).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace kiln::backend::cpu
