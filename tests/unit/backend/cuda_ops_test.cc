// The CUDA kernels, each through its raw-pointer launcher, against float64 references on the
// CPU with ragged shapes, in FP16 and BF16. Outputs start as NaN, so an unwritten element fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/activation.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/fp8.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/layer_norm.h"
#include "backend/cuda/small_gemm.h"
#include "cuda_test_util.h"
#include "test_util.h"

namespace kiln::testing {
namespace {

using backend::cuda::AttentionShape;
using backend::cuda::Epilogue;

// Error bounds relative to the output's largest magnitude: a few roundings of the 16-bit
// output (2^-11 for FP16, 2^-8 for BF16); a wrong index or a missed element is far above.
double tolerance(DType d) { return d == DType::kF16 ? 2e-3 : 1.2e-2; }

std::vector<double> layer_norm_ref(std::vector<double> v, const std::vector<float>& gamma,
                                   const std::vector<float>& beta, double eps) {
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  for (double x : v) var += (x - mean) * (x - mean);
  var /= static_cast<double>(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    v[i] = (v[i] - mean) / std::sqrt(var + eps) * gamma[i] + beta[i];
  }
  return v;
}

class CudaOpsTest : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override { KILN_SKIP_WITHOUT_GPU(); }
  DType dt() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaOpsTest, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_label(info.param)); });

struct EmbedCase {
  int64_t hidden;
  bool types;
  int64_t position_offset;  // RoBERTa: pad id + 1
};

TEST_P(CudaOpsTest, EmbedLayerNormMatchesReference) {
  const std::vector<int32_t> cu = {0, 1, 9, 40, 41, 100};
  const int64_t t = cu.back(), n = static_cast<int64_t>(cu.size()) - 1;
  for (const EmbedCase c : {EmbedCase{64, true, 0}, EmbedCase{96, false, 0},
                            EmbedCase{768, true, 2}, EmbedCase{2048, false, 0}}) {
    SCOPED_TRACE("hidden " + std::to_string(c.hidden));
    const int64_t h = c.hidden, vocab = 50, positions = 128, types = 3;
    const auto word = random_vector(vocab * h, 1);
    const auto pos = random_vector(positions * h, 2);
    const auto type = random_vector(types * h, 3);
    const auto gamma = random_vector(h, 4), beta = random_vector(h, 5);
    std::mt19937 rng(6);
    std::vector<int32_t> ids(t), type_ids(t);
    for (auto& id : ids) id = static_cast<int32_t>(rng() % vocab);
    for (auto& ty : type_ids) ty = static_cast<int32_t>(rng() % types);
    const int32_t pad = static_cast<int32_t>(c.position_offset) - 1;
    if (c.position_offset > 0) ids[3] = ids[20] = ids[21] = ids[99] = pad;  // inside sequences

    DeviceMem d_word(word), d_pos(pos), d_type(type), d_gamma(gamma), d_beta(beta);
    DeviceMem d_ids(ids), d_types(type_ids), d_cu(cu), d_out(t * h * 2), d_out32(t * h * 4);
    backend::cuda::EmbeddingTables tables{d_word.get<float>(),
                                          d_pos.get<float>(),
                                          c.types ? d_type.get<float>() : nullptr,
                                          d_gamma.get<float>(),
                                          d_beta.get<float>(),
                                          h,
                                          c.position_offset,
                                          1e-12f};
    ASSERT_TRUE(backend::cuda::embed_layer_norm(dt(), tables, d_ids.get<int32_t>(),
                                                d_types.get<int32_t>(), d_cu.get<int32_t>(), n, t,
                                                d_out.get(), d_out32.get<float>(), nullptr)
                    .ok());
    const auto out = from_16bit(d_out.download<uint16_t>(), dt());
    const auto out32 = d_out32.download<float>();

    std::vector<double> ref;
    for (int64_t s = 0; s < n; ++s) {
      int64_t counted = 0;
      for (int64_t i = cu[s]; i < cu[s + 1]; ++i) {
        int64_t p = i - cu[s];
        if (c.position_offset > 0) p = ids[i] == pad ? pad : pad + ++counted;
        std::vector<double> row(h);
        for (int64_t k = 0; k < h; ++k) {
          row[k] = static_cast<double>(word[ids[i] * h + k]) + pos[p * h + k] +
                   (c.types ? type[type_ids[i] * h + k] : 0.0);
        }
        row = layer_norm_ref(row, gamma, beta, 1e-12);
        ref.insert(ref.end(), row.begin(), row.end());
      }
    }
    EXPECT_LE(rel_error_nan_fails(out, ref), tolerance(dt()));
    EXPECT_LE(rel_error_nan_fails(out32, ref), 1e-5);
  }
}

