#include "model/config.h"

#include <charconv>

#include "core/json.h"
#include "core/mapped_file.h"

namespace kiln::model {

namespace json = core::json;

namespace {

// Sizes beyond these are not BERT-family encoders; refusing them early keeps a hostile
// config.json from asking for absurd allocations.
constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxLayers = 512;
constexpr int64_t kMaxVocab = 1 << 24;

Status require_range(std::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi) {
    return invalid_argument("config.json: " + std::string(field) + " = " + std::to_string(value) +
                            " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return ok_status();
}

Result<int64_t> required_int(const json::Value& doc, std::string_view key) {
  KILN_ASSIGN_OR_RETURN(auto v, json::get_int(doc, key));
  if (!v) return invalid_argument("config.json: missing \"" + std::string(key) + "\"");
  return *v;
}

Result<Activation> parse_activation(const std::string& act) {
  if (act == "gelu" || act == "gelu_python") return Activation::kGeluErf;
  if (act == "gelu_new" || act == "gelu_pytorch_tanh" || act == "gelu_fast") {
    return Activation::kGeluTanh;
  }
  if (act == "relu") return Activation::kRelu;
  return unimplemented("config.json: activation \"" + act + "\" is not supported");
}

Result<Task> task_from_class(const std::string& cls) {
  auto ends_with = [&](std::string_view s) {
    return cls.size() >= s.size() && cls.compare(cls.size() - s.size(), s.size(), s) == 0;
  };
  if (cls.empty() || ends_with("Model") || ends_with("ForMaskedLM") ||
      ends_with("ForPreTraining")) {
    return Task::kEmbed;  // encoder output only; LM heads are ignored
  }
  if (ends_with("ForSequenceClassification")) return Task::kSequenceClassification;
  if (ends_with("ForTokenClassification")) return Task::kTokenClassification;
  if (ends_with("ForQuestionAnswering")) return Task::kQuestionAnswering;
  return unimplemented("config.json: architecture \"" + cls + "\" is not supported");
}

Status parse_labels(const json::Value& doc, ModelConfig* c) {
  const json::Value* id2label = json::find(doc, "id2label");
  if (id2label == nullptr || !id2label->IsObject()) return ok_status();
  std::vector<std::string> labels(id2label->MemberCount());
  for (const auto& m : id2label->GetObject()) {
    const std::string key = m.name.GetString();
    size_t idx = 0;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), idx);
    if (ec != std::errc() || end != key.data() + key.size()) {
      return invalid_argument("config.json: id2label key \"" + key + "\" is not an index");
    }
    if (idx >= labels.size() || !m.value.IsString()) {
      return invalid_argument("config.json: id2label is not a dense list of strings");
    }
    labels[idx] = m.value.GetString();
  }
  c->labels = std::move(labels);
  return ok_status();
}

Status parse_bert_like(const json::Value& doc, ModelConfig* c) {
  KILN_ASSIGN_OR_RETURN(c->hidden_size, required_int(doc, "hidden_size"));
  KILN_ASSIGN_OR_RETURN(c->num_layers, required_int(doc, "num_hidden_layers"));
  KILN_ASSIGN_OR_RETURN(c->num_heads, required_int(doc, "num_attention_heads"));
  KILN_ASSIGN_OR_RETURN(c->intermediate_size, required_int(doc, "intermediate_size"));
  KILN_ASSIGN_OR_RETURN(c->max_position_embeddings,
                        json::get_int_or(doc, "max_position_embeddings", 512));
  KILN_ASSIGN_OR_RETURN(c->type_vocab_size, json::get_int_or(doc, "type_vocab_size", 2));
  KILN_ASSIGN_OR_RETURN(c->layer_norm_eps, json::get_double_or(doc, "layer_norm_eps", 1e-12));
  KILN_ASSIGN_OR_RETURN(c->pad_token_id, json::get_int_or(doc, "pad_token_id", 0));
  KILN_ASSIGN_OR_RETURN(auto act, json::get_string_or(doc, "hidden_act", "gelu"));
  KILN_ASSIGN_OR_RETURN(c->activation, parse_activation(act));
  KILN_ASSIGN_OR_RETURN(auto pos, json::get_string_or(doc, "position_embedding_type", "absolute"));
  if (pos != "absolute") {
    return unimplemented("config.json: position_embedding_type \"" + pos +
                         "\" is not supported (only \"absolute\")");
  }
  return ok_status();
}

Status parse_distilbert(const json::Value& doc, ModelConfig* c) {
  KILN_ASSIGN_OR_RETURN(c->hidden_size, required_int(doc, "dim"));
  KILN_ASSIGN_OR_RETURN(c->num_layers, required_int(doc, "n_layers"));
  KILN_ASSIGN_OR_RETURN(c->num_heads, required_int(doc, "n_heads"));
  KILN_ASSIGN_OR_RETURN(c->intermediate_size, required_int(doc, "hidden_dim"));
  KILN_ASSIGN_OR_RETURN(c->max_position_embeddings,
                        json::get_int_or(doc, "max_position_embeddings", 512));
  KILN_ASSIGN_OR_RETURN(c->pad_token_id, json::get_int_or(doc, "pad_token_id", 0));
  KILN_ASSIGN_OR_RETURN(auto act, json::get_string_or(doc, "activation", "gelu"));
  KILN_ASSIGN_OR_RETURN(c->activation, parse_activation(act));
  c->type_vocab_size = 0;     // DistilBERT has no token type embeddings
  c->layer_norm_eps = 1e-12;  // fixed in the reference implementation
  return ok_status();
}

}  // namespace

