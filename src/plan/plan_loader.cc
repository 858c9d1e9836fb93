#include "plan/plan_loader.h"

#include <algorithm>
#include <future>

#include "core/half.h"
#include "plan/tensor_names.h"
#include "tokenizer/tokenizer_impl.h"

namespace kiln::plan {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Finds a tensor and checks its shape (and, for row-major tensors, that it is one of `types`).
class TensorSource {
 public:
  explicit TensorSource(const PlanFile& file) : file_(file) {}

  Result<const TensorInfo*> get(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorInfo* t = file_.find_tensor(name);
    if (t == nullptr) return data_loss("plan has no tensor '" + name + "'");
    if (t->shape != shape) {
      return data_loss("plan tensor '" + name + "' has shape " + shape_string(t->shape) +
                       " but the model needs " + shape_string(shape));
    }
    return t;
  }

  // A row-major tensor as float32 (F32 copied, BF16 and F16 widened).
  Result<std::vector<float>> floats(const std::string& name,
                                    const std::vector<int64_t>& shape) const {
    KILN_ASSIGN_OR_RETURN(const TensorInfo* t, get(name, shape));
    if (t->layout != TensorLayout::kRowMajor) {
      return data_loss("plan tensor '" + name + "' is packed; a row-major one was expected");
    }
    std::vector<float> out(static_cast<size_t>(t->numel()));
    if (t->type == TensorType::kF32) {
      std::memcpy(out.data(), t->data, t->nbytes);
    } else if (t->type == TensorType::kBF16 || t->type == TensorType::kF16) {
      const bool bf16 = t->type == TensorType::kBF16;
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, t->data + 2 * i, 2);
        out[i] = bf16 ? core::bf16_to_float(h) : core::fp16_to_float(h);
      }
    } else {
      // TODO(int8): INT8 weight storage is decided with the INT8 kernels.
      return unimplemented("plan tensor '" + name + "' is I8; this kiln reads F32 and BF16");
    }
    return out;
  }

  // A row-major F32 table used in place.
  Result<const float*> view(const std::string& name, const std::vector<int64_t>& shape) const {
    KILN_ASSIGN_OR_RETURN(const TensorInfo* t, get(name, shape));
    if (t->layout != TensorLayout::kRowMajor || t->type != TensorType::kF32) {
      return data_loss("plan tensor '" + name + "' must be row-major F32");
    }
    return reinterpret_cast<const float*>(t->data);
  }

 private:
  const PlanFile& file_;
};

Status read_norm(const TensorSource& src, const std::string& prefix, int64_t h,
                 model::NormWeights* out) {
  KILN_ASSIGN_OR_RETURN(out->gamma, src.floats(prefix + ".gamma", {h}));
  KILN_ASSIGN_OR_RETURN(out->beta, src.floats(prefix + ".beta", {h}));
  return ok_status();
}

// A linear layer: bias copied; weight either packed (returned as a view) or row-major (copied).
Status read_linear(const TensorSource& src, const std::string& prefix, int64_t out, int64_t in,
                   model::DenseWeights* dense, backend::PackedWeight* packed) {
  dense->out = out;
  dense->in = in;
  KILN_ASSIGN_OR_RETURN(dense->bias, src.floats(prefix + ".bias", {out}));
  KILN_ASSIGN_OR_RETURN(const TensorInfo* w, src.get(prefix + ".weight", {out, in}));
  if (w->layout == TensorLayout::kPacked && packed != nullptr) {
    *packed = {w->data, static_cast<size_t>(w->nbytes), w->packing};
    return ok_status();
  }
  KILN_ASSIGN_OR_RETURN(dense->weight, src.floats(prefix + ".weight", {out, in}));
  return ok_status();
}

