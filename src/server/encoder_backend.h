// The "kiln" backend's pieces shared by its files: decoded inputs and the backend class.
#pragma once

#include <memory>

#include "kiln/engine.h"
#include "server/backend.h"
#include "tasks/qa.h"

namespace kiln::server {

/// A request's sequences, tokenized or taken from token-id inputs, ready to be packed.
struct EncoderInputs {
  TokenBatch batch;  ///< this request's rows, packed
  /// Question answering (inputs question and context): each row's windows, which are the
  /// sequences of `batch` in order.
  std::vector<tasks::QaExample> qa;
  /// Token classification asked for `entities`: each row's text and encoding (offsets).
  std::vector<std::string> texts;
  std::vector<Encoding> encodings;
};

class EncoderBackend final : public ModelBackend {
 public:
  EncoderBackend(std::shared_ptr<const Engine> engine, inference::ModelConfig config,
                 int64_t max_batch_tokens, bool pad_to_longest, tasks::QaOptions qa);

  Status prepare(PendingRequest* request) const override;
  Result<std::unique_ptr<BackendInstance>> create_instance(int index) override;
  int64_t max_batch_tokens() const override { return max_batch_tokens_; }

 private:
  Status prepare_text(PendingRequest* r, EncoderInputs* out) const;
  Status prepare_ids(PendingRequest* r, EncoderInputs* out) const;
  Status prepare_qa(PendingRequest* r, EncoderInputs* out) const;

  std::shared_ptr<const Engine> engine_;
  const inference::ModelConfig config_;
  const int64_t max_batch_tokens_;
  const bool pad_to_longest_;
  const tasks::QaOptions qa_;
  int64_t max_length_ = 0;  // tokens per sequence after truncation
};

/// Question-answering settings from the config's parameters (max_seq_len, doc_stride,
/// max_answer_len, top_k, handle_impossible_answer), defaults as Hugging Face's pipeline.
Result<tasks::QaOptions> qa_options(const inference::ModelConfig& config, int64_t max_length);

/// Adds the answer, score, start and end outputs ([rows, top_k], or [top_k] without batching)
/// of a question-answering request whose windows' logits start at token `tok_base` of `out`.
void add_qa_outputs(const PendingRequest& r, const EncoderInputs& in, const RunOutputs& out,
                    int64_t tok_base, const tasks::QaOptions& qa, bool batching,
                    InferResponse* response);

/// Adds `entities` (one JSON array per row, BYTES [rows, 1] or [1]) of a token-classification
/// request.
void add_entity_outputs(const Engine& engine, const EncoderInputs& in, const RunOutputs& out,
                        int64_t tok_base, bool batching, InferResponse* response);

/// The type an output of the encoder backend has (TYPE_INVALID: not an encoder output).
inference::DataType encoder_output_type(std::string_view name, Task task);

/// Executes batches of EncoderInputs on the shared engine (its run() is thread-safe and keeps
/// a workspace per concurrent caller, so each instance has its own context).
/// `pad_to_longest` is the benchmark baseline of parameter batch_padding: "longest";
/// `runs_inline` see BackendInstance::runs_inline (GPU engines).
std::unique_ptr<BackendInstance> make_encoder_instance(std::shared_ptr<const Engine> engine,
                                                       bool batching, bool pad_to_longest,
                                                       tasks::QaOptions qa, bool runs_inline);

}  // namespace kiln::server