TEST_P(CudaOpsTest, BiasResidualLayerNormMatchesReference) {
  const int64_t rows = 37;
  for (int64_t h : {64, 384, 1024, 2048}) {
    // 0: bias, 16-bit residual updated in place; 1: the same without bias; 2: float32 output
    // only; 3: float32 residual updated in place plus a 16-bit copy (the BF16 encoder's way).
    for (int variant = 0; variant < 4; ++variant) {
      SCOPED_TRACE("hidden " + std::to_string(h) + " variant " + std::to_string(variant));
      const bool with_bias = variant != 1, res32 = variant == 3;
      const auto y = rounded(random_vector(rows * h, 10), dt());
      const auto res = res32 ? random_vector(rows * h, 11, 3.0f)
                             : rounded(random_vector(rows * h, 11, 3.0f), dt());
      const auto bias = rounded(random_vector(h, 12), dt());
      const auto gamma = random_vector(h, 13), beta = random_vector(h, 14);
      DeviceMem d_y(to_16bit(y, dt())), d_res(to_16bit(res, dt())), d_bias(to_16bit(bias, dt()));
      DeviceMem d_gamma(gamma), d_beta(beta), d_f32(res), d_out(rows * h * 2);
      if (!res32) d_f32.poison();
      void* out16 = variant == 2 ? nullptr : (res32 ? d_out.get() : d_res.get());
      float* out32 = variant >= 2 ? d_f32.get<float>() : nullptr;
      ASSERT_TRUE(backend::cuda::bias_residual_layer_norm(
                      dt(), d_y.get(), with_bias ? d_bias.get() : nullptr,
                      res32 ? d_f32.get() : d_res.get(), res32, d_gamma.get<float>(),
                      d_beta.get<float>(), rows, h, 1e-5f, out16, out32, nullptr)
                      .ok());
      std::vector<double> ref;
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> row(h);
        for (int64_t k = 0; k < h; ++k) {
          row[k] = static_cast<double>(y[r * h + k]) + res[r * h + k] + (with_bias ? bias[k] : 0.0);
        }
        row = layer_norm_ref(row, gamma, beta, 1e-5);
        ref.insert(ref.end(), row.begin(), row.end());
      }
      if (out16 != nullptr) {
        const auto got = from_16bit((res32 ? d_out : d_res).download<uint16_t>(), dt());
        EXPECT_LE(rel_error_nan_fails(got, ref), tolerance(dt()));
      }
      if (out32 != nullptr) {
        EXPECT_LE(rel_error_nan_fails(d_f32.download<float>(), ref), 1e-5);
      }
    }
  }
}

TEST_P(CudaOpsTest, BiasGeluErfMatchesReference) {
  const int64_t rows = 13, cols = 136;
  const auto x = rounded(random_vector(rows * cols, 20, 2.0f), dt());
  const auto bias = rounded(random_vector(cols, 21), dt());
  DeviceMem d_x(to_16bit(x, dt())), d_bias(to_16bit(bias, dt()));
  ASSERT_TRUE(
      backend::cuda::bias_gelu_erf(dt(), d_x.get(), d_bias.get(), rows, cols, nullptr).ok());
  const auto out = from_16bit(d_x.download<uint16_t>(), dt());
  std::vector<double> ref(rows * cols);
  for (int64_t i = 0; i < rows * cols; ++i) {
    const double z = static_cast<double>(x[i]) + bias[i % cols];
    ref[i] = 0.5 * z * (1.0 + std::erf(z / std::sqrt(2.0)));
  }
  EXPECT_LE(rel_error_nan_fails(out, ref), tolerance(dt()));
}

