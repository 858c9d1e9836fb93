// The applications of the "kiln" backend: question answering (question + context in; answer,
// score and character offsets out) and named entities (TEXT in; entities out), pre- and
// post-processed in the request, as Hugging Face's pipelines do them.
#include "server/encoder_backend.h"
#include "server/model_config.h"
#include "server/tensor_checks.h"
#include "tasks/ner.h"

namespace kiln::server {
namespace {

Result<size_t> size_parameter(const inference::ModelConfig& config, const char* key,
                              size_t fallback) {
  KILN_ASSIGN_OR_RETURN(const int64_t v,
                        int_parameter(config, key, static_cast<int64_t>(fallback), 0));
  return static_cast<size_t>(v);
}

}  // namespace

Result<tasks::QaOptions> qa_options(const inference::ModelConfig& config, int64_t max_length) {
  tasks::QaOptions o;
  KILN_ASSIGN_OR_RETURN(o.max_seq_len,
                        size_parameter(config, "max_seq_len",
                                       std::min<size_t>(384, static_cast<size_t>(max_length))));
  if (o.max_seq_len > static_cast<size_t>(max_length)) {
    return invalid_argument("parameter max_seq_len " + std::to_string(o.max_seq_len) +
                            " exceeds the model's " + std::to_string(max_length) + " tokens");
  }
  KILN_ASSIGN_OR_RETURN(
      o.doc_stride, size_parameter(config, "doc_stride", std::min<size_t>(o.max_seq_len / 2, 128)));
  KILN_ASSIGN_OR_RETURN(o.max_answer_len, size_parameter(config, "max_answer_len", 15));
  KILN_ASSIGN_OR_RETURN(o.top_k, size_parameter(config, "top_k", 1));
  const std::string impossible = config_parameter(config, "handle_impossible_answer", "false");
  if (impossible != "true" && impossible != "false") {
    return invalid_argument("parameter handle_impossible_answer '" + impossible +
                            "': expected true or false");
  }
  o.handle_impossible_answer = impossible == "true";
  KILN_RETURN_IF_ERROR(tasks::check_qa_options(o));
  return o;
}

inference::DataType encoder_output_type(std::string_view n, Task task) {
  using inference::DataType;
  if (n == "last_hidden_state") return inference::TYPE_FP32;
  switch (task) {
    case Task::kEmbed:
      return n == "embedding" ? inference::TYPE_FP32 : inference::TYPE_INVALID;
    case Task::kSequenceClassification:
      if (n == "logits" || n == "probabilities") return inference::TYPE_FP32;
      return n == "label" ? inference::TYPE_STRING : inference::TYPE_INVALID;
    case Task::kTokenClassification:
      if (n == "logits") return inference::TYPE_FP32;
      return n == "entities" ? inference::TYPE_STRING : inference::TYPE_INVALID;
    case Task::kQuestionAnswering:
      if (n == "start_logits" || n == "end_logits" || n == "score") return inference::TYPE_FP32;
      if (n == "start" || n == "end") return inference::TYPE_INT64;
      return n == "answer" ? inference::TYPE_STRING : inference::TYPE_INVALID;
  }
  return inference::TYPE_INVALID;
}

Status EncoderBackend::prepare_qa(PendingRequest* r, EncoderInputs* out) const {
  const Tensor* question = find_input(r->request, "question");
  const Tensor* context = find_input(r->request, "context");
  if (question == nullptr || context == nullptr) {
    return invalid_argument("question answering needs both inputs, question and context");
  }
  for (const char* n : {"TEXT", "TEXT_PAIR", "input_ids", "attention_mask", "token_type_ids"}) {
    if (find_input(r->request, n) != nullptr) {
      return invalid_argument(std::string("input '") + n + "' does not go with question/context");
    }
  }
  for (const auto& o : r->request.outputs) {
    if (o != "answer" && o != "score" && o != "start" && o != "end") {
      return invalid_argument("output '" + o +
                              "' goes with TEXT or input_ids; a question/context request "
                              "produces answer, score, start and end");
    }
  }
  KILN_ASSIGN_OR_RETURN(auto questions, split_bytes(*question));
  KILN_ASSIGN_OR_RETURN(auto contexts, split_bytes(*context));
  if (questions.size() != contexts.size()) {
    return invalid_argument("question has " + std::to_string(questions.size()) +
                            " strings but context has " + std::to_string(contexts.size()));
  }
  for (size_t i = 0; i < questions.size(); ++i) {
    auto ex = tasks::make_qa_example(*engine_->tokenizer(), questions[i], contexts[i], qa_);
    if (!ex.ok()) return ex.status().with_context("row " + std::to_string(i));
    for (const auto& f : ex->features) out->batch.add(f.ids, f.type_ids);
    out->qa.push_back(std::move(ex).value());
  }
  return ok_status();
}

void add_qa_outputs(const PendingRequest& r, const EncoderInputs& in, const RunOutputs& out,
                    int64_t tok_base, const tasks::QaOptions& qa, bool batching,
                    InferResponse* response) {
  const auto rows = static_cast<int64_t>(in.qa.size());
  const auto k = static_cast<int64_t>(qa.top_k);
  std::vector<std::string> answers;
  std::vector<float> scores;
  std::vector<int64_t> starts, ends;
  size_t seq = 0;
  for (const auto& ex : in.qa) {
    std::vector<const float*> logits;
    for (size_t f = 0; f < ex.features.size(); ++f, ++seq) {
      logits.push_back(out.logits.data() + (tok_base + in.batch.cu_seqlens[seq]) * 2);
    }
    auto found = tasks::decode_answers(ex, logits, qa);
    // Fewer answers than top_k (a tiny context): the rest are empty with score 0.
    found.resize(qa.top_k);
    for (const auto& a : found) {
      answers.push_back(a.text);
      scores.push_back(static_cast<float>(a.score));
      starts.push_back(a.start);
      ends.push_back(a.end);
    }
  }
  auto shape = [&] { return batching ? std::vector<int64_t>{rows, k} : std::vector<int64_t>{k}; };
  auto want = [&](std::string_view n) { return output_requested(r.request, n); };
  if (want("answer")) {
    response->outputs.push_back(
        Tensor::owned("answer", DataType::kBytes, shape(), join_bytes(answers)));
  }
  if (want("score")) {
    response->outputs.push_back(
        Tensor::owned("score", DataType::kFp32, shape(), vector_bytes(scores)));
  }
  if (want("start")) {
    response->outputs.push_back(
        Tensor::owned("start", DataType::kInt64, shape(), vector_bytes(starts)));
  }
  if (want("end")) {
    response->outputs.push_back(
        Tensor::owned("end", DataType::kInt64, shape(), vector_bytes(ends)));
  }
}

void add_entity_outputs(const Engine& engine, const EncoderInputs& in, const RunOutputs& out,
                        int64_t tok_base, bool batching, InferResponse* response) {
  const auto rows = static_cast<int64_t>(in.encodings.size());
  const int64_t cols = out.logits_cols;
  std::vector<std::string> labels = engine.info().labels;
  for (auto i = static_cast<int64_t>(labels.size()); i < cols; ++i) {
    labels.push_back("LABEL_" + std::to_string(i));
  }
  std::vector<std::string> rows_json;
  for (int64_t row = 0; row < rows; ++row) {
    const float* logits = out.logits.data() + (tok_base + in.batch.cu_seqlens[row]) * cols;
    auto entities = tasks::group_entities(*engine.tokenizer(), in.texts[row], in.encodings[row],
                                          logits, labels);
    rows_json.push_back(tasks::entities_json(entities));
  }
  std::vector<int64_t> shape = batching ? std::vector<int64_t>{rows, 1} : std::vector<int64_t>{1};
  response->outputs.push_back(
      Tensor::owned("entities", DataType::kBytes, std::move(shape), join_bytes(rows_json)));
}

}  // namespace kiln::server
