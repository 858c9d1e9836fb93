#include "plan/plan_builder.h"

#include <algorithm>
#include <cmath>

#include "backend/device.h"
#include "core/half.h"
#include "core/json.h"
#include "core/mapped_file.h"
#include "model/model_dir.h"
#include "model/safetensors.h"
#include "plan/plan_writer.h"
#include "plan/tensor_names.h"

namespace kiln::plan {

namespace {

constexpr Precision kOrder[] = {Precision::kInt8, Precision::kFp8, Precision::kF16,
                                Precision::kBF16, Precision::kF32};

std::shared_ptr<const quant::ModelQuant> uniform_quant(Precision p, int64_t layers) {
  auto q = std::make_shared<quant::ModelQuant>();
  q->layers.resize(static_cast<size_t>(layers));
  for (auto& l : q->layers) {
    for (auto& s : l.sites) s.precision = p;
  }
  return q;
}

Result<std::optional<ModelSource::TokenizerText>> read_tokenizer(const std::string& dir) {
  ModelSource::TokenizerText t;
  if (core::file_exists(dir + "/tokenizer.json")) {
    KILN_ASSIGN_OR_RETURN(t.text, core::read_file(dir + "/tokenizer.json"));
    return std::optional(std::move(t));
  }
  if (!core::file_exists(dir + "/vocab.txt")) return std::optional<ModelSource::TokenizerText>();
  t.kind = TokenizerRecord::Kind::kVocab;
  KILN_ASSIGN_OR_RETURN(t.text, core::read_file(dir + "/vocab.txt"));
  // As Tokenizer::from_model_dir: tokenizer_config.json's do_lower_case, default true.
  const std::string config_path = dir + "/tokenizer_config.json";
  if (core::file_exists(config_path)) {
    KILN_ASSIGN_OR_RETURN(std::string text, core::read_file(config_path));
    core::json::Document doc;
    KILN_RETURN_IF_ERROR(core::json::parse(text, config_path, &doc));
    KILN_ASSIGN_OR_RETURN(t.lowercase, core::json::get_bool_or(doc, "do_lower_case", true));
  }
  return std::optional(std::move(t));
}

std::vector<uint8_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = core::float_to_bf16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

std::vector<uint8_t> to_fp16(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * 2);
  for (size_t i = 0; i < v.size(); ++i) {
    const uint16_t h = core::float_to_fp16(v[i]);
    std::memcpy(out.data() + 2 * i, &h, 2);
  }
  return out;
}

TensorType storage_type(Precision p) {
  // TODO(int8): INT8 layers are stored as F32 until the INT8 kernels define their storage
  // (int8 weights + per-channel scales, TensorEntry::num_scales). FP8 layers are stored as FP16
  // and quantized to E4M3 per output channel when the plan loads (one kernel per weight,
  // deterministic).
  return p == Precision::kBF16                          ? TensorType::kBF16
         : p == Precision::kF16 || p == Precision::kFp8 ? TensorType::kF16
                                                        : TensorType::kF32;
}

// Adds the F32 tensors of a plain vector; the source outlives the writer.
void add_f32(PlanWriter* w, std::string name, const std::vector<float>& v,
             std::vector<int64_t> shape) {
  TensorEntry e;
  e.name = std::move(name);
  e.shape = std::move(shape);
  e.nbytes = v.size() * sizeof(float);
  w->add_tensor(std::move(e), v.data());
}

void add_dense(PlanWriter* w, const std::string& prefix, const model::DenseWeights& d, Precision p,
               const backend::PackedWeight* packed) {
  add_f32(w, prefix + ".bias", d.bias, {d.out});
  TensorEntry e;
  e.name = prefix + ".weight";
  e.type = storage_type(p);
  e.shape = {d.out, d.in};
  if (packed != nullptr) {
    if (p == Precision::kInt8) e.type = TensorType::kI8;
    e.layout = TensorLayout::kPacked;
    e.packing = packed->layout;
    e.nbytes = packed->bytes;
    w->add_tensor(std::move(e), packed->data);
  } else if (e.type == TensorType::kBF16) {
    w->add_tensor(std::move(e), to_bf16(d.weight));
  } else if (e.type == TensorType::kF16) {
    w->add_tensor(std::move(e), to_fp16(d.weight));
  } else {
    add_f32(w, e.name, d.weight, e.shape);
  }
}

}  // namespace

std::string precision_summary(Precision base, const quant::ModelQuant& quant) {
  std::string out;
  for (Precision p : kOrder) {
    bool used = quant.layers.empty() && p == base;
    for (const auto& l : quant.layers) {
      for (const auto& s : l.sites) used = used || s.precision == p;
    }
    if (!used) continue;
    if (!out.empty()) out += '+';
    out += precision_name(p);
  }
  return out;
}

Result<ModelSource> read_model_dir(const std::string& dir, const std::string& base_model) {
  KILN_ASSIGN_OR_RETURN(model::ModelDir m, model::read_model_dir(dir, base_model));
  ModelSource src;
  src.dir = dir;
  src.config_json = std::move(m.config_json);
  src.config = std::move(m.config);
  src.pooling = m.pooling;
  KILN_ASSIGN_OR_RETURN(src.tokenizer, read_tokenizer(m.tokenizer_dir));
  src.weights = std::move(m.weights);
  return src;
}