double activation_ref(Epilogue e, double z) {
  if (e == Epilogue::kGeluTanhBias) {
    return 0.5 * z * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (z + 0.044715 * z * z * z)));
  }
  if (e == Epilogue::kReluBias) return z > 0 ? z : 0.0;
  return z;
}

TEST_P(CudaOpsTest, GemmWithEpiloguesMatchesReference) {
  backend::cuda::GemmRunner gemm;
  ASSERT_TRUE(gemm.init().ok());
  struct Shape {
    int64_t rows, out, in;
  };
  for (const Shape s :
       {Shape{37, 192, 64}, Shape{5, 1536, 384}, Shape{130, 768, 3072}, Shape{1, 64, 64}}) {
    for (Epilogue e :
         {Epilogue::kNone, Epilogue::kBias, Epilogue::kGeluTanhBias, Epilogue::kReluBias}) {
      SCOPED_TRACE(std::to_string(s.rows) + "x" + std::to_string(s.out) + "x" +
                   std::to_string(s.in) + " epilogue " + std::to_string(static_cast<int>(e)));
      const auto x = rounded(random_vector(s.rows * s.in, 30), dt());
      const auto w = rounded(random_vector(s.out * s.in, 31, 0.05f), dt());
      const auto b = rounded(random_vector(s.out, 32), dt());
      DeviceMem d_x(to_16bit(x, dt())), d_w(to_16bit(w, dt())), d_b(to_16bit(b, dt()));
      DeviceMem d_y(s.rows * s.out * 2);
      ASSERT_TRUE(gemm.run({s.rows, s.out, s.in, e, dt()}, d_x.get(), d_w.get(),
                           e == Epilogue::kNone ? nullptr : d_b.get(), d_y.get(), nullptr)
                      .ok());
      const auto y = from_16bit(d_y.download<uint16_t>(), dt());
      std::vector<double> ref(s.rows * s.out);
      for (int64_t r = 0; r < s.rows; ++r) {
        for (int64_t o = 0; o < s.out; ++o) {
          double acc = e == Epilogue::kNone ? 0.0 : b[o];
          for (int64_t k = 0; k < s.in; ++k) {
            acc += static_cast<double>(x[r * s.in + k]) * w[o * s.in + k];
          }
          ref[r * s.out + o] = activation_ref(e, acc);
        }
      }
      EXPECT_LE(rel_error_nan_fails(y, ref), tolerance(dt()));
    }
  }
}

