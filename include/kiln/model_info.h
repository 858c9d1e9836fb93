// What a loaded model is: architecture, head, shapes and pooling, as reported by `kiln inspect`
// and the server's model metadata.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// Encoder family; decides weight names, embeddings and position handling.
enum class Architecture { kBert, kDistilBert, kRoberta, kXlmRoberta };

/// The head a checkpoint carries (from config.json's "architectures").
enum class Task { kEmbed, kSequenceClassification, kTokenClassification, kQuestionAnswering };

/// Feed-forward activation.
enum class Activation { kGeluErf, kGeluTanh, kRelu };

/// Sentence-embedding pooling over the token states.
enum class PoolingMode { kMean, kCls, kMax, kMeanSqrtLen };

/// sentence-transformers pooling settings.
struct PoolingConfig {
  PoolingMode mode = PoolingMode::kMean;
  bool normalize = false;                   ///< L2-normalise the pooled vector
  int64_t max_seq_length = 0;               ///< sentence_bert_config.json's limit; 0 when absent
  bool from_sentence_transformers = false;  ///< found modules.json
};

/// Summary of a loaded model.
struct ModelInfo {
  Architecture architecture = Architecture::kBert;
  Task task = Task::kEmbed;
  std::string hf_class;  ///< e.g. "BertModel"
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t vocab_size = 0;
  int64_t max_sequence_length = 0;  ///< tokens per sequence the engine accepts
  Activation activation = Activation::kGeluErf;
  PoolingConfig pooling;
  std::vector<std::string> labels;  ///< class or entity labels for classification heads
  /// Sequence classifiers: label scores are independent sigmoids (config.json problem_type
  /// "multi_label_classification") instead of one softmax.
  bool multi_label = false;
  int64_t num_parameters = 0;
};

/// Lower-case names used in CLI flags and JSON output.
std::string_view architecture_name(Architecture a);
std::string_view task_name(Task t);
std::string_view activation_name(Activation a);
std::string_view pooling_mode_name(PoolingMode m);
/// Parses "embed" | "classify" | "ner" | "qa" (and the long names); false when unknown.
bool parse_task(std::string_view name, Task* out);

}  // namespace kiln