Status write_plan(const ModelSource& src, const BuildOptions& options, const std::string& path) {
  const model::ModelConfig& c = src.config;
  KILN_ASSIGN_OR_RETURN(const backend::Device* device, backend::find_device(options.device));
  auto quant = options.quant ? options.quant : uniform_quant(options.precision, c.num_layers);
  if (static_cast<int64_t>(quant->layers.size()) != c.num_layers) {
    return invalid_argument("quantization has " + std::to_string(quant->layers.size()) +
                            " layers; the model has " + std::to_string(c.num_layers));
  }
  // FP16 storage (fp16 and fp8 layers) holds |w| <= 65504: a larger weight would become
  // infinity.
  for (size_t l = 0; l < src.weights.layers.size(); ++l) {
    for (int s = 0; s < quant::kLinearSites; ++s) {
      const Precision sp = quant->layers[l].sites[s].precision;
      if (sp != Precision::kF16 && sp != Precision::kFp8) continue;
      const auto site = static_cast<quant::LinearSite>(s);
      for (float v : quant::site_weights(src.weights.layers[l], site).weight) {
        if (!(std::fabs(v) <= 65504.0f)) {
          return invalid_argument(
              "layer " + std::to_string(l) + " " + std::string(site_name(site)) + " has weight " +
              std::to_string(v) + ", beyond what fp16 holds (65504); build in bf16");
        }
      }
    }
  }
  // Compiling checks the device supports every precision, and packs the weights.
  backend::ExecutorOptions eo;
  eo.precision = options.precision;
  eo.quant = quant;
  eo.num_threads = options.num_threads;
  eo.autotune = options.autotune;
  eo.autotune_max_tokens = options.autotune_max_tokens;
  eo.fast_gelu = options.fast_gelu;
  KILN_ASSIGN_OR_RETURN(auto executor, device->compile(c, src.weights, eo));
  const backend::PackedLinears packed =
      options.prepack ? executor->packed_linears() : backend::PackedLinears();
  const bool use_packed = static_cast<int64_t>(packed.size()) == c.num_layers;

  Header header;
  header.backend = std::string(device->name());
  header.precision = precision_summary(options.precision, *quant);
  header.producer = "kiln " KILN_VERSION;
  for (Precision p : kOrder) {
    if (header.precision.find(precision_name(p)) == std::string::npos) continue;
    const backend::DeviceTarget target = device->target(p);
    auto needed = target.features;
    if (use_packed)
      needed.insert(needed.end(), target.packing_features.begin(), target.packing_features.end());
    for (const auto& f : needed) {
      if (std::find(header.features.begin(), header.features.end(), f) == header.features.end()) {
        header.features.push_back(f);
      }
    }
  }
  if (use_packed) {
    header.flags |= kFlagPackedWeights;
    header.packing_library = device->target(options.precision).packing_library;
  }
  PlanWriter w(header);
  ModelRecord record{src.config_json,
                     c.task,
                     c.labels,
                     src.pooling,
                     src.weights.head.pre_activation,
                     src.weights.num_parameters,
                     src.dir};
  w.add_section(std::string(kSectionModel), encode_model(record));
  if (src.tokenizer) {
    w.add_section(
        std::string(kSectionTokenizer),
        encode_tokenizer(src.tokenizer->kind, src.tokenizer->lowercase, src.tokenizer->text));
  }
  w.add_section(std::string(kSectionQuant), encode_quant({options.precision, *quant}));
  SparsityRecord sparsity = options.sparsity;
  if (sparsity.empty()) sparsity.resize(static_cast<size_t>(c.num_layers), {});
  w.add_section(std::string(kSectionSparsity), encode_sparsity(sparsity));
  if (std::string record = executor->device_record(); !record.empty()) {
    w.add_section(std::string(kSectionDevice), std::move(record));
  }

  const model::EncoderWeights& wt = src.weights;
  const int64_t h = c.hidden_size;
  add_f32(&w, kWordEmbeddings, wt.word_embeddings, {c.vocab_size, h});
  add_f32(&w, kPositionEmbeddings, wt.position_embeddings, {c.max_position_embeddings, h});
  if (c.type_vocab_size > 0)
    add_f32(&w, kTypeEmbeddings, wt.type_embeddings, {c.type_vocab_size, h});
  add_f32(&w, std::string(kEmbeddingNorm) + ".gamma", wt.embedding_norm.gamma, {h});
  add_f32(&w, std::string(kEmbeddingNorm) + ".beta", wt.embedding_norm.beta, {h});
  for (int l = 0; l < static_cast<int>(c.num_layers); ++l) {
    const model::LayerWeights& lw = wt.layers[static_cast<size_t>(l)];
    for (int s = 0; s < quant::kLinearSites; ++s) {
      const auto site = static_cast<quant::LinearSite>(s);
      add_dense(&w, layer_prefix(l, site_name(site)), quant::site_weights(lw, site),
                quant->layers[static_cast<size_t>(l)].sites[s].precision,
                use_packed ? &packed[static_cast<size_t>(l)][s] : nullptr);
    }
    for (const auto& [name, norm] :
         {std::pair{"attn_norm", &lw.attn_norm}, std::pair{"ffn_norm", &lw.ffn_norm}}) {
      add_f32(&w, layer_prefix(l, name) + ".gamma", norm->gamma, {h});
      add_f32(&w, layer_prefix(l, name) + ".beta", norm->beta, {h});
    }
  }
  // The head runs on the host in float32.
  if (!wt.head.pre.empty()) add_dense(&w, "head.pre", wt.head.pre, Precision::kF32, nullptr);
  if (!wt.head.out.empty()) add_dense(&w, "head.out", wt.head.out, Precision::kF32, nullptr);
  return w.write(path);  // `executor` (and so the packed bytes) is alive until here
}

}  // namespace kiln::plan