// The split-K cluster kernel for batches of <= 128 token rows, alone (GemmRunner picks it only
// when asked), on BERT-family shapes whose K is split over 1 to 8 CTAs, partial row tiles
// included.
TEST_P(CudaOpsTest, SmallGemmMatchesReference) {
  struct Shape {
    int64_t rows, out, in;
  };
  for (const Shape s :
       {Shape{1, 64, 32}, Shape{5, 1536, 384}, Shape{37, 192, 64}, Shape{100, 768, 3072},
        Shape{128, 2304, 768}, Shape{128, 768, 768}, Shape{17, 1152, 384}, Shape{64, 4096, 1024}}) {
    const backend::cuda::GemmShape base{s.rows, s.out, s.in, Epilogue::kNone, dt()};
    ASSERT_TRUE(backend::cuda::small_gemm_fits(base));
    if (s.out <= 1536 && s.in >= 768) {
      EXPECT_GE(backend::cuda::small_gemm_split(base), 4);
    }
    const auto x = rounded(random_vector(s.rows * s.in, 40), dt());
    const auto w = rounded(random_vector(s.out * s.in, 41, 0.05f), dt());
    const auto b = rounded(random_vector(s.out, 42), dt());
    DeviceMem d_x(to_16bit(x, dt())), d_w(to_16bit(w, dt())), d_b(to_16bit(b, dt()));
    std::vector<double> dot(s.rows * s.out);
    for (int64_t r = 0; r < s.rows; ++r) {
      for (int64_t o = 0; o < s.out; ++o) {
        double acc = 0.0;
        for (int64_t k = 0; k < s.in; ++k) {
          acc += static_cast<double>(x[r * s.in + k]) * w[o * s.in + k];
        }
        dot[r * s.out + o] = acc;
      }
    }
    for (Epilogue e :
         {Epilogue::kNone, Epilogue::kBias, Epilogue::kGeluTanhBias, Epilogue::kReluBias}) {
      SCOPED_TRACE(std::to_string(s.rows) + "x" + std::to_string(s.out) + "x" +
                   std::to_string(s.in) + " epilogue " + std::to_string(static_cast<int>(e)));
      DeviceMem d_y(s.rows * s.out * 2);
      backend::cuda::GemmShape shape = base;
      shape.epilogue = e;
      ASSERT_TRUE(backend::cuda::small_gemm(shape, d_x.get(), d_w.get(),
                                            e == Epilogue::kNone ? nullptr : d_b.get(), d_y.get(),
                                            nullptr)
                      .ok());
      const auto y = from_16bit(d_y.download<uint16_t>(), dt());
      std::vector<double> ref(dot.size());
      for (size_t i = 0; i < ref.size(); ++i) {
        ref[i] = activation_ref(e, dot[i] + (e == Epilogue::kNone ? 0.0 : b[i % s.out]));
      }
      EXPECT_LE(rel_error_nan_fails(y, ref), tolerance(dt()));
    }
  }
  const backend::cuda::GemmShape too_many{129, 64, 64, Epilogue::kNone, dt()};
  EXPECT_FALSE(backend::cuda::small_gemm_fits(too_many));
  EXPECT_EQ(backend::cuda::small_gemm(too_many, nullptr, nullptr, nullptr, nullptr, nullptr).code(),
            StatusCode::kInvalidArgument);
}

// softmax(Q K^T * scale) V per sequence and head, in float64.
std::vector<double> attention_ref(const std::vector<float>& qkv, const std::vector<int32_t>& cu,
                                  int64_t heads, int64_t d) {
  const int64_t hidden = heads * d, stride = 3 * hidden;
  std::vector<double> ctx(cu.back() * hidden);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t q = cu[s]; q < cu[s + 1]; ++q) {
        std::vector<double> p;
        double mx = -INFINITY, sum = 0;
        for (int64_t k = cu[s]; k < cu[s + 1]; ++k) {
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) {
            dot += static_cast<double>(qkv[q * stride + h * d + i]) *
                   qkv[k * stride + hidden + h * d + i];
          }
          p.push_back(dot * scale);
          mx = std::max(mx, p.back());
        }
        for (double& v : p) sum += (v = std::exp(v - mx));
        for (int64_t i = 0; i < d; ++i) {
          double acc = 0;
          for (int64_t k = cu[s]; k < cu[s + 1]; ++k) {
            acc += p[k - cu[s]] * qkv[k * stride + 2 * hidden + h * d + i];
          }
          ctx[q * hidden + h * d + i] = acc / sum;
        }
      }
    }
  }
  return ctx;
}

