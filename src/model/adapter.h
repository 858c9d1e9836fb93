// PEFT LoRA adapters (adapter_config.json + adapter_model.safetensors, as `save_pretrained`
// writes them): the low-rank updates of the attention and feed-forward projections, merged
// into a base encoder's weights, and the trained task head (PEFT modules_to_save).
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/status.h"
#include "model/config.h"
#include "model/safetensors.h"
#include "model/weights.h"

namespace kiln::model {

/// The fields of adapter_config.json kiln uses; options it cannot apply are refused when parsed.
struct AdapterConfig {
  std::string base_model;  ///< base_model_name_or_path
  std::string task_type;   ///< SEQ_CLS, TOKEN_CLS, QUESTION_ANS, FEATURE_EXTRACTION or empty
  Task task = Task::kEmbed;
  double lora_alpha = 8;
  bool use_rslora = false;  ///< scale alpha / sqrt(r) instead of alpha / r
};

/// Whether `dir` holds adapter_config.json.
bool is_adapter_dir(const std::string& dir);

/// Parses adapter_config.json text: a LoRA adapter without DoRA, fan_in_fan_out, LoRA biases or
/// per-module alphas (each is an error naming the field).
Result<AdapterConfig> parse_adapter_config(std::string_view json_text);

/// LoRA factors of one linear module with the scale folded into B: delta = (x A^T) B^T.
struct LoraPair {
  std::vector<float> a;  ///< [rank, in]
  std::vector<float> b;  ///< [out, rank], times alpha / r (or alpha / sqrt(r))
  int64_t rank = 0;      ///< 0: the module has no update
  int64_t in = 0;
  int64_t out = 0;
};

/// Per layer, per linear module in kLayerLinears order (query, key, value, attention output,
/// FFN in, FFN out).
using LoraModules = std::vector<std::array<LoraPair, kLayerLinears>>;

/// Merges the adapter into `w` (the base's weights): W += scale * B A for every lora_A/lora_B
/// pair, a trained bias replaces the base's, and the head is read from the adapter (falling back
/// to `base` for tensors the adapter does not carry, e.g. an untrained pooler). `c` is the
/// adapted model's config (its task and labels). Every adapter tensor must be used: one that
/// targets a module kiln does not have (embeddings, an unknown head) is an error naming it.
/// With `apart` non-null the updates are not merged but returned there (the adapter kept apart
/// from its base, which other adapters share); biases and the head still go into `w`.
Status merge_adapter(const SafeTensors& adapter, const AdapterConfig& a, const ModelConfig& c,
                     const SafeTensors& base, EncoderWeights* w, LoraModules* apart = nullptr);

/// The Hugging Face class name of `task` for `c`'s model type, e.g. "BertForQuestionAnswering".
std::string task_class_name(const ModelConfig& c, Task task);

}  // namespace kiln::model
