#include "quant/smoothquant.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace kiln::quant {

Result<std::vector<float>> smooth_scales(const std::vector<float>& act_absmax, const float* weight,
                                         int64_t out, int64_t in, const SmoothOptions& options) {
  if (in <= 0 || out <= 0 || static_cast<int64_t>(act_absmax.size()) != in) {
    return invalid_argument("smoothquant: " + std::to_string(act_absmax.size()) +
                            " activation channels for a weight [" + std::to_string(out) + ", " +
                            std::to_string(in) + "]");
  }
  if (!(options.alpha >= 0 && options.alpha <= 1)) {
    return invalid_argument("smoothquant: alpha " + std::to_string(options.alpha) +
                            " is outside [0, 1]");
  }
  std::vector<float> wmax(static_cast<size_t>(in), 0.0f);
  for (int64_t o = 0; o < out; ++o) {
    const float* row = weight + o * in;
    for (int64_t j = 0; j < in; ++j) wmax[j] = std::max(wmax[j], std::fabs(row[j]));
  }
  std::vector<float> s(static_cast<size_t>(in), 1.0f);
  const double alpha = options.alpha;
  for (int64_t j = 0; j < in; ++j) {
    const double a = act_absmax[j], w = wmax[j];
    if (!std::isfinite(a) || !std::isfinite(w)) {
      return invalid_argument("smoothquant: non-finite range in channel " + std::to_string(j));
    }
    if (a == 0 || w == 0) continue;  // no signal: leave the channel alone
    const double sj = std::pow(a, alpha) / std::pow(w, 1.0 - alpha);
    s[j] = static_cast<float>(std::max<double>(sj, options.min_scale));
  }
  return s;
}

void scale_weight_columns(float* weight, int64_t out, int64_t in, const float* s) {
  for (int64_t o = 0; o < out; ++o) {
    float* row = weight + o * in;
    for (int64_t j = 0; j < in; ++j) row[j] *= s[j];
  }
}

Result<std::vector<float>> smooth_linear(const std::vector<float>& act_absmax,
                                         model::DenseWeights* dense, const SmoothOptions& options) {
  if (static_cast<int64_t>(dense->weight.size()) != dense->out * dense->in) {
    return invalid_argument("smoothquant: weight size does not match its shape");
  }
  KILN_ASSIGN_OR_RETURN(
      auto s, smooth_scales(act_absmax, dense->weight.data(), dense->out, dense->in, options));
  scale_weight_columns(dense->weight.data(), dense->out, dense->in, s.data());
  return s;
}

Status fold_smooth_into_norm(const std::vector<float>& s, model::NormWeights* norm) {
  if (norm->gamma.size() != s.size() || norm->beta.size() != s.size()) {
    return invalid_argument("smoothquant: " + std::to_string(s.size()) +
                            " factors for a LayerNorm of " + std::to_string(norm->gamma.size()));
  }
  for (size_t j = 0; j < s.size(); ++j) {
    if (!(s[j] > 0)) return invalid_argument("smoothquant: factor " + std::to_string(j) + " <= 0");
  }
  for (size_t j = 0; j < s.size(); ++j) {
    norm->gamma[j] /= s[j];
    norm->beta[j] /= s[j];
  }
  return ok_status();
}

}  // namespace kiln::quant
