// The engine: a model directory loaded, compiled for a device, and run on ragged batches.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/model_info.h"
#include "kiln/status.h"
#include "kiln/tokenizer.h"

namespace kiln {

/// How to load a model.
struct EngineOptions {
  std::string device = "cpu";             ///< registered device name
  Precision precision = Precision::kF32;  ///< weights are converted at load (not for plans)
  int num_threads = 0;                    ///< CPU threads per forward pass; 0 = all cores
  bool profile = false;                   ///< time each op (see Engine::profile_report)
  /// For a LoRA adapter directory: its base model directory, instead of adapter_config.json's
  /// base_model_name_or_path.
  std::string base_model;
  /// For a LoRA adapter directory: keep the adapter apart from its base instead of merging it.
  /// Engines of adapters of one base (same device, precision and threads) then share the base's
  /// packed weights and embedding tables in memory, each running its low-rank updates next to
  /// the linears (FP32 on the CPU). Ignored for checkpoints and plans.
  bool share_base = false;
  /// FP8 engines (CUDA): the smallest batch, in tokens, whose linears run in FP8; smaller ones
  /// run FP16 GEMMs. -1 = the device's measured default (KILN_CUDA_FP8_MIN_TOKENS overrides),
  /// 0 = always FP8 (outputs then do not depend on how requests are batched).
  int64_t fp8_min_tokens = -1;
};

/// A packed ragged batch of token sequences: no padding anywhere.
struct TokenBatch {
  std::vector<int32_t> ids;         ///< all tokens, sequence after sequence
  std::vector<int32_t> type_ids;    ///< same length as ids, or empty for all zeros
  std::vector<int32_t> cu_seqlens;  ///< {0, len0, len0+len1, ...}: num_sequences + 1 entries

  int64_t num_sequences() const {
    return cu_seqlens.empty() ? 0 : static_cast<int64_t>(cu_seqlens.size()) - 1;
  }
  int64_t num_tokens() const { return static_cast<int64_t>(ids.size()); }
  /// Appends one sequence.
  void add(const std::vector<int32_t>& seq_ids, const std::vector<int32_t>& seq_type_ids);
};

/// What run() should produce.
struct RunOptions {
  bool hidden_states = false;  ///< last hidden states [tokens, hidden]
  bool embeddings = false;     ///< pooled sentence embeddings [sequences, hidden]
  bool head = false;           ///< the task head's logits (see RunOutputs::logits)
};

/// Outputs of run(), float32, row-major.
struct RunOutputs {
  std::vector<float> hidden_states;  ///< [tokens, hidden]
  std::vector<float> embeddings;     ///< [sequences, hidden], pooled as the model's config says
  /// Head logits: sequence classification [sequences, labels]; token classification
  /// [tokens, labels]; question answering [tokens, 2] (start, end).
  std::vector<float> logits;
  int64_t logits_cols = 0;  ///< labels (or 2 for QA)
};

/// A loaded model. Immutable after load(); run() is thread-safe.
class Engine {
 public:
  virtual ~Engine() = default;
  /// Loads a Hugging Face model directory (config.json, model.safetensors, optional tokenizer
  /// files and sentence-transformers pooling files), a PEFT LoRA adapter directory
  /// (adapter_config.json, adapter_model.safetensors; merged into its base at load), or a plan
  /// file written by `kiln build`
  /// (a file starting with "KILNPLAN"). A plan's layer precisions and quantization take
  /// precedence over `options.precision` (options() reports the plan's); its backend must be
  /// `options.device`. A plan built for another machine or kiln is FailedPrecondition naming
  /// what differs; a corrupt one is DataLoss.
  static Result<std::unique_ptr<Engine>> load(const std::string& path,
                                              const EngineOptions& options);

  /// What was loaded.
  virtual const ModelInfo& info() const = 0;
  /// The model's tokenizer, or null when the directory has none (token-id inputs only).
  virtual const Tokenizer* tokenizer() const = 0;
  /// The options it was loaded with.
  virtual const EngineOptions& options() const = 0;

  /// Tokenizes texts into a batch, truncating each to `max_length` tokens (0: the model's
  /// limit, for embedding models the sentence-transformers max_seq_length).
  virtual Result<TokenBatch> tokenize(const std::vector<std::string>& texts,
                                      int64_t max_length = 0) const = 0;
  /// Runs the model. Invalid batches (ids out of range, empty or too long sequences) are
  /// InvalidArgument errors.
  virtual Status run(const TokenBatch& batch, const RunOptions& what,
                     RunOutputs* outputs) const = 0;
  /// Per-layer report of the compiled model (kernel, precision, bytes).
  virtual std::vector<std::string> describe_layers() const = 0;
  /// Accumulated time per op, when loaded with EngineOptions::profile.
  virtual std::vector<std::string> profile_report() const = 0;
};

}  // namespace kiln