Status read_weights(const PlanFile& file, const model::ModelConfig& c, LoadedPlan* plan,
                    backend::PrebuiltWeights* pre) {
  const TensorSource src(file);
  const int64_t h = c.hidden_size;
  model::EncoderWeights& w = plan->weights;
  KILN_ASSIGN_OR_RETURN(pre->word_embeddings, src.view(kWordEmbeddings, {c.vocab_size, h}));
  KILN_ASSIGN_OR_RETURN(pre->position_embeddings,
                        src.view(kPositionEmbeddings, {c.max_position_embeddings, h}));
  if (c.type_vocab_size > 0) {
    KILN_ASSIGN_OR_RETURN(pre->type_embeddings, src.view(kTypeEmbeddings, {c.type_vocab_size, h}));
  }
  KILN_RETURN_IF_ERROR(read_norm(src, kEmbeddingNorm, h, &w.embedding_norm));
  const int64_t inter = c.intermediate_size;
  using quant::LinearSite;
  for (int l = 0; l < static_cast<int>(c.num_layers); ++l) {
    model::LayerWeights& lw = w.layers.emplace_back();
    auto& packed = pre->linears.emplace_back();
    const struct {
      LinearSite site;
      model::DenseWeights* dense;
      int64_t out, in;
    } linears[] = {{LinearSite::kQkv, &lw.qkv, 3 * h, h},
                   {LinearSite::kAttnOut, &lw.attn_out, h, h},
                   {LinearSite::kFfnIn, &lw.ffn_in, inter, h},
                   {LinearSite::kFfnOut, &lw.ffn_out, h, inter}};
    for (const auto& lin : linears) {
      KILN_RETURN_IF_ERROR(read_linear(src, layer_prefix(l, site_name(lin.site)), lin.out, lin.in,
                                       lin.dense, &packed[static_cast<int>(lin.site)]));
    }
    KILN_RETURN_IF_ERROR(read_norm(src, layer_prefix(l, "attn_norm"), h, &lw.attn_norm));
    KILN_RETURN_IF_ERROR(read_norm(src, layer_prefix(l, "ffn_norm"), h, &lw.ffn_norm));
  }
  // The head runs on the host: copied.
  w.head.pre_activation = plan->model.head_activation;
  if (file.find_tensor("head.pre.weight") != nullptr) {
    KILN_RETURN_IF_ERROR(read_linear(src, "head.pre", h, h, &w.head.pre, nullptr));
  }
  if (const TensorInfo* out = file.find_tensor("head.out.weight")) {
    // Rows: one per label, or start/end for question answering.
    const int64_t rows = c.task == Task::kQuestionAnswering ? 2
                         : c.labels.empty()                 ? out->shape[0]
                                                            : static_cast<int64_t>(c.labels.size());
    KILN_RETURN_IF_ERROR(read_linear(src, "head.out", rows, h, &w.head.out, nullptr));
  }
  if (c.task != Task::kEmbed && w.head.out.empty()) {
    return data_loss("plan of a " + std::string(task_name(c.task)) + " model has no head");
  }
  w.num_parameters = plan->model.num_parameters;
  return ok_status();
}

Result<std::unique_ptr<Tokenizer>> make_tokenizer(const TokenizerRecord& t) {
  Result<tokenizer::TokenizerParts> parts =
      t.kind == TokenizerRecord::Kind::kJson
          ? tokenizer::parse_tokenizer_json(t.text)
          : tokenizer::bert_parts_from_vocab(t.text, t.lowercase);
  if (!parts.ok()) return parts.status().with_context("plan section 'tokenizer'");
  return tokenizer::make_tokenizer(std::move(parts).value());
}

}  // namespace