Result<ModelConfig> parse_config(std::string_view json_text) {
  json::Document doc;
  KILN_RETURN_IF_ERROR(json::parse(json_text, "config.json", &doc));
  if (!doc.IsObject()) return invalid_argument("config.json: not a JSON object");
  ModelConfig c;
  KILN_ASSIGN_OR_RETURN(c.model_type, json::get_string_or(doc, "model_type", ""));
  if (const json::Value* archs = json::find(doc, "architectures");
      archs != nullptr && archs->IsArray() && !archs->Empty() && (*archs)[0].IsString()) {
    c.hf_class = (*archs)[0].GetString();
  }
  KILN_ASSIGN_OR_RETURN(c.task, task_from_class(c.hf_class));
  if (c.model_type == "bert") {
    c.architecture = Architecture::kBert;
    KILN_RETURN_IF_ERROR(parse_bert_like(doc, &c));
  } else if (c.model_type == "roberta" || c.model_type == "xlm-roberta") {
    c.architecture = c.model_type == "roberta" ? Architecture::kRoberta : Architecture::kXlmRoberta;
    KILN_RETURN_IF_ERROR(parse_bert_like(doc, &c));
    KILN_RETURN_IF_ERROR(require_range("pad_token_id", c.pad_token_id, 0, kMaxVocab));
    c.position_offset = c.pad_token_id + 1;  // create_position_ids_from_input_ids
  } else if (c.model_type == "distilbert") {
    c.architecture = Architecture::kDistilBert;
    KILN_RETURN_IF_ERROR(parse_distilbert(doc, &c));
  } else {
    return unimplemented("config.json: model_type \"" + c.model_type +
                         "\" is not supported (bert, distilbert, roberta, xlm-roberta)");
  }
  KILN_ASSIGN_OR_RETURN(c.vocab_size, required_int(doc, "vocab_size"));
  KILN_RETURN_IF_ERROR(require_range("vocab_size", c.vocab_size, 1, kMaxVocab));
  KILN_RETURN_IF_ERROR(require_range("hidden_size", c.hidden_size, 1, kMaxDim));
  KILN_RETURN_IF_ERROR(require_range("num_hidden_layers", c.num_layers, 1, kMaxLayers));
  KILN_RETURN_IF_ERROR(require_range("num_attention_heads", c.num_heads, 1, c.hidden_size));
  KILN_RETURN_IF_ERROR(require_range("intermediate_size", c.intermediate_size, 1, 8 * kMaxDim));
  KILN_RETURN_IF_ERROR(require_range("max_position_embeddings", c.max_position_embeddings,
                                     c.position_offset + 1, kMaxDim));
  KILN_RETURN_IF_ERROR(require_range("type_vocab_size", c.type_vocab_size, 0, 1 << 10));
  KILN_RETURN_IF_ERROR(require_range("pad_token_id", c.pad_token_id, 0, c.vocab_size - 1));
  if (c.hidden_size % c.num_heads != 0) {
    return invalid_argument("config.json: hidden size " + std::to_string(c.hidden_size) +
                            " is not a multiple of the " + std::to_string(c.num_heads) +
                            " attention heads");
  }
  if (!(c.layer_norm_eps > 0 && c.layer_norm_eps < 1)) {
    return invalid_argument("config.json: layer_norm_eps must be in (0, 1)");
  }
  KILN_RETURN_IF_ERROR(parse_labels(doc, &c));
  if (const json::Value* p = json::find(doc, "problem_type"); p != nullptr && p->IsString()) {
    c.multi_label = std::string_view(p->GetString()) == "multi_label_classification";
  }
  return c;
}

