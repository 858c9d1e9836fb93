#include "inspect_plan.h"

#include <chrono>
#include <cstdio>

#include "core/json.h"
#include "plan/plan_loader.h"

namespace kiln::cli {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) {
    if (!s.empty()) s += "x";
    s += std::to_string(d);
  }
  return s;
}

void print_quant(const plan::LoadedPlan& p) {
  const auto& q = p.quant.quant;
  std::printf("quantization   default %s, GELU clip %s\n",
              std::string(precision_name(p.quant.precision)).c_str(),
              q.gelu_clip > 0 ? std::to_string(q.gelu_clip).c_str() : "none");
  for (size_t l = 0; l < q.layers.size(); ++l) {
    std::string line;
    for (int s = 0; s < quant::kLinearSites; ++s) {
      const quant::LinearQuant& lq = q.layers[l].sites[s];
      line += "  " + std::string(plan::site_name(static_cast<quant::LinearSite>(s))) + " " +
              std::string(precision_name(lq.precision));
      if (lq.precision == Precision::kInt8) {
        line += lq.scaling == quant::ActivationScaling::kStaticPerTensor
                    ? " static(" + std::to_string(lq.input_scale) + ")"
                    : " dynamic";
      }
      if (!lq.smooth.empty()) line += " smooth";
      if (l < p.sparsity.size() && p.sparsity[l][s] == plan::Sparsity::kTwoFour) line += " 2:4";
    }
    std::printf("  layer %-3zu   %s\n", l, line.c_str());
  }
}

// The backend's "device" section: its "summary" lines (the section is the backend's JSON).
void print_device_record(const std::string& record) {
  if (record.empty()) return;
  core::json::Document doc;
  if (!core::json::parse(record, "device section", &doc).ok() || !doc.IsObject()) {
    std::printf("device         unreadable section (%zu B)\n", record.size());
    return;
  }
  auto backend = core::json::get_string_or(doc, "backend", "?");
  std::printf("device         %s decisions:\n", backend.ok() ? backend->c_str() : "?");
  if (const core::json::Value* lines = core::json::find(doc, "summary");
      lines != nullptr && lines->IsArray()) {
    for (const auto& line : lines->GetArray()) {
      if (line.IsString()) std::printf("  %s\n", line.GetString());
    }
  }
}

}  // namespace

int inspect_plan(const std::string& path, bool tensors, const EngineFlags& flags) {
  auto file = plan::PlanFile::open(path, {});
  if (!file.ok()) return fail(file.status());
  const plan::Header& h = (*file)->header();
  std::printf("plan           %s (%.1f MB), format %u, written by %s, checksum verified\n",
              path.c_str(), static_cast<double>(h.file_size) / 1e6, h.format_version,
              h.producer.c_str());
  std::printf("target         %s [%s], %s\n", h.backend.c_str(),
              h.features.empty() ? "any CPU" : plan::join_features(h.features).c_str(),
              (h.flags & plan::kFlagPackedWeights) != 0
                  ? ("weights pre-packed for " + h.packing_library).c_str()
                  : "weights row-major (portable)");
  std::printf("precision      %s\n", h.precision.c_str());
  for (const plan::Section& s : (*file)->sections()) {
    std::printf("  section %-10s @%-10llu %12llu B\n", s.name.c_str(),
                static_cast<unsigned long long>(s.offset), static_cast<unsigned long long>(s.size));
  }
  auto decoded = plan::decode_plan(*file);
  if (!decoded.ok()) return fail(decoded.status());
  const plan::LoadedPlan& p = *decoded;
  const model::ModelConfig& c = p.config;
  std::printf("model          %s (%s), head: %s, built from %s\n",
              std::string(architecture_name(c.architecture)).c_str(), c.hf_class.c_str(),
              std::string(task_name(c.task)).c_str(), p.model.source.c_str());
  std::printf("encoder        %lld layers, hidden %lld, %lld heads, ffn %lld, %s, %lld params\n",
              static_cast<long long>(c.num_layers), static_cast<long long>(c.hidden_size),
              static_cast<long long>(c.num_heads), static_cast<long long>(c.intermediate_size),
              std::string(activation_name(c.activation)).c_str(),
              static_cast<long long>(p.model.num_parameters));
  if (p.model.pooling.from_sentence_transformers) {
    std::printf("pooling        %s%s, max_seq_length %lld\n",
                std::string(pooling_mode_name(p.model.pooling.mode)).c_str(),
                p.model.pooling.normalize ? " + L2 normalize" : "",
                static_cast<long long>(p.model.pooling.max_seq_length));
  }
  if (p.tokenizer == nullptr) {
    std::printf("tokenizer      none (token-id inputs only)\n");
  } else {
    std::printf("tokenizer      %zu ids, pad id %d\n", p.tokenizer->vocab_size(),
                p.tokenizer->pad_id());
  }
  print_quant(p);
  print_device_record(p.device_record);
  if (tensors) {
    for (const plan::TensorInfo& t : (*file)->tensors()) {
      std::printf("  %-36s %-4s %-8s %-12s %10llu B%s\n", t.name.c_str(),
                  std::string(plan::tensor_type_name(t.type)).c_str(),
                  t.layout == plan::TensorLayout::kPacked ? "packed" : "rowmajor",
                  shape_string(t.shape).c_str(), static_cast<unsigned long long>(t.nbytes),
                  t.num_scales > 0 ? " +scales" : "");
    }
  }
  EngineOptions options;
  if (!flags.to_options(&options)) return 1;
  const auto start = std::chrono::steady_clock::now();
  auto engine = Engine::load(path, options);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!engine.ok()) {
    std::printf("layers         not loadable here: %s\n", engine.status().message().c_str());
    return 1;
  }
  std::printf("loaded for %s in %.0f ms:\n", options.device.c_str(), ms);
  for (const auto& line : (*engine)->describe_layers()) std::printf("  %s\n", line.c_str());
  return 0;
}

}  // namespace kiln::cli
