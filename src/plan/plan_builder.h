// Writing a plan from a Hugging Face model directory (`kiln build`): the model description,
// tokenizer, quantization decisions, sparsity record and every weight in its storage precision,
// linear weights pre-packed for this machine's kernels unless a portable plan is asked for.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "model/config.h"
#include "model/weights.h"
#include "plan/sections.h"
#include "quant/quant_params.h"

namespace kiln::plan {

/// How to build.
struct BuildOptions {
  std::string device = "cpu";
  /// Precision of every layer unless `quant` says otherwise.
  Precision precision = Precision::kF32;
  /// Per-layer decisions (calibration, mixed precision); null = `precision` everywhere, with
  /// dynamic per-token activation scales for INT8 layers.
  std::shared_ptr<const quant::ModelQuant> quant;
  /// Pruned layers; empty = all dense.
  SparsityRecord sparsity;
  /// Store linear weights in the device's packed layout, used in place at load (fast, but tied
  /// to this machine's kernels and library version). False = row-major, portable.
  bool prepack = true;
  int num_threads = 0;  ///< threads for packing
  /// Time the device's kernel choices here and store them (ExecutorOptions::autotune).
  bool autotune = true;
  int64_t autotune_max_tokens = 65536;
  bool fast_gelu = false;  ///< see ExecutorOptions::fast_gelu
};

/// A model directory read for building. The quantization work (SmoothQuant, pruning) may
/// change `weights` before write_plan.
struct ModelSource {
  std::string dir;
  std::string config_json;
  model::ModelConfig config;
  PoolingConfig pooling;
  struct TokenizerText {
    TokenizerRecord::Kind kind = TokenizerRecord::Kind::kJson;
    bool lowercase = true;
    std::string text;
  };
  std::optional<TokenizerText> tokenizer;  ///< none when the directory has no tokenizer
  model::EncoderWeights weights;           ///< float32, as the checkpoint has them
};

/// Reads config.json, pooling files, tokenizer files and model.safetensors of `dir`, or a LoRA
/// adapter directory merged into its base (`base_model`, else the one the adapter names).
Result<ModelSource> read_model_dir(const std::string& dir, const std::string& base_model = "");

/// Compiles `source` on the device (when pre-packing) and writes the plan to `path`.
Status write_plan(const ModelSource& source, const BuildOptions& options, const std::string& path);

/// The precision summary of a plan's header ("bf16", "int8+bf16", ...).
std::string precision_summary(Precision base, const quant::ModelQuant& quant);

}  // namespace kiln::plan
