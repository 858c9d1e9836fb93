#include "quant/quantize_model.h"

#include <algorithm>
#include <cmath>

#include "plan/sections.h"
#include "quant/prune_model.h"
#include "quant/smoothquant.h"

namespace kiln::quant {

namespace {

using quant::LinearSite;

// The input an INT8 layer quantizes: x clipped (ffn_out with a GELU clip), then divided by the
// smoothing factors, as the device does (backend/cpu/quantize.h).
struct InputTransform {
  float clip = 0;
  std::vector<float> inv_smooth;
  bool identity() const { return clip == 0 && inv_smooth.empty(); }
  void apply(const float* x, int64_t rows, int64_t cols, std::vector<float>* out) const {
    out->resize(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        float v = x[r * cols + c];
        if (clip > 0) v = std::clamp(v, -clip, clip);
        if (!inv_smooth.empty()) v *= inv_smooth[static_cast<size_t>(c)];
        (*out)[static_cast<size_t>(r * cols + c)] = v;
      }
    }
  }
};

// Collects the statistics of every layer's (transformed) input.
Status collect(const backend::EncoderExecutor& exec, const TrialModel& model,
               const CalibrationSet& set, const std::vector<InputTransform>& transforms,
               quant::CalibrationCollector* collector) {
  Status first_error;
  std::vector<float> buffer;
  KILN_RETURN_IF_ERROR(observe(
      exec, model, set,
      [&](int layer, LinearSite site, const float* x, int64_t rows, int64_t cols) {
        const InputTransform& t =
            transforms[static_cast<size_t>(layer * quant::kLinearSites + static_cast<int>(site))];
        const float* data = x;
        if (!t.identity()) {
          t.apply(x, rows, cols, &buffer);
          data = buffer.data();
        }
        Status s = collector->observe(layer, site, data, rows, cols);
        if (!s.ok() && first_error.ok()) first_error = s;
      }));
  return first_error;
}

}  // namespace

Result<Int8Calibration> calibrate_int8(const TrialModel& model,
                                       const model::EncoderWeights& weights,
                                       const CalibrationSet& set, const QuantizeOptions& options) {
  if (set.batches.empty()) return invalid_argument("int8 calibration: no calibration texts");
  const int num_layers = static_cast<int>(weights.layers.size());
  const size_t entries = static_cast<size_t>(num_layers * quant::kLinearSites);
  KILN_ASSIGN_OR_RETURN(auto exec, compile_trial(model, weights, nullptr));

  std::vector<InputTransform> transforms(entries);
  if (options.gelu_clip > 0) {
    for (int l = 0; l < num_layers; ++l) {
      transforms[static_cast<size_t>(l * quant::kLinearSites +
                                     static_cast<int>(LinearSite::kFfnOut))]
          .clip = options.gelu_clip;
    }
  }
  quant::CalibrationCollector raw(num_layers);
  KILN_RETURN_IF_ERROR(collect(*exec, model, set, transforms, &raw));

  Int8Calibration result;
  result.quant.layers.resize(static_cast<size_t>(num_layers));
  result.quant.gelu_clip = options.gelu_clip;
  const bool smooth = options.smoothquant_alpha >= 0;
  for (int l = 0; l < num_layers; ++l) {
    for (int s = 0; s < quant::kLinearSites; ++s) {
      const auto site = static_cast<LinearSite>(s);
      quant::LinearQuant& q = result.quant.layers[static_cast<size_t>(l)].sites[s];
      q.precision = Precision::kInt8;
      q.scaling = options.scaling;
      SiteCalibration c;
      c.layer = l;
      c.site = site;
      c.raw_absmax = raw.stats(l, site).absmax();
      c.absmax = c.raw_absmax;
      c.non_finite = raw.stats(l, site).non_finite();
      if (smooth) {
        const model::DenseWeights& d = site_weights(weights.layers[static_cast<size_t>(l)], site);
        quant::SmoothOptions so;
        so.alpha = options.smoothquant_alpha;
        auto factors = quant::smooth_scales(raw.stats(l, site).channel_absmax(), d.weight.data(),
                                            d.out, d.in, so);
        if (!factors.ok()) {
          return factors.status().with_context("smoothquant, layer " + std::to_string(l) + " " +
                                               std::string(plan::site_name(site)));
        }
        q.smooth = std::move(factors).value();
        c.max_smooth = *std::max_element(q.smooth.begin(), q.smooth.end());
        // What the layer quantizes, exactly: max over channels of absmax_c / s_c.
        const auto& channel = raw.stats(l, site).channel_absmax();
        c.absmax = 0;
        for (size_t i = 0; i < channel.size() && i < q.smooth.size(); ++i) {
          c.absmax = std::max(c.absmax, channel[i] / q.smooth[i]);
        }
        InputTransform& t = transforms[static_cast<size_t>(l * quant::kLinearSites + s)];
        t.inv_smooth.resize(q.smooth.size());
        for (size_t i = 0; i < q.smooth.size(); ++i) t.inv_smooth[i] = 1.0f / q.smooth[i];
      }
      result.sites.push_back(c);
    }
  }
  if (options.scaling == quant::ActivationScaling::kDynamicPerToken) return result;

  // Static scales: the statistics of what the INT8 layers will quantize. Smoothing changed the
  // inputs, so their histograms need a second pass.
  quant::CalibrationCollector smoothed(smooth ? num_layers : 0);
  const quant::CalibrationCollector& stats = smooth ? smoothed : raw;
  if (smooth) KILN_RETURN_IF_ERROR(collect(*exec, model, set, transforms, &smoothed));
  for (SiteCalibration& c : result.sites) {
    const quant::ActivationStats& st = stats.stats(c.layer, c.site);
    auto threshold = quant::select_threshold(st, options.calibrator);
    if (!threshold.ok()) {
      return threshold.status().with_context("calibration, layer " + std::to_string(c.layer) + " " +
                                             std::string(plan::site_name(c.site)));
    }
    c.absmax = st.absmax();
    c.threshold = *threshold;
    result.quant.layers[static_cast<size_t>(c.layer)].sites[static_cast<int>(c.site)].input_scale =
        *threshold / 127.0f;
  }
  return result;
}

quant::ModelQuant dynamic_int8(int num_layers, float gelu_clip) {
  quant::ModelQuant q;
  q.layers.resize(static_cast<size_t>(num_layers));
  q.gelu_clip = gelu_clip;
  for (auto& layer : q.layers) {
    for (auto& site : layer.sites) {
      site.precision = Precision::kInt8;
      site.scaling = quant::ActivationScaling::kDynamicPerToken;
    }
  }
  return q;
}

model::EncoderWeights apply_smoothing(const model::EncoderWeights& weights,
                                      const quant::ModelQuant& quant) {
  model::EncoderWeights out = weights;
  for (size_t l = 0; l < out.layers.size() && l < quant.layers.size(); ++l) {
    for (int s = 0; s < quant::kLinearSites; ++s) {
      const quant::LinearQuant& q = quant.layers[l].sites[s];
      if (q.precision != Precision::kInt8 || q.smooth.empty()) continue;
      model::DenseWeights& d = site_weights(out.layers[l], static_cast<LinearSite>(s));
      quant::scale_weight_columns(d.weight.data(), d.out, d.in, q.smooth.data());
    }
  }
  return out;
}

}  // namespace kiln::quant
