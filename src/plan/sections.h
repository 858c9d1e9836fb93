// Encoding and decoding of the plan's small sections: model description, tokenizer,
// quantization and sparsity (format in plan_format.h). Decoders validate everything and answer
// DataLoss naming the section.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/model_info.h"
#include "kiln/status.h"
#include "model/weights.h"
#include "quant/quant_params.h"

namespace kiln::plan {

/// The "model" section: config.json as the checkpoint had it plus what kiln derived.
struct ModelRecord {
  std::string config_json;  ///< Hugging Face config.json text
  Task task = Task::kEmbed;
  std::vector<std::string> labels;
  PoolingConfig pooling;
  model::HeadActivation head_activation = model::HeadActivation::kNone;
  int64_t num_parameters = 0;
  std::string source;  ///< the directory the plan was built from (informational)
};
std::string encode_model(const ModelRecord& record);
Result<ModelRecord> decode_model(std::string_view bytes);

/// The "tokenizer" section: what Tokenizer is rebuilt from.
struct TokenizerRecord {
  enum class Kind : uint32_t { kJson = 1, kVocab = 2 };
  Kind kind = Kind::kJson;
  bool lowercase = true;  ///< vocab.txt only (tokenizer_config.json's do_lower_case)
  std::string_view text;  ///< tokenizer.json or vocab.txt; points into the encoded bytes
};
std::string encode_tokenizer(TokenizerRecord::Kind kind, bool lowercase, std::string_view text);
Result<TokenizerRecord> decode_tokenizer(std::string_view bytes);

/// The "quant" section: the precision of layers `quant` does not override, and `quant`.
struct QuantRecord {
  Precision precision = Precision::kF32;
  quant::ModelQuant quant;
};
std::string encode_quant(const QuantRecord& record);
/// Checks layer count and SmoothQuant vector lengths against the model.
Result<QuantRecord> decode_quant(std::string_view bytes, int64_t num_layers, int64_t hidden,
                                 int64_t intermediate);

/// The "sparsity" section: per layer and site, the pruning pattern.
enum class Sparsity : uint8_t { kDense = 0, kTwoFour = 1 };
using SparsityRecord = std::vector<std::array<Sparsity, quant::kLinearSites>>;
std::string encode_sparsity(const SparsityRecord& record);
Result<SparsityRecord> decode_sparsity(std::string_view bytes, int64_t num_layers);

/// "qkv", "attn_out", "ffn_in", "ffn_out".
std::string_view site_name(quant::LinearSite site);

}  // namespace kiln::plan
