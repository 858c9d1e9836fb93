#include "backend/cpu/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "core/half.h"

namespace kiln::backend::cpu {

namespace detail {

int64_t attention_scratch_floats(int64_t len, int64_t head_dim) {
  const int64_t padded = (len + 31) / 32 * 32;
  // K transposed [head_dim, padded] (or, for bfloat16, K and V pair-packed in the same space)
  // + float scores and bfloat16 probabilities for a block of up to 8 rows.
  return head_dim * padded + 16 * padded + 64;
}

namespace {

inline float to_float(float x) { return x; }
inline float to_float(uint16_t x) { return core::bf16_to_float(x); }

// Straightforward attention for one (sequence, head), one query row at a time.
template <typename In>
void head_reference(const In* q, const In* k, const In* v, int64_t len, int64_t ld_qkv,
                    const AttentionShape& shape, float* out, uint16_t* out_bf16, int64_t ld_out,
                    float* scratch) {
  const int64_t d = shape.head_dim;
  float* scores = scratch;  // one row at a time
  std::vector<float> acc(static_cast<size_t>(d));
  for (int64_t i = 0; i < len; ++i) {
    float max_score = -INFINITY;
    for (int64_t j = 0; j < len; ++j) {
      float s = 0;
      for (int64_t c = 0; c < d; ++c)
        s += to_float(q[i * ld_qkv + c]) * to_float(k[j * ld_qkv + c]);
      scores[j] = s * shape.scale;
      max_score = std::max(max_score, scores[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j < len; ++j) {
      scores[j] = std::exp(scores[j] - max_score);
      sum += scores[j];
    }
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t j = 0; j < len; ++j) {
      for (int64_t c = 0; c < d; ++c) acc[c] += scores[j] * to_float(v[j * ld_qkv + c]);
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t c = 0; c < d; ++c) {
      const float y = acc[c] * inv;
      if (out_bf16 != nullptr) {
        out_bf16[i * ld_out + c] = core::float_to_bf16(y);
      } else {
        out[i * ld_out + c] = y;
      }
    }
  }
}

}  // namespace

void attention_head_scalar(const float* q, const float* k, const float* v, int64_t len,
                           int64_t ld_qkv, const AttentionShape& shape, float* out,
                           uint16_t* out_bf16, int64_t ld_out, float* scratch) {
  head_reference(q, k, v, len, ld_qkv, shape, out, out_bf16, ld_out, scratch);
}

void attention_head_bf16_scalar(const uint16_t* q, const uint16_t* k, const uint16_t* v,
                                int64_t len, int64_t ld_qkv, const AttentionShape& shape,
                                uint16_t* out, int64_t ld_out, float* scratch) {
  head_reference(q, k, v, len, ld_qkv, shape, nullptr, out, ld_out, scratch);
}

}  // namespace detail

namespace {

// Runs head(q, k, v, len, out offset, scratch) for every (sequence, head) of the packed batch
// on the calling thread's OpenMP team, with per-thread scratch.
template <typename Head>
void for_each_head(const int32_t* cu_seqlens, int64_t num_sequences, const AttentionShape& shape,
                   Head&& head) {
  int64_t max_len = 0;
  for (int64_t s = 0; s < num_sequences; ++s) {
    max_len = std::max<int64_t>(max_len, cu_seqlens[s + 1] - cu_seqlens[s]);
  }
  const int64_t scratch_floats = detail::attention_scratch_floats(max_len, shape.head_dim);
  const int64_t work = num_sequences * shape.num_heads;
  // Allocated before the parallel region: an exception must not escape an OpenMP region.
  const int threads = omp_get_max_threads();
  std::vector<float> scratch(static_cast<size_t>(scratch_floats) * threads);
#pragma omp parallel num_threads(threads)
  {
    float* mine = scratch.data() + scratch_floats * omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
    for (int64_t w = 0; w < work; ++w) {
      const int64_t s = w / shape.num_heads;
      const int64_t h = w % shape.num_heads;
      const int64_t len = cu_seqlens[s + 1] - cu_seqlens[s];
      if (len > 0) head(cu_seqlens[s], h, len, mine);
    }
  }
}

}  // namespace

void attention(const float* qkv, const int32_t* cu_seqlens, int64_t num_sequences,
               const AttentionShape& shape, float* out, uint16_t* out_bf16) {
  const int64_t hidden = shape.num_heads * shape.head_dim;
  const bool vector = active_isa() == Isa::kAvx512 && shape.head_dim % 16 == 0 &&
                      shape.head_dim <= 128 && (out_bf16 == nullptr || cpu_features().avx512_bf16);
  for_each_head(
      cu_seqlens, num_sequences, shape, [&](int64_t begin, int64_t h, int64_t len, float* scratch) {
        const float* q = qkv + begin * 3 * hidden + h * shape.head_dim;
        const int64_t o = begin * hidden + h * shape.head_dim;
        float* out_f = out_bf16 == nullptr ? out + o : nullptr;
        uint16_t* out_b = out_bf16 != nullptr ? out_bf16 + o : nullptr;
        auto* kernel = vector ? detail::attention_head_avx512 : detail::attention_head_scalar;
        kernel(q, q + hidden, q + 2 * hidden, len, 3 * hidden, shape, out_f, out_b, hidden,
               scratch);
      });
}

void attention_bf16(const uint16_t* qkv, const int32_t* cu_seqlens, int64_t num_sequences,
                    const AttentionShape& shape, uint16_t* out) {
  const int64_t hidden = shape.num_heads * shape.head_dim;
  const bool vector = active_isa() == Isa::kAvx512 && cpu_features().avx512_bf16;
  for_each_head(
      cu_seqlens, num_sequences, shape, [&](int64_t begin, int64_t h, int64_t len, float* scratch) {
        const uint16_t* q = qkv + begin * 3 * hidden + h * shape.head_dim;
        auto* kernel =
            vector ? detail::attention_head_bf16_avx512 : detail::attention_head_bf16_scalar;
        kernel(q, q + hidden, q + 2 * hidden, len, 3 * hidden, shape,
               out + begin * hidden + h * shape.head_dim, hidden, scratch);
      });
}

}  // namespace kiln::backend::cpu
