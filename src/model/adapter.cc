#include "model/adapter.h"

#include <cmath>
#include <set>

#include "core/json.h"
#include "core/mapped_file.h"

namespace kiln::model {

namespace json = core::json;

namespace {

// What PEFT puts before the wrapped model's parameter names in adapter_model.safetensors.
constexpr std::string_view kOuter = "base_model.model.";

Result<Task> task_from_type(const std::string& type) {
  if (type.empty() || type == "FEATURE_EXTRACTION") return Task::kEmbed;
  if (type == "SEQ_CLS") return Task::kSequenceClassification;
  if (type == "TOKEN_CLS") return Task::kTokenClassification;
  if (type == "QUESTION_ANS") return Task::kQuestionAnswering;
  return unimplemented("adapter_config.json: task_type \"" + type +
                       "\" is not an encoder task (SEQ_CLS, TOKEN_CLS, QUESTION_ANS, "
                       "FEATURE_EXTRACTION)");
}

// A refused option: present with a value other than its neutral one.
Status refuse_if(bool present, std::string_view field, std::string_view why) {
  if (!present) return ok_status();
  return unimplemented("adapter_config.json: " + std::string(field) + " is not supported (" +
                       std::string(why) + ")");
}

bool non_empty_object(const json::Value& doc, std::string_view key) {
  const json::Value* v = json::find(doc, key);
  return v != nullptr && v->IsObject() && v->MemberCount() > 0;
}

// The encoder's name prefix inside the adapter: "base_model.model.bert." for a task model
// (AutoModelFor...), "base_model.model." for a bare encoder (AutoModel).
std::string encoder_prefix(const SafeTensors& adapter, const ModelConfig& c) {
  std::string nested(kOuter);
  switch (c.architecture) {
    case Architecture::kBert:
      nested += "bert.";
      break;
    case Architecture::kDistilBert:
      nested += "distilbert.";
      break;
    case Architecture::kRoberta:
    case Architecture::kXlmRoberta:
      nested += "roberta.";
      break;
  }
  for (const auto& t : adapter.tensors()) {
    if (t.name.starts_with(nested)) return nested;
  }
  return std::string(kOuter);
}

// The factors of one module: A [r, in] and B [out, r] with the scale folded into B.
Result<LoraPair> read_pair(const TensorView& a, const TensorView& b, const std::string& module,
                           double alpha, bool rslora, int64_t in, int64_t out) {
  if (a.shape.size() != 2 || b.shape.size() != 2 || a.shape[1] != in || b.shape[0] != out ||
      a.shape[0] != b.shape[1] || a.shape[0] < 1) {
    return invalid_argument("adapter tensors of \"" + module + "\" have shapes " + a.describe() +
                            " (lora_A) and " + b.describe() + " (lora_B); the layer needs [r, " +
                            std::to_string(in) + "] and [" + std::to_string(out) + ", r]");
  }
  LoraPair p;
  p.rank = a.shape[0];
  p.in = in;
  p.out = out;
  const float scale = static_cast<float>(
      alpha / (rslora ? std::sqrt(static_cast<double>(p.rank)) : double(p.rank)));
  KILN_ASSIGN_OR_RETURN(p.a, to_float32(a));
  KILN_ASSIGN_OR_RETURN(p.b, to_float32(b));
  for (float& v : p.b) v *= scale;
  return p;
}

// W[row0 .. row0 + out) += B A.
void merge_pair(const LoraPair& p, int64_t row0, DenseWeights* d) {
  for (int64_t o = 0; o < p.out; ++o) {
    float* w = d->weight.data() + (row0 + o) * p.in;
    for (int64_t k = 0; k < p.rank; ++k) {
      const float s = p.b[static_cast<size_t>(o * p.rank + k)];
      const float* arow = p.a.data() + k * p.in;
      for (int64_t j = 0; j < p.in; ++j) w[j] += s * arow[j];
    }
  }
}

}  // namespace

bool is_adapter_dir(const std::string& dir) {
  return core::file_exists(dir + "/adapter_config.json");
}

Result<AdapterConfig> parse_adapter_config(std::string_view json_text) {
  json::Document doc;
  KILN_RETURN_IF_ERROR(json::parse(json_text, "adapter_config.json", &doc));
  if (!doc.IsObject()) return invalid_argument("adapter_config.json: not a JSON object");
  AdapterConfig a;
  KILN_ASSIGN_OR_RETURN(auto type, json::get_string_or(doc, "peft_type", ""));
  if (type != "LORA") {
    return unimplemented("adapter_config.json: peft_type \"" + type +
                         "\" is not supported (LORA adapters only)");
  }
  KILN_ASSIGN_OR_RETURN(a.base_model, json::get_string_or(doc, "base_model_name_or_path", ""));
  KILN_ASSIGN_OR_RETURN(a.task_type, json::get_string_or(doc, "task_type", ""));
  KILN_ASSIGN_OR_RETURN(a.task, task_from_type(a.task_type));
  KILN_ASSIGN_OR_RETURN(a.lora_alpha, json::get_double_or(doc, "lora_alpha", 8));
  KILN_ASSIGN_OR_RETURN(a.use_rslora, json::get_bool_or(doc, "use_rslora", false));
  KILN_ASSIGN_OR_RETURN(bool dora, json::get_bool_or(doc, "use_dora", false));
  KILN_ASSIGN_OR_RETURN(bool fan_in_fan_out, json::get_bool_or(doc, "fan_in_fan_out", false));
  KILN_ASSIGN_OR_RETURN(bool lora_bias, json::get_bool_or(doc, "lora_bias", false));
  KILN_RETURN_IF_ERROR(refuse_if(dora, "use_dora", "DoRA's magnitude vectors"));
  KILN_RETURN_IF_ERROR(refuse_if(fan_in_fan_out, "fan_in_fan_out", "BERT layers are Linear"));
  KILN_RETURN_IF_ERROR(refuse_if(lora_bias, "lora_bias", "a bias on lora_B"));
  KILN_RETURN_IF_ERROR(refuse_if(non_empty_object(doc, "alpha_pattern"), "alpha_pattern",
                                 "one lora_alpha for every module"));
  // rank_pattern needs nothing: each module's rank is its lora_A's row count.
  if (!(a.lora_alpha > 0 && a.lora_alpha < 1e6)) {
    return invalid_argument("adapter_config.json: lora_alpha must be in (0, 1e6)");
  }
  return a;
}

Status merge_adapter(const SafeTensors& adapter, const AdapterConfig& a, const ModelConfig& c,
                     const SafeTensors& base, EncoderWeights* w, LoraModules* apart) {
  const std::string enc = encoder_prefix(adapter, c);
  const int64_t h = c.hidden_size;
  std::set<std::string> used;
  if (apart != nullptr) apart->assign(static_cast<size_t>(c.num_layers), {});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    LayerWeights& layer = w->layers[static_cast<size_t>(l)];
    for (int site = 0; site < kLayerLinears; ++site) {
      const std::string module = enc + linear_module_name(c, l, site);
      DenseWeights* d = site < 3    ? &layer.qkv
                        : site == 3 ? &layer.attn_out
                        : site == 4 ? &layer.ffn_in
                                    : &layer.ffn_out;
      const int64_t row0 = site < 3 ? site * h : 0;
      const int64_t out = site < 3 ? h : d->out;
      const TensorView* la = adapter.find(module + ".lora_A.weight");
      const TensorView* lb = adapter.find(module + ".lora_B.weight");
      if ((la == nullptr) != (lb == nullptr)) {
        return invalid_argument("adapter has only one of " + module + ".lora_A/lora_B.weight");
      }
      if (la != nullptr) {
        KILN_ASSIGN_OR_RETURN(LoraPair pair,
                              read_pair(*la, *lb, module, a.lora_alpha, a.use_rslora, d->in, out));
        if (apart != nullptr) {
          (*apart)[static_cast<size_t>(l)][static_cast<size_t>(site)] = std::move(pair);
        } else {
          merge_pair(pair, row0, d);
        }
        used.insert(la->name);
        used.insert(lb->name);
      }
      // bias="all"/"lora_only": PEFT saves the wrapped layer's trained bias.
      const TensorView* bias = adapter.find(module + ".base_layer.bias");
      if (bias == nullptr) bias = adapter.find(module + ".bias");
      if (bias != nullptr) {
        if (bias->shape != std::vector<int64_t>{out}) {
          return invalid_argument("adapter tensor \"" + bias->name + "\" has shape " +
                                  bias->describe() + "; the layer needs [" + std::to_string(out) +
                                  "]");
        }
        KILN_ASSIGN_OR_RETURN(auto b, to_float32(*bias));
        std::copy(b.begin(), b.end(), d->bias.begin() + row0);
        used.insert(bias->name);
      }
    }
  }
  if (c.task != Task::kEmbed) {
    std::vector<std::string> names;
    int64_t head_params = 0;
    KILN_ASSIGN_OR_RETURN(w->head, load_head({TensorSource{&adapter, std::string(kOuter), enc},
                                              checkpoint_source(base)},
                                             c, &head_params, &names));
    used.insert(names.begin(), names.end());
    const int64_t labels = w->head.out.out;
    if (c.task != Task::kQuestionAnswering && !c.labels.empty() &&
        static_cast<int64_t>(c.labels.size()) != labels) {
      return invalid_argument("the adapter's head has " + std::to_string(labels) +
                              " outputs but config.json names " + std::to_string(c.labels.size()) +
                              " labels");
    }
  }
  for (const auto& t : adapter.tensors()) {
    if (used.count(t.name) == 0) {
      return invalid_argument("adapter tensor \"" + t.name + "\" " + t.describe() +
                              " is not used: it targets a module kiln does not adapt "
                              "(LoRA on the attention and feed-forward projections, the " +
                              std::string(task_name(c.task)) + " head)");
    }
  }
  return ok_status();
}

std::string task_class_name(const ModelConfig& c, Task task) {
  std::string cls;
  switch (c.architecture) {
    case Architecture::kBert:
      cls = "Bert";
      break;
    case Architecture::kDistilBert:
      cls = "DistilBert";
      break;
    case Architecture::kRoberta:
      cls = "Roberta";
      break;
    case Architecture::kXlmRoberta:
      cls = "XLMRoberta";
      break;
  }
  switch (task) {
    case Task::kEmbed:
      return cls + "Model";
    case Task::kSequenceClassification:
      return cls + "ForSequenceClassification";
    case Task::kTokenClassification:
      return cls + "ForTokenClassification";
    case Task::kQuestionAnswering:
      return cls + "ForQuestionAnswering";
  }
  return cls + "Model";
}

}  // namespace kiln::model
