// Executes a batch of encoder requests as ONE ragged engine call: the requests' sequences are
// packed back to back (no padding), run once, and the outputs split back per request.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "server/encoder_backend.h"
#include "server/tensor_checks.h"

namespace kiln::server {
namespace {

uint64_t ns_since(Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count());
}

class EncoderInstance final : public BackendInstance {
 public:
  EncoderInstance(std::shared_ptr<const Engine> engine, bool batching, bool pad_to_longest,
                  tasks::QaOptions qa, bool runs_inline)
      : engine_(std::move(engine)),
        batching_(batching),
        pad_to_longest_(pad_to_longest),
        runs_inline_(runs_inline),
        qa_(qa) {}

  bool runs_inline() const override { return runs_inline_; }

  void execute(std::span<PendingRequest* const> batch, ExecutionTimes* times) override {
    auto t0 = Clock::now();
    TokenBatch packed;
    packed.cu_seqlens.push_back(0);
    RunOptions what;
    for (PendingRequest* r : batch) {
      const TokenBatch& b = std::any_cast<const EncoderInputs&>(r->prepared).batch;
      const int32_t base = packed.cu_seqlens.back();
      packed.ids.insert(packed.ids.end(), b.ids.begin(), b.ids.end());
      if (b.type_ids.empty()) {
        packed.type_ids.resize(packed.ids.size(), 0);
      } else {
        packed.type_ids.insert(packed.type_ids.end(), b.type_ids.begin(), b.type_ids.end());
      }
      for (size_t s = 1; s < b.cu_seqlens.size(); ++s) {
        packed.cu_seqlens.push_back(base + b.cu_seqlens[s]);
      }
      what.embeddings |= task() == Task::kEmbed && output_requested(r->request, "embedding");
      what.hidden_states |= hidden_requested(*r);
      what.head |= task() != Task::kEmbed;
    }
    times->input_ns = ns_since(t0);

    t0 = Clock::now();
    RunOutputs out;
    Status status =
        pad_to_longest_ ? run_padded(packed, what, &out) : engine_->run(packed, what, &out);
    if (!status.ok() && batch.size() > 1) {
      // One request's ids passed prepare() but not the engine (e.g. a token type the model
      // lacks): run each alone so only that request fails.
      for (PendingRequest* r : batch) execute({&r, 1}, times);
      return;
    }
    times->infer_ns = ns_since(t0);

    t0 = Clock::now();
    int64_t seq_base = 0, tok_base = 0;
    for (PendingRequest* r : batch) {
      const TokenBatch& b = std::any_cast<const EncoderInputs&>(r->prepared).batch;
      if (!status.ok()) {
        r->response = status;
      } else {
        r->response =
            split(*r, std::any_cast<const EncoderInputs&>(r->prepared), out, seq_base, tok_base);
      }
      seq_base += b.num_sequences();
      tok_base += b.num_tokens();
    }
    times->output_ns = ns_since(t0);
  }

 private:
  Task task() const { return engine_->info().task; }

