// The model description kiln needs, read from a Hugging Face config.json (BERT, DistilBERT,
// RoBERTa, XLM-RoBERTa) and, for embedding models, the sentence-transformers module files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/model_info.h"
#include "kiln/status.h"

namespace kiln::model {

/// Encoder hyper-parameters and head description, normalised across architectures.
struct ModelConfig {
  Architecture architecture = Architecture::kBert;
  std::string model_type;    ///< config.json's model_type, e.g. "bert"
  std::string hf_class;      ///< architectures[0], e.g. "BertForQuestionAnswering"
  Task task = Task::kEmbed;  ///< which head the checkpoint carries
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 0;  ///< 0 when the architecture has no token type embeddings
  int64_t pad_token_id = 0;
  int64_t position_offset = 0;  ///< RoBERTa: positions start at pad_token_id + 1
  double layer_norm_eps = 1e-12;
  Activation activation = Activation::kGeluErf;
  std::vector<std::string> labels;  ///< id2label, for classification heads
  /// problem_type "multi_label_classification": independent (sigmoid) label scores.
  bool multi_label = false;

  int64_t head_dim() const { return hidden_size / num_heads; }
  /// Longest sequence the position table allows.
  int64_t max_sequence_length() const { return max_position_embeddings - position_offset; }
};

/// Parses config.json text. Unknown architectures and unsupported options are errors that name
/// the field.
Result<ModelConfig> parse_config(std::string_view json_text);

/// Sentence-embedding settings from modules.json / 1_Pooling/config.json /
/// sentence_bert_config.json; defaults (mean pooling, no normalize) when absent.
Result<PoolingConfig> load_pooling_config(const std::string& model_dir);

}  // namespace kiln::model