TEST_P(CudaOpsTest, AttentionMatchesReferenceOnRaggedBatches) {
  // Lengths around the 64-row tiles: single tokens, partial tiles, exact tiles, several tiles.
  // A second batch up to 300 tokens (five key tiles).
  for (const std::vector<int32_t>& lens :
       {std::vector<int32_t>{1, 7, 64, 65, 130, 200}, std::vector<int32_t>{300, 1, 129, 257}}) {
    std::vector<int32_t> cu = {0};
    for (int32_t l : lens) cu.push_back(cu.back() + l);
    const int64_t t = cu.back(), n = static_cast<int64_t>(lens.size()), heads = 3;
    const int64_t max_len = *std::max_element(lens.begin(), lens.end());
    for (int64_t d : {16, 32, 64, 128}) {
      const auto qkv =
          rounded(random_vector(t * 3 * heads * d, 40 + static_cast<uint32_t>(d)), dt());
      const auto ref = attention_ref(qkv, cu, heads, d);
      DeviceMem d_qkv(to_16bit(qkv, dt())), d_cu(cu);
      const AttentionShape shape{heads, d, static_cast<float>(1.0 / std::sqrt(double(d)))};
      // The tensor-core kernel at 16 and 32 rows per warp (head_dim 128 runs 16 either way),
      // then the simple one.
      for (int kernel : {16, 32, 0}) {
        SCOPED_TRACE((kernel ? "mma rows " + std::to_string(kernel) : std::string("simple")) +
                     " head_dim " + std::to_string(d));
        DeviceMem d_ctx(t * heads * d * 2);
        const auto tiling = kernel == 32 ? backend::cuda::AttentionTiling::kRows32
                                         : backend::cuda::AttentionTiling::kRows16;
        ASSERT_TRUE((kernel
                         ? backend::cuda::attention(dt(), d_qkv.get(), d_cu.get<int32_t>(), n,
                                                    max_len, shape, d_ctx.get(), nullptr, tiling)
                         : backend::cuda::attention_simple(dt(), d_qkv.get(), d_cu.get<int32_t>(),
                                                           n, max_len, shape, d_ctx.get(), nullptr))
                        .ok());
        const auto ctx = from_16bit(d_ctx.download<uint16_t>(), dt());
        // P is rounded to 16 bits before P.V in the tensor-core kernel: allow one more rounding.
        EXPECT_LE(rel_error_nan_fails(ctx, ref), 2 * tolerance(dt()));
      }
    }
  }
}

TEST_P(CudaOpsTest, ConvertFromF32RoundsToNearest) {
  const auto x = random_vector(1000, 50, 10.0f);
  DeviceMem d_x(x), d_y(x.size() * 2);
  ASSERT_TRUE(backend::cuda::convert_from_f32(dt(), d_x.get<float>(), d_y.get(),
                                              static_cast<int64_t>(x.size()), nullptr)
                  .ok());
  EXPECT_EQ(d_y.download<uint16_t>(), to_16bit(x, dt()));
}

// An E4M3 byte as a float (OCP FP8: 4 exponent bits with bias 7, 3 mantissa bits, no infinity,
// S.1111.111 is NaN), written from the format's definition, not from CUDA's conversion.
double e4m3_value(uint8_t b) {
  const int sign = b >> 7, exp = (b >> 3) & 15, man = b & 7;
  if (exp == 15 && man == 7) return NAN;
  const double mag = exp == 0 ? std::ldexp(man / 8.0, -6) : std::ldexp(1.0 + man / 8.0, exp - 7);
  return sign ? -mag : mag;
}

// Dynamic quantization: the scale is max|x| / 448, every value comes back within half an E4M3
// step (2^-4 relative, or the subnormal step 2^-9 * scale), and the largest maps to 448.
TEST_P(CudaOpsTest, Fp8QuantizeDynamicRoundTrips) {
  auto x = rounded(random_vector(4096, 60, 3.0f), dt());
  x[1234] = 0.0f;
  DeviceMem d_x(to_16bit(x, dt())), d_q(x.size()), d_amax(sizeof(float)), d_scale(sizeof(float));
  ASSERT_TRUE(backend::cuda::quantize_fp8_dynamic(dt(), d_x.get(), static_cast<int64_t>(x.size()),
                                                  d_amax.get<float>(), d_scale.get<float>(),
                                                  d_q.get(), nullptr)
                  .ok());
  double amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(static_cast<double>(v)));
  const float scale = d_scale.download<float>()[0];
  EXPECT_NEAR(scale, amax / 448.0, amax / 448.0 * 1e-6);
  const auto q = d_q.download<uint8_t>();
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double back = e4m3_value(q[i]) * scale;
    ASSERT_TRUE(std::isfinite(back)) << "element " << i;
    const double step =
        std::max(std::fabs(static_cast<double>(x[i])) * 0.0625, std::ldexp(1.0, -9) * scale);
    worst = std::max(worst, std::fabs(back - x[i]) / step);
  }
  EXPECT_LE(worst, 1.0 + 1e-6);
  EXPECT_EQ(e4m3_value(q[1234]), 0.0);
}

