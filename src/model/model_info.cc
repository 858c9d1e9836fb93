#include "kiln/model_info.h"

namespace kiln {

std::string_view architecture_name(Architecture a) {
  switch (a) {
    case Architecture::kBert:
      return "bert";
    case Architecture::kDistilBert:
      return "distilbert";
    case Architecture::kRoberta:
      return "roberta";
    case Architecture::kXlmRoberta:
      return "xlm-roberta";
  }
  return "unknown";
}

std::string_view task_name(Task t) {
  switch (t) {
    case Task::kEmbed:
      return "embed";
    case Task::kSequenceClassification:
      return "classify";
    case Task::kTokenClassification:
      return "ner";
    case Task::kQuestionAnswering:
      return "qa";
  }
  return "unknown";
}

std::string_view activation_name(Activation a) {
  switch (a) {
    case Activation::kGeluErf:
      return "gelu";
    case Activation::kGeluTanh:
      return "gelu_tanh";
    case Activation::kRelu:
      return "relu";
  }
  return "unknown";
}

std::string_view pooling_mode_name(PoolingMode m) {
  switch (m) {
    case PoolingMode::kMean:
      return "mean";
    case PoolingMode::kCls:
      return "cls";
    case PoolingMode::kMax:
      return "max";
    case PoolingMode::kMeanSqrtLen:
      return "mean_sqrt_len";
  }
  return "unknown";
}

bool parse_task(std::string_view name, Task* out) {
  if (name == "embed" || name == "embedding" || name == "embeddings") {
    *out = Task::kEmbed;
  } else if (name == "classify" || name == "classification") {
    *out = Task::kSequenceClassification;
  } else if (name == "ner" || name == "token-classification") {
    *out = Task::kTokenClassification;
  } else if (name == "qa" || name == "question-answering") {
    *out = Task::kQuestionAnswering;
  } else {
    return false;
  }
  return true;
}

}  // namespace kiln
