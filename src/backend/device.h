// The backend interface: a device compiles a model's weights into an executor that runs the
// encoder stack on ragged batches. Devices are found by name in one registry (registry.cc).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/model_info.h"
#include "kiln/status.h"
#include "model/adapter.h"
#include "model/config.h"
#include "model/weights.h"
#include "quant/quant_params.h"

namespace kiln::backend {

/// Operations a device may implement.
enum class Op { kEmbedding, kLinear, kAttention, kLayerNorm };

/// A packed ragged batch: the tokens of all sequences back to back, no padding.
struct EncoderInputs {
  const int32_t* ids = nullptr;         ///< [num_tokens]
  const int32_t* type_ids = nullptr;    ///< [num_tokens]; may be null (all zero)
  const int32_t* cu_seqlens = nullptr;  ///< [num_sequences + 1], cu_seqlens[0] = 0
  int64_t num_sequences = 0;
  int64_t num_tokens = 0;
};

/// Called with the input of every linear layer during EncoderExecutor::run_observed: the
/// activations [rows, cols] (float32, host memory) about to enter layer `layer`'s `site`.
/// Calibration (ranges, histograms), SmoothQuant and SparseGPT collect their statistics here.
/// Called on the thread that called run_observed, one call at a time, in execution order.
using LinearObserver = std::function<void(int layer, quant::LinearSite site, const float* x,
                                          int64_t rows, int64_t cols)>;

/// A weight in a device's own packed layout, as a plan file stores it so that loading uses it
/// in place instead of packing again.
struct PackedWeight {
  const void* data = nullptr;
  size_t bytes = 0;
  std::string layout;  ///< the device's fingerprint of the layout; compile() checks it
};

/// Packed weights of every linear layer: [layer][site].
using PackedLinears = std::vector<std::array<PackedWeight, quant::kLinearSites>>;

/// Weights a device uses in place from memory it does not own (a mapped plan file).
struct PrebuiltWeights {
  std::shared_ptr<const void> owner;  ///< keeps that memory alive while an executor uses it
  /// Embedding tables; when `word_embeddings` is set all three come from here (and the
  /// EncoderWeights tables are ignored); `type_embeddings` is null when the model has none.
  const float* word_embeddings = nullptr;      ///< [vocab, H]
  const float* position_embeddings = nullptr;  ///< [max_positions, H]
  const float* type_embeddings = nullptr;      ///< [type_vocab, H]
  /// Linear weights in the device's layout; a layer or entry without data is packed from the
  /// EncoderWeights as usual.
  PackedLinears linears;
};

/// What a model compiled on a device depends on, as a plan file's header records it.
struct DeviceTarget {
  std::vector<std::string> features;          ///< the layers' kernels need, e.g. avx512_bf16
  std::vector<std::string> packing_features;  ///< pre-packed weights need too, e.g. avx512
  std::string packing_library;                ///< packed layouts belong to, "onednn 2.6.3"
};

/// Options for compiling a model on a device.
struct ExecutorOptions {
  /// Precision of every layer, unless `quant` says otherwise per layer.
  Precision precision = Precision::kF32;
  /// Per-layer precisions and activation scales (from a plan); null = `precision` everywhere,
  /// with dynamic per-token activation scales for kInt8.
  std::shared_ptr<const quant::ModelQuant> quant;
  /// Weights used in place (a plan file's), null = everything from EncoderWeights.
  std::shared_ptr<const PrebuiltWeights> prebuilt;
  int num_threads = 0;   ///< CPU worker threads; 0 = all cores
  bool profile = false;  ///< accumulate per-op times (see EncoderExecutor::profile_report)
  /// LoRA updates run next to the linears instead of merged into them: with `prebuilt` from
  /// the base's share(), adapters of one base share its packed weights. FP32 layers only.
  std::shared_ptr<const model::LoraModules> lora;
  /// What the device decided at build time (a plan's "device" section, written from
  /// EncoderExecutor::device_record()); empty = nothing.
  std::string device_record;
  /// Time the device's kernel choices on this machine now, for device_record() (`kiln build`;
  /// the CUDA device tunes its GEMMs for token buckets up to `autotune_max_tokens`). Devices
  /// whose choices need no timing ignore it.
  bool autotune = false;
  int64_t autotune_max_tokens = 65536;
  /// Run erf-GELU models' GELU as its tanh approximation fused into the FFN-in GEMM, as
  /// TensorRT's BERT plugins do (differences ~1e-3, within FP16 rounding); CUDA only.
  bool fast_gelu = false;
  /// See EngineOptions::fp8_min_tokens.
  int64_t fp8_min_tokens = -1;
};

/// One line of `kiln inspect`: a compiled layer, its kernel and size.
struct LayerReport {
  std::string name;
  std::string kernel;
  std::string precision;
  size_t bytes = 0;
};

/// A model compiled for one device. run() is thread-safe: concurrent calls use separate
/// scratch memory.
class EncoderExecutor {
 public:
  virtual ~EncoderExecutor() = default;
  /// Runs embeddings and all layers; writes the last hidden states [num_tokens, hidden] as
  /// float32 to host memory `hidden`. Inputs must be validated by the caller.
  virtual Status run(const EncoderInputs& inputs, float* hidden) const = 0;
  /// Whether run_pooled() is implemented (else callers pool run()'s output on the host).
  virtual bool pools() const { return false; }
  /// Runs embeddings and all layers and writes only the pooled sentence embeddings
  /// [num_sequences, hidden] (float32, host memory), pooled as runtime::pool does, where the
  /// hidden states are: a GPU then moves one row per sequence instead of one per token.
  /// Only for devices whose pools() is true; Unimplemented by default.
  virtual Status run_pooled(const EncoderInputs& inputs, const PoolingConfig& pooling,
                            float* embeddings) const {
    (void)inputs, (void)pooling, (void)embeddings;
    return unimplemented("this device does not pool");
  }
  /// run(), calling `observer` with the input of every linear layer. Devices that cannot
  /// observe answer Unimplemented; the CPU FP32 executor can.
  virtual Status run_observed(const EncoderInputs& inputs, float* hidden,
                              const LinearObserver& observer) const {
    (void)inputs, (void)hidden, (void)observer;
    return unimplemented("this device cannot observe activations");
  }
  /// Its packed linears and embedding tables for other executors to use in place (LoRA
  /// adapters kept apart from this base); the caller sets `owner` to keep this executor alive.
  /// Null when the device cannot share.
  virtual std::shared_ptr<PrebuiltWeights> share() const { return nullptr; }
  /// Every linear layer's packed weights, for a plan file; valid while the executor lives.
  /// Empty when the device keeps no reusable packed form.
  virtual PackedLinears packed_linears() const { return {}; }
  /// What a plan stores for this device besides the weights (see
  /// ExecutorOptions::device_record); empty = nothing.
  virtual std::string device_record() const { return {}; }
  /// The compiled layers, for inspection.
  virtual std::vector<LayerReport> describe() const = 0;
  /// Time per op since load, when compiled with ExecutorOptions::profile.
  virtual std::vector<std::string> profile_report() const = 0;
};

/// A compute device. Stateless apart from what it owns for its kernels; thread-safe.
class Device {
 public:
  virtual ~Device() = default;
  /// Registry name, e.g. "cpu".
  virtual std::string_view name() const = 0;
  /// Whether `op` runs at `precision` on this device (on this machine).
  virtual bool supports(Op op, Precision precision) const = 0;
  /// Features of this machine that kernels use (what a plan's features are checked against).
  virtual std::vector<std::string> features() const { return {}; }
  /// What a model compiled here with layers at `precision` depends on.
  virtual DeviceTarget target(Precision precision) const {
    (void)precision;
    return {};
  }
  /// Packs the weights into the device's formats; takes them so that tables the device uses
  /// as they are (embeddings) move instead of being copied.
  virtual Result<std::unique_ptr<EncoderExecutor>> compile(
      const model::ModelConfig& config, model::EncoderWeights weights,
      const ExecutorOptions& options) const = 0;
};

/// The device registered under `name`, or NotFound listing the known names.
Result<const Device*> find_device(std::string_view name);
/// Names of the registered devices.
std::vector<std::string> device_names();

}  // namespace kiln::backend
