#include "quant/mixed_precision.h"

#include <algorithm>
#include <cstdio>

#include "plan/sections.h"
#include "quant/quantize_model.h"

namespace kiln::quant {

namespace {

using quant::LinearSite;

// `q` with layer (l, s) at `p` (its smoothing dropped unless INT8).
void set_precision(quant::ModelQuant* q, int l, int s, Precision p) {
  quant::LinearQuant& lq = q->layers[static_cast<size_t>(l)].sites[s];
  lq.precision = p;
  if (p != Precision::kInt8) {
    lq.smooth.clear();
    lq.scaling = quant::ActivationScaling::kDynamicPerToken;
    lq.input_scale = 0;
  }
}

std::string site_label(const SiteSensitivity& s) {
  return "layer " + std::to_string(s.layer) + " " + std::string(plan::site_name(s.site));
}

}  // namespace

Result<CosineStats> measure(const TrialModel& model, const model::EncoderWeights& weights,
                            const quant::ModelQuant& quant, const CalibrationSet& validation,
                            const ModelOutputs& reference) {
  const model::EncoderWeights smoothed = apply_smoothing(weights, quant);
  KILN_ASSIGN_OR_RETURN(
      auto exec, compile_trial(model, smoothed, std::make_shared<const quant::ModelQuant>(quant)));
  KILN_ASSIGN_OR_RETURN(ModelOutputs out, run_outputs(*exec, model, validation));
  return compare_outputs(reference, out);
}

Result<MixedPrecision> choose_mixed_precision(
    const TrialModel& model, const model::EncoderWeights& weights, const quant::ModelQuant& int8,
    const CalibrationSet& validation, const ModelOutputs& reference, const MixedOptions& options) {
  if (options.fallback != Precision::kBF16 && options.fallback != Precision::kF32) {
    return invalid_argument("mixed precision: the fallback precision must be bf16 or fp32");
  }
  const int num_layers = static_cast<int>(int8.layers.size());
  auto say = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  MixedPrecision result;
  // Sensitivity: one INT8 layer at a time.
  quant::ModelQuant all_high = int8;
  for (int l = 0; l < num_layers; ++l) {
    for (int s = 0; s < quant::kLinearSites; ++s) set_precision(&all_high, l, s, Precision::kF32);
  }
  for (int l = 0; l < num_layers; ++l) {
    for (int s = 0; s < quant::kLinearSites; ++s) {
      quant::ModelQuant one = all_high;
      one.layers[static_cast<size_t>(l)].sites[s] = int8.layers[static_cast<size_t>(l)].sites[s];
      KILN_ASSIGN_OR_RETURN(CosineStats c, measure(model, weights, one, validation, reference));
      result.sensitivity.push_back({l, static_cast<LinearSite>(s), 1.0 - c.mean});
    }
    say("sensitivity: layer " + std::to_string(l) + " of " + std::to_string(num_layers));
  }
  std::stable_sort(
      result.sensitivity.begin(), result.sensitivity.end(),
      [](const SiteSensitivity& a, const SiteSensitivity& b) { return a.drop > b.drop; });

  // Greedy fallback, most sensitive first.
  result.quant = int8;
  KILN_ASSIGN_OR_RETURN(CosineStats c,
                        measure(model, weights, result.quant, validation, reference));
  result.all_int8_drop = result.drop = 1.0 - c.mean;
  for (const SiteSensitivity& s : result.sensitivity) {
    if (result.drop <= options.max_drop) break;
    set_precision(&result.quant, s.layer, static_cast<int>(s.site), options.fallback);
    KILN_ASSIGN_OR_RETURN(c, measure(model, weights, result.quant, validation, reference));
    result.drop = 1.0 - c.mean;
    result.kept_high.push_back(s);
    char line[160];
    std::snprintf(line, sizeof line, "mixed precision: %s -> %s, held-out drop %.5f",
                  site_label(s).c_str(), std::string(precision_name(options.fallback)).c_str(),
                  result.drop);
    say(line);
  }
  result.reached = result.drop <= options.max_drop;
  return result;
}

}  // namespace kiln::quant
