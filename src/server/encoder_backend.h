// The "kiln" backend's pieces shared by its files: decoded inputs and the backend class.
#pragma once

#include <memory>

#include "kiln/engine.h"
#include "server/backend.h"

namespace kiln::server {

/// A request's sequences, tokenized or taken from token-id inputs, ready to be packed.
struct EncoderInputs {
  TokenBatch batch;  ///< this request's rows, packed
};

class EncoderBackend final : public ModelBackend {
 public:
  EncoderBackend(std::shared_ptr<const Engine> engine, inference::ModelConfig config,
                 int64_t max_batch_tokens, bool pad_to_longest);

  Status prepare(PendingRequest* request) const override;
  Result<std::unique_ptr<BackendInstance>> create_instance(int index) override;
  int64_t max_batch_tokens() const override { return max_batch_tokens_; }

 private:
  Status prepare_text(PendingRequest* r, EncoderInputs* out) const;
  Status prepare_ids(PendingRequest* r, EncoderInputs* out) const;

  std::shared_ptr<const Engine> engine_;
  const inference::ModelConfig config_;
  const int64_t max_batch_tokens_;
  const bool pad_to_longest_;
  int64_t max_length_ = 0;  // tokens per sequence after truncation
};

/// Executes batches of EncoderInputs on the shared engine (its run() is thread-safe and keeps
/// a workspace per concurrent caller, so each instance has its own context).
/// `pad_to_longest` is the benchmark baseline of parameter batch_padding: "longest".
std::unique_ptr<BackendInstance> make_encoder_instance(std::shared_ptr<const Engine> engine,
                                                       bool batching, bool pad_to_longest);

}  // namespace kiln::server