Result<PoolingConfig> load_pooling_config(const std::string& model_dir) {
  PoolingConfig p;
  if (auto st = core::read_file(model_dir + "/sentence_bert_config.json"); st.ok()) {
    json::Document doc;
    KILN_RETURN_IF_ERROR(json::parse(*st, "sentence_bert_config.json", &doc));
    KILN_ASSIGN_OR_RETURN(p.max_seq_length, json::get_int_or(doc, "max_seq_length", 0));
  }
  auto modules_text = core::read_file(model_dir + "/modules.json");
  if (!modules_text.ok()) return p;  // not a sentence-transformers model: defaults
  json::Document modules;
  KILN_RETURN_IF_ERROR(json::parse(*modules_text, "modules.json", &modules));
  if (!modules.IsArray()) return invalid_argument("modules.json: not a JSON array");
  p.from_sentence_transformers = true;
  for (const auto& m : modules.GetArray()) {
    KILN_ASSIGN_OR_RETURN(auto type, json::get_string_or(m, "type", ""));
    KILN_ASSIGN_OR_RETURN(auto path, json::get_string_or(m, "path", ""));
    if (type.find("Normalize") != std::string::npos) {
      p.normalize = true;
    } else if (type.find("Pooling") != std::string::npos) {
      const std::string file = model_dir + "/" + path + "/config.json";
      KILN_ASSIGN_OR_RETURN(auto text, core::read_file(file));
      json::Document doc;
      KILN_RETURN_IF_ERROR(json::parse(text, file, &doc));
      int modes = 0;
      const std::pair<const char*, PoolingMode> kModes[] = {
          {"pooling_mode_cls_token", PoolingMode::kCls},
          {"pooling_mode_mean_tokens", PoolingMode::kMean},
          {"pooling_mode_max_tokens", PoolingMode::kMax},
          {"pooling_mode_mean_sqrt_len_tokens", PoolingMode::kMeanSqrtLen}};
      for (const auto& [key, mode] : kModes) {
        KILN_ASSIGN_OR_RETURN(bool on, json::get_bool_or(doc, key, false));
        if (on) {
          p.mode = mode;
          ++modes;
        }
      }
      if (modes != 1) {
        return unimplemented(file + ": exactly one pooling mode must be enabled (found " +
                             std::to_string(modes) + ")");
      }
    } else if (type.find("Transformer") == std::string::npos) {
      return unimplemented("modules.json: module type \"" + type + "\" is not supported");
    }
  }
  return p;
}

}  // namespace kiln::model
