#include "quant/prune_model.h"

#include <array>
#include <memory>

namespace kiln::quant {

namespace {

using quant::LinearSite;

constexpr std::array<LinearSite, quant::kLinearSites> kSites = {
    LinearSite::kQkv, LinearSite::kAttnOut, LinearSite::kFfnIn, LinearSite::kFfnOut};

// ||X W^T||^2 / samples: the energy the relative errors are divided by.
double output_energy(const quant::HessianAccumulator& h, const std::vector<float>& w, int64_t out) {
  const std::vector<float> zero(w.size(), 0.0f);
  return quant::output_error(h, w.data(), zero.data(), out);
}

double relative(double error, double energy) { return energy > 0 ? error / energy : 0.0; }

}  // namespace

std::string_view prune_method_name(PruneMethod m) {
  return m == PruneMethod::kMagnitude ? "magnitude" : "sparsegpt";
}

bool parse_prune_method(std::string_view name, PruneMethod* out) {
  if (name == "magnitude") {
    *out = PruneMethod::kMagnitude;
  } else if (name == "sparsegpt") {
    *out = PruneMethod::kSparseGpt;
  } else {
    return false;
  }
  return true;
}

Result<std::vector<PrunedLayer>> prune_model(const TrialModel& model,
                                             model::EncoderWeights* weights, PruneMethod method,
                                             const CalibrationSet* set,
                                             const quant::SparseGptOptions& options,
                                             plan::SparsityRecord* record) {
  const int num_layers = static_cast<int>(weights->layers.size());
  record->assign(static_cast<size_t>(num_layers), {});
  std::vector<PrunedLayer> report;
  if (method == PruneMethod::kSparseGpt && (set == nullptr || set->batches.empty())) {
    return invalid_argument("sparsegpt pruning needs calibration texts (--calibration FILE)");
  }
  for (int l = 0; l < num_layers; ++l) {
    std::array<std::unique_ptr<quant::HessianAccumulator>, quant::kLinearSites> hessians;
    if (method == PruneMethod::kSparseGpt) {
      // Inputs of block l from the model pruned so far (the observer runs on this thread).
      Status first_error;
      for (LinearSite site : kSites) {
        hessians[static_cast<int>(site)] =
            std::make_unique<quant::HessianAccumulator>(site_weights(weights->layers[l], site).in);
      }
      KILN_ASSIGN_OR_RETURN(auto exec, compile_trial(model, *weights, nullptr));
      KILN_RETURN_IF_ERROR(
          observe(*exec, model, *set,
                  [&](int layer, LinearSite site, const float* x, int64_t rows, int64_t cols) {
                    if (layer != l) return;
                    Status st = hessians[static_cast<int>(site)]->add(x, rows, cols);
                    if (!st.ok() && first_error.ok()) first_error = st;
                  }));
      KILN_RETURN_IF_ERROR(first_error);
    }
    for (LinearSite site : kSites) {
      model::DenseWeights& d = site_weights(weights->layers[l], site);
      const std::string where =
          "layer " + std::to_string(l) + " " + std::string(plan::site_name(site));
      auto magnitude = quant::prune_2_4_magnitude(d.weight.data(), d.out, d.in);
      if (!magnitude.ok()) return magnitude.status().with_context(where);
      PrunedLayer r;
      r.layer = l;
      r.site = site;
      if (method == PruneMethod::kSparseGpt) {
        const auto& h = *hessians[static_cast<int>(site)];
        auto pruned = quant::prune_2_4_sparsegpt(d.weight.data(), d.out, d.in, h, options);
        if (!pruned.ok()) return pruned.status().with_context(where);
        const double energy = output_energy(h, d.weight, d.out);
        r.error =
            relative(quant::output_error(h, d.weight.data(), pruned->weight.data(), d.out), energy);
        r.magnitude_error = relative(
            quant::output_error(h, d.weight.data(), magnitude->weight.data(), d.out), energy);
        d.weight = std::move(pruned->weight);
      } else {
        d.weight = std::move(magnitude->weight);
      }
      (*record)[static_cast<size_t>(l)][static_cast<size_t>(site)] = plan::Sparsity::kTwoFour;
      report.push_back(r);
    }
  }
  return report;
}

}  // namespace kiln::quant
