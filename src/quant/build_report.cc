// Text and JSON forms of a BuildReport.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "plan/sections.h"
#include "quant/build_pipeline.h"

namespace kiln::quant {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// A JSON number; NaN and infinities (non-finite activations) are null.
std::string num(const char* f, double v) { return std::isfinite(v) ? fmt(f, v) : "null"; }

std::string site_label(int layer, quant::LinearSite site) {
  return "layer " + std::to_string(layer) + " " + std::string(plan::site_name(site));
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt("\\u%04x", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string cosine_json(const CosineStats& c) {
  return "{\"mean\": " + num("%.6f", c.mean) + ", \"p1\": " + num("%.6f", c.p1) +
         ", \"min\": " + num("%.6f", c.min) + "}";
}

}  // namespace

std::string format_build_report(const BuildReport& r) {
  std::ostringstream o;
  if (!r.calibration.empty()) {
    o << "calibration    " << r.calibration << ": " << r.calibration_texts << " texts, "
      << r.calibration_tokens << " tokens";
    if (r.truncated > 0) o << " (" << r.truncated << " truncated to the model's max length)";
    o << "\nheld out       " << r.validation << ": " << r.validation_texts
      << " texts; accuracy = " << r.output_kind << " cosine to the FP32 model\n";
  }
  if (r.pruning) {
    o << "pruning        2:4, " << prune_method_name(*r.pruning) << "\n";
    if (r.pruned_fp32) {
      o << "  pruned fp32 held-out cosine: mean " << fmt("%.5f", r.pruned_fp32->mean)
        << ", worst 1% " << fmt("%.5f", r.pruned_fp32->p1) << "\n";
    }
    bool errors = false;
    for (const PrunedLayer& p : r.pruned) errors |= p.error >= 0;
    if (errors) {
      o << "  relative output error per layer (sparsegpt vs magnitude mask on the same inputs):\n";
      for (const PrunedLayer& p : r.pruned) {
        o << "    " << site_label(p.layer, p.site) << "  " << fmt("%.4f", p.error) << " vs "
          << fmt("%.4f", p.magnitude_error) << "\n";
      }
    }
  }
  if (r.int8) {
    const bool dynamic =
        !r.int8->quant.layers.empty() &&
        r.int8->quant.layers[0].sites[0].scaling == quant::ActivationScaling::kDynamicPerToken;
    o << "int8           " << (dynamic ? "dynamic per-token" : "static per-tensor")
      << " activation scales";
    if (r.int8->quant.gelu_clip > 0) o << ", GELU clip " << fmt("%g", r.int8->quant.gelu_clip);
    o << "\n  layer            raw absmax  smoothed absmax  threshold  max smooth\n";
    for (const SiteCalibration& c : r.int8->sites) {
      char line[160];
      std::snprintf(line, sizeof line, "  %-16s %10.3f %16.3f %10.3f %11.3f\n",
                    site_label(c.layer, c.site).c_str(), c.raw_absmax, c.absmax, c.threshold,
                    c.max_smooth);
      o << line;
    }
  }
  if (r.mixed) {
    const MixedPrecision& m = *r.mixed;
    o << "sensitivity    held-out drop (1 - cosine) with only that layer in INT8, worst first:\n";
    for (const SiteSensitivity& s : m.sensitivity) {
      o << "    " << site_label(s.layer, s.site) << "  " << fmt("%.6f", s.drop) << "\n";
    }
    o << "mixed          all-INT8 drop " << fmt("%.5f", m.all_int8_drop) << " -> "
      << fmt("%.5f", m.drop) << (m.reached ? " (within the allowed drop)" : " (NOT reached)")
      << "; " << m.kept_high.size() << " layers kept high";
    for (const SiteSensitivity& s : m.kept_high) o << "\n    " << site_label(s.layer, s.site);
    o << "\n";
  }
  if (r.final_accuracy) {
    o << "plan accuracy  held-out " << r.output_kind << " cosine to FP32: mean "
      << fmt("%.5f", r.final_accuracy->mean) << ", worst 1% " << fmt("%.5f", r.final_accuracy->p1)
      << "\n";
  }
  return o.str();
}

std::string build_report_json(const BuildReport& r) {
  std::ostringstream o;
  o << "{\"calibration\": " << json_string(r.calibration)
    << ", \"calibration_texts\": " << r.calibration_texts
    << ", \"calibration_tokens\": " << r.calibration_tokens << ", \"truncated\": " << r.truncated
    << ", \"validation\": " << json_string(r.validation)
    << ", \"validation_texts\": " << r.validation_texts
    << ", \"output\": " << json_string(r.output_kind);
  if (r.pruning) {
    o << ", \"pruning\": {\"method\": " << json_string(std::string(prune_method_name(*r.pruning)));
    if (r.pruned_fp32) o << ", \"fp32_cosine\": " << cosine_json(*r.pruned_fp32);
    o << ", \"layers\": [";
    for (size_t i = 0; i < r.pruned.size(); ++i) {
      const PrunedLayer& p = r.pruned[i];
      o << (i ? ", " : "") << "{\"layer\": " << p.layer
        << ", \"site\": " << json_string(std::string(plan::site_name(p.site)))
        << ", \"error\": " << num("%.6g", p.error)
        << ", \"magnitude_error\": " << num("%.6g", p.magnitude_error) << "}";
    }
    o << "]}";
  }
  if (r.int8) {
    o << ", \"int8\": {\"gelu_clip\": " << num("%g", r.int8->quant.gelu_clip) << ", \"layers\": [";
    for (size_t i = 0; i < r.int8->sites.size(); ++i) {
      const SiteCalibration& c = r.int8->sites[i];
      o << (i ? ", " : "") << "{\"layer\": " << c.layer
        << ", \"site\": " << json_string(std::string(plan::site_name(c.site)))
        << ", \"raw_absmax\": " << num("%.6g", c.raw_absmax)
        << ", \"absmax\": " << num("%.6g", c.absmax)
        << ", \"threshold\": " << num("%.6g", c.threshold)
        << ", \"max_smooth\": " << num("%.6g", c.max_smooth) << "}";
    }
    o << "]}";
  }
  if (r.mixed) {
    const MixedPrecision& m = *r.mixed;
    auto list = [&](const std::vector<SiteSensitivity>& v) {
      o << "[";
      for (size_t i = 0; i < v.size(); ++i) {
        o << (i ? ", " : "") << "{\"layer\": " << v[i].layer
          << ", \"site\": " << json_string(std::string(plan::site_name(v[i].site)))
          << ", \"drop\": " << num("%.6g", v[i].drop) << "}";
      }
      o << "]";
    };
    o << ", \"mixed\": {\"all_int8_drop\": " << num("%.6g", m.all_int8_drop)
      << ", \"drop\": " << num("%.6g", m.drop)
      << ", \"reached\": " << (m.reached ? "true" : "false") << ", \"sensitivity\": ";
    list(m.sensitivity);
    o << ", \"kept_high\": ";
    list(m.kept_high);
    o << "}";
  }
  if (r.final_accuracy) o << ", \"plan_cosine\": " << cosine_json(*r.final_accuracy);
  o << ", \"seconds\": " << num("%.2f", r.seconds) << "}";
  return o.str();
}

}  // namespace kiln::quant