Status check_target(const Header& header, const backend::Device& device) {
  const std::string features = join_features(header.features);
  const std::string built_for =
      "plan built for " + header.backend + (features.empty() ? "" : " " + features);
  if (header.backend != device.name()) {
    return failed_precondition(built_for + "; this engine runs on " + std::string(device.name()));
  }
  const auto have = device.features();
  std::vector<std::string> missing;
  for (const auto& f : header.features) {
    if (std::find(have.begin(), have.end(), f) == have.end()) missing.push_back(f);
  }
  if (!missing.empty()) {
    return failed_precondition(built_for + "; this machine lacks " + join_features(missing));
  }
  if ((header.flags & kFlagPackedWeights) != 0) {
    const std::string here = device.target(Precision::kF32).packing_library;
    if (header.packing_library != here) {
      return failed_precondition("plan weights are packed for " + header.packing_library +
                                 "; this kiln uses " + (here.empty() ? "none" : here) +
                                 " (rebuild the plan here, or build it with --portable)");
    }
  }
  return ok_status();
}

namespace {

Result<std::unique_ptr<Tokenizer>> read_tokenizer(const PlanFile& file) {
  const std::string_view bytes = file.section_bytes(kSectionTokenizer);
  if (bytes.empty()) return std::unique_ptr<Tokenizer>();
  KILN_ASSIGN_OR_RETURN(auto record, decode_tokenizer(bytes));
  return make_tokenizer(record);
}

// Everything but the tokenizer.
Result<LoadedPlan> decode_model_and_weights(std::shared_ptr<const PlanFile> file) {
  LoadedPlan plan;
  KILN_ASSIGN_OR_RETURN(plan.model, decode_model(file->section_bytes(kSectionModel)));
  auto config = model::parse_config(plan.model.config_json);
  if (!config.ok()) return data_loss("plan's config.json: " + config.status().message());
  plan.config = std::move(config).value();
  model::ModelConfig& c = plan.config;
  c.task = plan.model.task;
  c.labels = plan.model.labels;
  if (c.hidden_size <= 0 || c.num_layers <= 0 || c.num_layers > 1024) {
    return data_loss("plan's config.json has an unusable shape");
  }
  KILN_ASSIGN_OR_RETURN(plan.quant, decode_quant(file->section_bytes(kSectionQuant), c.num_layers,
                                                 c.hidden_size, c.intermediate_size));
  KILN_ASSIGN_OR_RETURN(plan.sparsity,
                        decode_sparsity(file->section_bytes(kSectionSparsity), c.num_layers));
  auto pre = std::make_shared<backend::PrebuiltWeights>();
  KILN_RETURN_IF_ERROR(read_weights(*file, c, &plan, pre.get()));
  pre->owner = file;
  plan.prebuilt = std::move(pre);
  plan.device_record = std::string(file->section_bytes(kSectionDevice));
  plan.file = std::move(file);
  return plan;
}

}  // namespace

Result<LoadedPlan> decode_plan(std::shared_ptr<const PlanFile> file) {
  KILN_ASSIGN_OR_RETURN(auto tokenizer, read_tokenizer(*file));
  KILN_ASSIGN_OR_RETURN(auto plan, decode_model_and_weights(std::move(file)));
  plan.tokenizer = std::move(tokenizer);
  return plan;
}

Result<LoadedPlan> load_plan(const std::string& path, const backend::Device& device) {
  auto file = PlanFile::open(path, {.verify_checksums = false});
  if (!file.ok()) {
    // A structural error may come from corruption that the checksums name better.
    auto verified = PlanFile::open(path, {});
    return verified.ok() ? file.status() : verified.status();
  }
  const PlanFile& f = **file;
  Status s = f.verify_header();
  if (s.ok()) s = check_target(f.header(), device);
  if (!s.ok()) return s.with_context(path);
  // Building the tokenizer (tens of milliseconds for a 30k vocabulary) overlaps verifying the
  // body checksum; its result is used only if the checksum holds.
  auto tokenizer = std::async(std::launch::async, [&f] { return read_tokenizer(f); });
  s = f.verify_checksums();
  auto tok = tokenizer.get();
  if (!s.ok()) return s.with_context(path);
  if (!tok.ok()) return tok.status().with_context(path);
  auto plan = decode_model_and_weights(*file);
  if (!plan.ok()) return plan.status().with_context(path);
  plan->tokenizer = std::move(tok).value();
  return plan;
}

}  // namespace kiln::plan
