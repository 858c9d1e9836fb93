// A model directory as the loaders see it: a Hugging Face checkpoint, or a PEFT LoRA adapter
// whose base checkpoint is found from adapter_config.json (or given) and merged at load.
#pragma once

#include <optional>
#include <string>

#include "kiln/status.h"
#include "model/adapter.h"
#include "model/config.h"
#include "model/weights.h"

namespace kiln::model {

/// Everything read from a model directory, weights in float32.
struct ModelDir {
  std::string dir;            ///< as given
  std::string base_dir;       ///< the checkpoint's directory: `dir` unless an adapter
  std::string tokenizer_dir;  ///< the adapter's directory if it has tokenizer files, else base
  std::string config_json;    ///< the (adapted) model's config.json text
  ModelConfig config;
  PoolingConfig pooling;
  EncoderWeights weights;
  std::optional<AdapterConfig> adapter;
  /// Kept apart (read_model_dir's `keep_apart`): `weights` are the base's as they are,
  /// `adapted` the adapter's small parts (norms, biases with any the adapter trained, the
  /// head; no matrices or tables) and `lora` its updates.
  LoraModules lora;
  std::optional<EncoderWeights> adapted;
};

/// Reads `dir`. For an adapter directory the base is `base_override` when not empty, else
/// adapter_config.json's base_model_name_or_path (relative to the working directory, else to
/// the adapter's directory). The adapted model's config is the adapter's own config.json when
/// it has one (its dimensions must equal the base's), else the base's with the adapter's task
/// (labels LABEL_0.. sized by the head). Pooling files apply only to embedding models.
/// With `keep_apart`, an adapter is not merged (see ModelDir::lora).
Result<ModelDir> read_model_dir(const std::string& dir, const std::string& base_override = "",
                                bool keep_apart = false);

}  // namespace kiln::model