// Static quantization with a scale too small for the data saturates to +-448 instead of
// overflowing to NaN.
TEST_P(CudaOpsTest, Fp8QuantizeStaticSaturates) {
  // Values chosen away from rounding ties, in FP16 and BF16 alike.
  const std::vector<float> x = {0.9f, -0.9f, 100.0f, -100.0f, 0.45f, 0.0f, 3.0f, -0.3f};
  const std::vector<float> scale = {0.01f};
  DeviceMem d_x(to_16bit(x, dt())), d_q(x.size()), d_scale(scale);
  ASSERT_TRUE(
      backend::cuda::quantize_fp8(dt(), d_x.get(), 8, d_scale.get<float>(), d_q.get(), nullptr)
          .ok());
  const auto q = d_q.download<uint8_t>();
  EXPECT_EQ(e4m3_value(q[0]), 88.0);  // ~90: steps of 8 in [64, 128)
  EXPECT_EQ(e4m3_value(q[1]), -88.0);
  EXPECT_EQ(e4m3_value(q[2]), 448.0);  // 10,000 saturates
  EXPECT_EQ(e4m3_value(q[3]), -448.0);
  EXPECT_EQ(e4m3_value(q[4]), 44.0);  // ~45: steps of 4 in [32, 64)
  EXPECT_EQ(e4m3_value(q[5]), 0.0);
  EXPECT_EQ(e4m3_value(q[6]), 288.0);  // 300: steps of 32 in [256, 448]
  EXPECT_EQ(e4m3_value(q[7]), -30.0);
}

// The FP8 GEMM on quantized X and W against float64 on the same quantized values times their
// scales: only FP32 accumulation and the 16-bit output rounding separate them.
TEST_P(CudaOpsTest, Fp8GemmMatchesReferenceOnQuantizedValues) {
  backend::cuda::GemmRunner gemm;
  ASSERT_TRUE(gemm.init().ok());
  std::vector<double> e4m3(256);
  for (int v = 0; v < 256; ++v) e4m3[v] = e4m3_value(static_cast<uint8_t>(v));
  struct Shape {
    int64_t rows, out, in;
  };
  for (const Shape s : {Shape{37, 192, 64}, Shape{130, 768, 3072}, Shape{256, 1024, 1024}}) {
    SCOPED_TRACE(std::to_string(s.rows) + "x" + std::to_string(s.out) + "x" + std::to_string(s.in));
    const auto x = rounded(random_vector(s.rows * s.in, 70), dt());
    const auto w = rounded(random_vector(s.out * s.in, 71, 0.05f), dt());
    const auto b = rounded(random_vector(s.out, 72), dt());
    DeviceMem d_x(to_16bit(x, dt())), d_w(to_16bit(w, dt())), d_b(to_16bit(b, dt()));
    DeviceMem d_xq(x.size()), d_wq(w.size()), d_y(s.rows * s.out * 2);
    DeviceMem d_amax(sizeof(float)), d_xs(sizeof(float)), d_ws(sizeof(float));
    ASSERT_TRUE(backend::cuda::quantize_fp8_dynamic(dt(), d_x.get(), s.rows * s.in,
                                                    d_amax.get<float>(), d_xs.get<float>(),
                                                    d_xq.get(), nullptr)
                    .ok());
    ASSERT_TRUE(backend::cuda::quantize_fp8_dynamic(dt(), d_w.get(), s.out * s.in,
                                                    d_amax.get<float>(), d_ws.get<float>(),
                                                    d_wq.get(), nullptr)
                    .ok());
    // X W^T in float64 on the decoded bytes, times both scales: computed once per shape.
    const auto xq = d_xq.download<uint8_t>(), wq = d_wq.download<uint8_t>();
    const double xs = d_xs.download<float>()[0], ws = d_ws.download<float>()[0];
    std::vector<double> xd(xq.size()), wd(wq.size()), dot(s.rows * s.out);
    for (size_t i = 0; i < xq.size(); ++i) xd[i] = e4m3[xq[i]];
    for (size_t i = 0; i < wq.size(); ++i) wd[i] = e4m3[wq[i]];
    for (int64_t r = 0; r < s.rows; ++r) {
      for (int64_t o = 0; o < s.out; ++o) {
        double acc = 0;
        for (int64_t k = 0; k < s.in; ++k) acc += xd[r * s.in + k] * wd[o * s.in + k];
        dot[r * s.out + o] = acc * xs * ws;
      }
    }
    for (Epilogue e : {Epilogue::kNone, Epilogue::kBias, Epilogue::kGeluTanhBias}) {
      SCOPED_TRACE("epilogue " + std::to_string(static_cast<int>(e)));
      d_y.poison();
      backend::cuda::GemmShape shape{s.rows, s.out, s.in, e, dt()};
      shape.fp8 = true;
      ASSERT_TRUE(gemm.run_fp8(shape, d_xq.get(), d_wq.get(),
                               e == Epilogue::kNone ? nullptr : d_b.get(), d_y.get(),
                               d_xs.get<float>(), d_ws.get<float>(), nullptr)
                      .ok());
      const auto y = from_16bit(d_y.download<uint16_t>(), dt());
      std::vector<double> ref(dot.size());
      for (int64_t r = 0; r < s.rows; ++r) {
        for (int64_t o = 0; o < s.out; ++o) {
          const double v = dot[r * s.out + o] + (e == Epilogue::kNone ? 0.0 : b[o]);
          ref[r * s.out + o] = activation_ref(e, v);
        }
      }
      EXPECT_LE(rel_error_nan_fails(y, ref), tolerance(dt()));
    }
  }
}

