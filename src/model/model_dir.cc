#include "model/model_dir.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/json.h"
#include "core/mapped_file.h"

namespace kiln::model {

namespace {

bool has_tokenizer(const std::string& dir) {
  return core::file_exists(dir + "/tokenizer.json") || core::file_exists(dir + "/vocab.txt");
}

Result<std::string> find_base(const std::string& dir, const AdapterConfig& a,
                              const std::string& base_override) {
  auto is_model = [](const std::string& d) { return core::file_exists(d + "/config.json"); };
  if (!base_override.empty()) {
    if (is_model(base_override)) return base_override;
    return not_found("base model " + base_override + " has no config.json");
  }
  if (a.base_model.empty()) {
    return invalid_argument(dir +
                            "/adapter_config.json names no base_model_name_or_path; give the "
                            "base model (kiln --base, or parameter base_model in config.pbtxt)");
  }
  const std::string near = dir + "/" + a.base_model;
  if (a.base_model.front() != '/' && !is_model(a.base_model) && is_model(near)) return near;
  if (is_model(a.base_model)) return a.base_model;
  return not_found("the adapter's base model \"" + a.base_model +
                   "\" is not a model directory (relative to the working directory or to " + dir +
                   "); give it with --base or parameter base_model");
}

// A config.json with the adapter's task class and, for classifiers, labels LABEL_0..LABEL_{n-1}
// unless `base` already names n labels.
Result<std::string> adapted_config_json(const std::string& base_json, const ModelConfig& base,
                                        Task task, int64_t num_labels) {
  core::json::Document doc;
  KILN_RETURN_IF_ERROR(core::json::parse(base_json, "config.json", &doc));
  auto& alloc = doc.GetAllocator();
  rapidjson::Value archs(rapidjson::kArrayType);
  const std::string cls = task_class_name(base, task);
  archs.PushBack(rapidjson::Value(cls.c_str(), alloc), alloc);
  doc.RemoveMember("architectures");
  doc.AddMember("architectures", archs, alloc);
  const bool classifier =
      task == Task::kSequenceClassification || task == Task::kTokenClassification;
  if (classifier && static_cast<int64_t>(base.labels.size()) != num_labels) {
    rapidjson::Value id2label(rapidjson::kObjectType), label2id(rapidjson::kObjectType);
    for (int64_t i = 0; i < num_labels; ++i) {
      const std::string key = std::to_string(i), name = "LABEL_" + key;
      id2label.AddMember(rapidjson::Value(key.c_str(), alloc),
                         rapidjson::Value(name.c_str(), alloc), alloc);
      label2id.AddMember(rapidjson::Value(name.c_str(), alloc), rapidjson::Value(i), alloc);
    }
    doc.RemoveMember("id2label");
    doc.RemoveMember("label2id");
    doc.AddMember("id2label", id2label, alloc);
    doc.AddMember("label2id", label2id, alloc);
  }
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

// Everything but the linear matrices and embedding tables: what an adapter kept apart from its
// base needs of its own.
EncoderWeights small_parts(const EncoderWeights& w) {
  EncoderWeights s;
  s.embedding_norm = w.embedding_norm;
  s.num_parameters = w.num_parameters;
  for (const auto& l : w.layers) {
    LayerWeights c;
    for (auto [from, to] : {std::pair{&l.qkv, &c.qkv},
                            {&l.attn_out, &c.attn_out},
                            {&l.ffn_in, &c.ffn_in},
                            {&l.ffn_out, &c.ffn_out}}) {
      to->bias = from->bias;
      to->out = from->out;
      to->in = from->in;
    }
    c.attn_norm = l.attn_norm;
    c.ffn_norm = l.ffn_norm;
    s.layers.push_back(std::move(c));
  }
  return s;
}

Status check_same_encoder(const ModelConfig& a, const ModelConfig& b, const std::string& what) {
  if (a.model_type != b.model_type || a.hidden_size != b.hidden_size ||
      a.num_layers != b.num_layers || a.num_heads != b.num_heads ||
      a.intermediate_size != b.intermediate_size || a.vocab_size != b.vocab_size) {
    return invalid_argument(what +
                            " describes another encoder than the base model (model type, "
                            "hidden size, layers, heads, intermediate size or vocabulary)");
  }
  return ok_status();
}

Result<ModelDir> read_adapter_dir(const std::string& dir, const std::string& base_override,
                                  bool keep_apart) {
  ModelDir m;
  m.dir = dir;
  KILN_ASSIGN_OR_RETURN(auto adapter_text, core::read_file(dir + "/adapter_config.json"));
  auto adapter = parse_adapter_config(adapter_text);
  if (!adapter.ok()) return adapter.status().with_context(dir);
  m.adapter = *adapter;
  KILN_ASSIGN_OR_RETURN(m.base_dir, find_base(dir, *adapter, base_override));
  m.tokenizer_dir = has_tokenizer(dir) ? dir : m.base_dir;
  KILN_ASSIGN_OR_RETURN(auto base_json, core::read_file(m.base_dir + "/config.json"));
  KILN_ASSIGN_OR_RETURN(ModelConfig base_config, parse_config(base_json));
  // The adapted model's config: the adapter's own config.json (a trainer saving the task
  // model's config), else the base's; its class follows the adapter's task_type.
  const bool own_config = core::file_exists(dir + "/config.json");
  std::string source_json = base_json;
  ModelConfig source = base_config;
  if (own_config) {
    KILN_ASSIGN_OR_RETURN(source_json, core::read_file(dir + "/config.json"));
    auto parsed = parse_config(source_json);
    if (!parsed.ok()) return parsed.status().with_context(dir);
    source = std::move(parsed).value();
    KILN_RETURN_IF_ERROR(check_same_encoder(source, base_config, dir + "/config.json"));
    if (!adapter->task_type.empty() && source.task != Task::kEmbed &&
        source.task != adapter->task) {
      return invalid_argument(dir + ": config.json's " + source.hf_class +
                              " is not the adapter's task_type " + adapter->task_type);
    }
  } else {
    source.labels.clear();  // the base's id2label does not describe the adapter's head
  }
  m.config = source;
  if (!adapter->task_type.empty()) m.config.task = adapter->task;
  KILN_ASSIGN_OR_RETURN(auto base_file, SafeTensors::open(m.base_dir + "/model.safetensors"));
  KILN_ASSIGN_OR_RETURN(auto adapter_file, SafeTensors::open(dir + "/adapter_model.safetensors"));
  // The base as a bare encoder: its own head (if any) is replaced by the adapter's.
  ModelConfig encoder_only = m.config;
  encoder_only.task = Task::kEmbed;
  auto weights = load_weights(base_file, encoder_only);
  if (!weights.ok()) return weights.status().with_context(m.base_dir + "/model.safetensors");
  m.weights = std::move(weights).value();
  if (keep_apart) m.adapted = small_parts(m.weights);
  Status merged =
      merge_adapter(adapter_file, *adapter, m.config, base_file,
                    keep_apart ? &*m.adapted : &m.weights, keep_apart ? &m.lora : nullptr);
  if (!merged.ok()) return merged.with_context(dir + "/adapter_model.safetensors");
  const int64_t head_rows = keep_apart ? m.adapted->head.out.out : m.weights.head.out.out;
  if (own_config && source.task == m.config.task) {
    m.config_json = std::move(source_json);
  } else {
    KILN_ASSIGN_OR_RETURN(m.config_json,
                          adapted_config_json(source_json, source, m.config.task, head_rows));
    KILN_ASSIGN_OR_RETURN(m.config, parse_config(m.config_json));
  }
  if (m.config.task == Task::kEmbed) {
    KILN_ASSIGN_OR_RETURN(m.pooling, load_pooling_config(m.base_dir));
  }
  return m;
}

}  // namespace

Result<ModelDir> read_model_dir(const std::string& dir, const std::string& base_override,
                                bool keep_apart) {
  if (is_adapter_dir(dir)) return read_adapter_dir(dir, base_override, keep_apart);
  ModelDir m;
  m.dir = m.base_dir = m.tokenizer_dir = dir;
  KILN_ASSIGN_OR_RETURN(m.config_json, core::read_file(dir + "/config.json"));
  KILN_ASSIGN_OR_RETURN(m.config, parse_config(m.config_json));
  KILN_ASSIGN_OR_RETURN(m.pooling, load_pooling_config(dir));
  KILN_ASSIGN_OR_RETURN(auto file, SafeTensors::open(dir + "/model.safetensors"));
  auto weights = load_weights(file, m.config);
  if (!weights.ok()) return weights.status().with_context(dir + "/model.safetensors");
  m.weights = std::move(weights).value();
  return m;
}

}  // namespace kiln::model