  // The "batch_padding: longest" baseline: every sequence padded (token id 0) to the longest in
  // the batch, computed in full, as a padded server does; the rows of real tokens are kept.
  // There is no attention mask, so outputs differ from the ragged path: this mode exists only
  // to measure what padding costs (bench/e2e), never for serving.
  Status run_padded(const TokenBatch& packed, const RunOptions& what, RunOutputs* out) const {
    int64_t longest = 0;
    for (int64_t s = 0; s < packed.num_sequences(); ++s) {
      longest = std::max<int64_t>(longest, packed.cu_seqlens[s + 1] - packed.cu_seqlens[s]);
    }
    TokenBatch padded;
    std::vector<int32_t> ids, types;
    for (int64_t s = 0; s < packed.num_sequences(); ++s) {
      ids.assign(packed.ids.begin() + packed.cu_seqlens[s],
                 packed.ids.begin() + packed.cu_seqlens[s + 1]);
      types.assign(packed.type_ids.begin() + packed.cu_seqlens[s],
                   packed.type_ids.begin() + packed.cu_seqlens[s + 1]);
      ids.resize(static_cast<size_t>(longest), 0);
      types.resize(static_cast<size_t>(longest), 0);
      padded.add(ids, types);
    }
    RunOutputs full;
    KILN_RETURN_IF_ERROR(engine_->run(padded, what, &full));
    auto unpad = [&](const std::vector<float>& m, int64_t cols) {
      std::vector<float> v;
      for (int64_t s = 0; s < packed.num_sequences(); ++s) {
        const int64_t len = packed.cu_seqlens[s + 1] - packed.cu_seqlens[s];
        v.insert(v.end(), m.begin() + s * longest * cols, m.begin() + (s * longest + len) * cols);
      }
      return v;
    };
    out->embeddings = std::move(full.embeddings);
    out->logits_cols = full.logits_cols;
    const bool token_head =
        task() == Task::kTokenClassification || task() == Task::kQuestionAnswering;
    out->logits = token_head ? unpad(full.logits, full.logits_cols) : std::move(full.logits);
    if (what.hidden_states)
      out->hidden_states = unpad(full.hidden_states, engine_->info().hidden_size);
    return ok_status();
  }
  // last_hidden_state ([rows, tokens, hidden]) is large: it is sent only when asked for by
  // name, not as part of "all outputs".
  static bool hidden_requested(const PendingRequest& r) {
    return !r.request.outputs.empty() && output_requested(r.request, "last_hidden_state");
  }

  // Per-sequence rows [rows, cols] from a [sequences, cols] matrix.
  static Tensor rows_tensor(const char* name, const std::vector<float>& m, int64_t cols,
                            int64_t seq_base, int64_t rows, bool batching) {
    std::vector<float> v(m.begin() + seq_base * cols, m.begin() + (seq_base + rows) * cols);
    std::vector<int64_t> shape =
        batching ? std::vector<int64_t>{rows, cols} : std::vector<int64_t>{cols};
    return Tensor::owned(name, DataType::kFp32, std::move(shape), vector_bytes(v));
  }

  // Token-level outputs padded (with zeros) to the longest sequence of this request only.
  static Tensor tokens_tensor(const char* name, const std::vector<float>& m, int64_t stride,
                              int64_t col, int64_t cols, const TokenBatch& b, int64_t tok_base,
                              bool batching, bool squeeze) {
    const int64_t rows = b.num_sequences();
    int64_t longest = 0;
    for (int64_t s = 0; s < rows; ++s) {
      longest = std::max<int64_t>(longest, b.cu_seqlens[s + 1] - b.cu_seqlens[s]);
    }
    std::vector<float> v(static_cast<size_t>(rows * longest * cols), 0.0f);
    for (int64_t s = 0; s < rows; ++s) {
      for (int64_t t = b.cu_seqlens[s]; t < b.cu_seqlens[s + 1]; ++t) {
        const float* src = m.data() + (tok_base + t) * stride + col;
        float* dst = v.data() + (s * longest + (t - b.cu_seqlens[s])) * cols;
        std::copy(src, src + cols, dst);
      }
    }
    std::vector<int64_t> shape;
    if (batching) shape.push_back(rows);
    shape.push_back(longest);
    if (!squeeze) shape.push_back(cols);
    return Tensor::owned(name, DataType::kFp32, std::move(shape), vector_bytes(v));
  }