// Per-row quantization (per token, or per output channel of a weight) and the GEMM with
// cuBLASLt's outer-vector scales: each row's scale is its max / 448, and the product matches
// float64 on the decoded bytes times the row and column scales.
TEST_P(CudaOpsTest, Fp8RowwiseGemmMatchesReference) {
  backend::cuda::GemmRunner gemm;
  ASSERT_TRUE(gemm.init().ok());
  const int64_t rows = 70, out = 256, in = 512;
  auto x = random_vector(rows * in, 80);
  for (int64_t k = 0; k < in; ++k) x[5 * in + k] *= 50.0f;  // one loud token
  for (int64_t k = 0; k < in; ++k) x[9 * in + k] = 0.0f;    // one silent token
  x = rounded(x, dt());  // the reference sees the 16-bit values the device gets
  const auto w = rounded(random_vector(out * in, 81, 0.05f), dt());
  const auto b = rounded(random_vector(out, 82), dt());
  DeviceMem d_x(to_16bit(x, dt())), d_w(to_16bit(w, dt())), d_b(to_16bit(b, dt()));
  DeviceMem d_xq(x.size()), d_wq(w.size()), d_y(rows * out * 2);
  DeviceMem d_xs(rows * sizeof(float)), d_ws(out * sizeof(float));
  ASSERT_TRUE(backend::cuda::quantize_fp8_rows(dt(), d_x.get(), rows, in, d_xs.get<float>(),
                                               d_xq.get(), nullptr)
                  .ok());
  ASSERT_TRUE(backend::cuda::quantize_fp8_rows(dt(), d_w.get(), out, in, d_ws.get<float>(),
                                               d_wq.get(), nullptr)
                  .ok());
  const auto xs = d_xs.download<float>(), ws = d_ws.download<float>();
  for (int64_t r = 0; r < rows; ++r) {
    double amax = 0;
    for (int64_t k = 0; k < in; ++k) amax = std::max(amax, std::fabs(double{x[r * in + k]}));
    EXPECT_NEAR(xs[r], amax > 0 ? amax / 448.0 : 1.0, 1e-6 * (amax / 448.0 + 1e-30)) << r;
  }
  backend::cuda::GemmShape shape{rows, out, in, Epilogue::kBias, dt()};
  shape.fp8 = true;
  shape.fp8_rowwise = true;
  ASSERT_TRUE(gemm.run_fp8(shape, d_xq.get(), d_wq.get(), d_b.get(), d_y.get(), d_xs.get<float>(),
                           d_ws.get<float>(), nullptr)
                  .ok());
  const auto y = from_16bit(d_y.download<uint16_t>(), dt());
  const auto xq = d_xq.download<uint8_t>(), wq = d_wq.download<uint8_t>();
  std::vector<double> ref(rows * out);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0;
      for (int64_t k = 0; k < in; ++k)
        acc += e4m3_value(xq[r * in + k]) * e4m3_value(wq[o * in + k]);
      ref[r * out + o] = acc * xs[r] * ws[o] + b[o];
    }
  }
  EXPECT_LE(rel_error_nan_fails(y, ref), tolerance(dt()));
}

