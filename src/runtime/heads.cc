#include "runtime/heads.h"

#include <algorithm>
#include <cmath>

namespace kiln::runtime {

namespace {

// y[r] = act(x[r] W^T + b) for `rows` rows; accumulates in double for reference accuracy.
void dense(const model::DenseWeights& d, model::HeadActivation act, const float* x, int64_t rows,
           float* y) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < d.out; ++o) {
      const float* w = d.weight.data() + o * d.in;
      double s = d.bias[o];
      for (int64_t i = 0; i < d.in; ++i) s += static_cast<double>(x[r * d.in + i]) * w[i];
      float v = static_cast<float>(s);
      if (act == model::HeadActivation::kTanh) v = std::tanh(v);
      if (act == model::HeadActivation::kRelu) v = std::max(v, 0.0f);
      y[r * d.out + o] = v;
    }
  }
}

}  // namespace

void pool(const float* hidden, const int32_t* cu_seqlens, int64_t num_sequences, int64_t h,
          const PoolingConfig& pooling, float* out) {
  for (int64_t s = 0; s < num_sequences; ++s) {
    const int64_t begin = cu_seqlens[s];
    const int64_t len = cu_seqlens[s + 1] - begin;
    float* o = out + s * h;
    const float* rows = hidden + begin * h;
    if (pooling.mode == PoolingMode::kCls) {
      std::copy(rows, rows + h, o);
    } else if (pooling.mode == PoolingMode::kMax) {
      std::copy(rows, rows + h, o);
      for (int64_t t = 1; t < len; ++t) {
        for (int64_t c = 0; c < h; ++c) o[c] = std::max(o[c], rows[t * h + c]);
      }
    } else {
      std::vector<double> acc(static_cast<size_t>(h), 0.0);
      for (int64_t t = 0; t < len; ++t) {
        for (int64_t c = 0; c < h; ++c) acc[c] += rows[t * h + c];
      }
      const double div = pooling.mode == PoolingMode::kMean ? static_cast<double>(len)
                                                            : std::sqrt(static_cast<double>(len));
      for (int64_t c = 0; c < h; ++c) o[c] = static_cast<float>(acc[c] / div);
    }
    if (pooling.normalize) {
      double norm = 0;
      for (int64_t c = 0; c < h; ++c) norm += static_cast<double>(o[c]) * o[c];
      // sentence-transformers divides by max(norm, 1e-12)
      const float inv = static_cast<float>(1.0 / std::max(std::sqrt(norm), 1e-12));
      for (int64_t c = 0; c < h; ++c) o[c] *= inv;
    }
  }
}

std::vector<float> apply_head(const model::HeadWeights& head, Task task, const float* hidden,
                              const int32_t* cu_seqlens, int64_t num_sequences, int64_t num_tokens,
                              int64_t h) {
  if (task == Task::kEmbed || head.out.empty()) return {};
  if (task == Task::kTokenClassification || task == Task::kQuestionAnswering) {
    std::vector<float> logits(static_cast<size_t>(num_tokens * head.out.out));
    dense(head.out, model::HeadActivation::kNone, hidden, num_tokens, logits.data());
    return logits;
  }
  // Sequence classification reads the first token ([CLS] / <s>) of each sequence.
  std::vector<float> first(static_cast<size_t>(num_sequences * h));
  for (int64_t s = 0; s < num_sequences; ++s) {
    std::copy(hidden + cu_seqlens[s] * h, hidden + (cu_seqlens[s] + 1) * h, first.data() + s * h);
  }
  if (!head.pre.empty()) {
    std::vector<float> pre(first.size());
    dense(head.pre, head.pre_activation, first.data(), num_sequences, pre.data());
    first.swap(pre);
  }
  std::vector<float> logits(static_cast<size_t>(num_sequences * head.out.out));
  dense(head.out, model::HeadActivation::kNone, first.data(), num_sequences, logits.data());
  return logits;
}

}  // namespace kiln::runtime