  // A sequence classifier's scores and label, as Hugging Face's text-classification pipeline
  // gives them: softmax over the labels, or independent sigmoids for a one-logit head or a
  // multi-label model; the label is the id2label name of the highest score (LABEL_i without
  // names).
  void add_label_outputs(const RunOutputs& out, int64_t seq_base, int64_t rows, bool batching,
                         bool probabilities, bool label, InferResponse* response) const {
    const ModelInfo& info = engine_->info();
    const int64_t cols = out.logits_cols;
    const bool sigmoid = cols == 1 || info.multi_label;
    std::vector<float> scores(static_cast<size_t>(rows * cols));
    std::vector<std::string> names;
    for (int64_t r = 0; r < rows; ++r) {
      const float* z = out.logits.data() + (seq_base + r) * cols;
      float* p = scores.data() + r * cols;
      const float zmax = *std::max_element(z, z + cols);
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) {
        p[c] = sigmoid ? 1.0f / (1.0f + std::exp(-z[c])) : std::exp(z[c] - zmax);
        sum += p[c];
      }
      if (!sigmoid) {
        for (int64_t c = 0; c < cols; ++c) p[c] = static_cast<float>(p[c] / sum);
      }
      const int64_t best = std::max_element(p, p + cols) - p;
      names.push_back(best < static_cast<int64_t>(info.labels.size())
                          ? info.labels[static_cast<size_t>(best)]
                          : "LABEL_" + std::to_string(best));
    }
    if (probabilities) {
      response->outputs.push_back(rows_tensor("probabilities", scores, cols, 0, rows, batching));
    }
    if (label) {
      std::vector<int64_t> shape =
          batching ? std::vector<int64_t>{rows, 1} : std::vector<int64_t>{1};
      response->outputs.push_back(
          Tensor::owned("label", DataType::kBytes, std::move(shape), join_bytes(names)));
    }
  }

  Result<InferResponse> split(const PendingRequest& r, const EncoderInputs& in,
                              const RunOutputs& out, int64_t seq_base, int64_t tok_base) const {
    InferResponse response;
    response.model_name = r.request.model_name;
    response.id = r.request.id;
    const bool batching = batching_;
    if (!in.qa.empty()) {  // question/context: the answers only
      add_qa_outputs(r, in, out, tok_base, qa_, batching, &response);
      return response;
    }
    const TokenBatch& b = in.batch;
    const int64_t rows = b.num_sequences();
    const int64_t h = engine_->info().hidden_size;
    auto want = [&](std::string_view n) { return output_requested(r.request, n); };
    if (task() == Task::kEmbed && want("embedding")) {
      response.outputs.push_back(
          rows_tensor("embedding", out.embeddings, h, seq_base, rows, batching));
    }
    if (task() == Task::kSequenceClassification && want("logits")) {
      response.outputs.push_back(
          rows_tensor("logits", out.logits, out.logits_cols, seq_base, rows, batching));
    }
    if (task() == Task::kSequenceClassification && (want("probabilities") || want("label"))) {
      add_label_outputs(out, seq_base, rows, batching, want("probabilities"), want("label"),
                        &response);
    }
    if (task() == Task::kTokenClassification && want("logits")) {
      response.outputs.push_back(tokens_tensor("logits", out.logits, out.logits_cols, 0,
                                               out.logits_cols, b, tok_base, batching, false));
    }
    if (!in.encodings.empty()) {  // prepare() kept them because `entities` is wanted
      add_entity_outputs(*engine_, in, out, tok_base, batching, &response);
    }
    if (task() == Task::kQuestionAnswering) {
      if (want("start_logits")) {
        response.outputs.push_back(
            tokens_tensor("start_logits", out.logits, 2, 0, 1, b, tok_base, batching, true));
      }
      if (want("end_logits")) {
        response.outputs.push_back(
            tokens_tensor("end_logits", out.logits, 2, 1, 1, b, tok_base, batching, true));
      }
    }
    if (hidden_requested(r)) {
      response.outputs.push_back(tokens_tensor("last_hidden_state", out.hidden_states, h, 0, h, b,
                                               tok_base, batching, false));
    }
    return response;
  }

  std::shared_ptr<const Engine> engine_;
  const bool batching_;  // max_batch_size > 0: outputs carry the batch dimension
  const bool pad_to_longest_;
  const bool runs_inline_;
  const tasks::QaOptions qa_;
};

}  // namespace

std::unique_ptr<BackendInstance> make_encoder_instance(std::shared_ptr<const Engine> engine,
                                                       bool batching, bool pad_to_longest,
                                                       tasks::QaOptions qa, bool runs_inline) {
  return std::make_unique<EncoderInstance>(std::move(engine), batching, pad_to_longest, qa,
                                           runs_inline);
}

}  // namespace kiln::server