// The LayerNorm's FP8 copy (per-row E4M3, as quantize_fp8_rows): each row's scale is the max
// of the float result / 448 and every value comes back within half an E4M3 step of it.
TEST_P(CudaOpsTest, BiasResidualLayerNormWritesFp8Rows) {
  const int64_t rows = 37;
  for (int64_t h : {64, 1024}) {
    SCOPED_TRACE("hidden " + std::to_string(h));
    const auto y = rounded(random_vector(rows * h, 15), dt());
    const auto res = rounded(random_vector(rows * h, 16, 3.0f), dt());
    const auto bias = rounded(random_vector(h, 17), dt());
    const auto gamma = random_vector(h, 18), beta = random_vector(h, 19);
    DeviceMem d_y(to_16bit(y, dt())), d_res(to_16bit(res, dt())), d_bias(to_16bit(bias, dt()));
    DeviceMem d_gamma(gamma), d_beta(beta), d_out(rows * h * 2), d_q(rows * h);
    DeviceMem d_scales(rows * sizeof(float));
    ASSERT_TRUE(backend::cuda::bias_residual_layer_norm(
                    dt(), d_y.get(), d_bias.get(), d_res.get(), false, d_gamma.get<float>(),
                    d_beta.get<float>(), rows, h, 1e-5f, d_out.get(), nullptr, nullptr,
                    {d_q.get(), d_scales.get<float>()})
                    .ok());
    const auto q = d_q.download<uint8_t>();
    const auto scales = d_scales.download<float>();
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<double> row(h);
      for (int64_t k = 0; k < h; ++k) {
        row[k] = static_cast<double>(y[r * h + k]) + res[r * h + k] + bias[k];
      }
      row = layer_norm_ref(row, gamma, beta, 1e-5);
      double amax = 0;
      for (double v : row) amax = std::max(amax, std::fabs(v));
      EXPECT_NEAR(scales[r], amax / 448.0, amax / 448.0 * 1e-4) << "row " << r;
      for (int64_t k = 0; k < h; ++k) {
        const double back = e4m3_value(q[r * h + k]) * scales[r];
        const double step =
            std::max(std::fabs(row[k]) * 0.0625, std::ldexp(1.0, -9) * scales[r]) * 1.01;
        ASSERT_LE(std::fabs(back - row[k]), step) << "row " << r << " col " << k;
      }
    }
  }
}

TEST(CudaOpsArgs, LaunchersRejectBadArguments) {
  // No GPU needed: these fail before anything is launched.
  EXPECT_FALSE(
      backend::cuda::attention(DType::kF16, nullptr, nullptr, 1, 1, {1, 48, 1.0f}, nullptr, nullptr)
          .ok());
  EXPECT_FALSE(backend::cuda::bias_gelu_erf(DType::kF16, nullptr, nullptr, 1, 12, nullptr).ok());
  EXPECT_FALSE(backend::cuda::bias_residual_layer_norm(DType::kF16, nullptr, nullptr, nullptr,
                                                       false, nullptr, nullptr, 1, 64, 1e-5f,
                                                       nullptr, nullptr, nullptr)
                   .ok());
  EXPECT_FALSE(backend::cuda::quantize_fp8(DType::kF16, nullptr, 12, nullptr, nullptr, nullptr)
                   .ok());  // n not a multiple of 8
  backend::cuda::GemmShape fp16{16, 16, 16, Epilogue::kNone, DType::kF16};
  backend::cuda::GemmRunner idle;  // never initialised: argument checks come first
  EXPECT_FALSE(idle.run_fp8(fp16, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr)
                   .ok());  // not an FP8 shape
}

}  // namespace
}  // namespace kiln::testing
