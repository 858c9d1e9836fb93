// The backend interface: a device compiles a model's weights into an executor that runs the
// encoder stack on ragged batches. Devices are found by name in one registry (registry.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/dtype.h"
#include "kiln/status.h"
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
using LinearObserver = std::function<void(int layer, quant::LinearSite site, const float* x,
                                          int64_t rows, int64_t cols)>;

/// Options for compiling a model on a device.
struct ExecutorOptions {
  /// Precision of every layer, unless `quant` says otherwise per layer.
  Precision precision = Precision::kF32;
  /// Per-layer precisions and activation scales (from a plan); null = `precision` everywhere,
  /// with dynamic per-token activation scales for kInt8.
  std::shared_ptr<const quant::ModelQuant> quant;
  int num_threads = 0;   ///< CPU worker threads; 0 = all cores
  bool profile = false;  ///< accumulate per-op times (see EncoderExecutor::profile_report)
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
  /// run(), calling `observer` with the input of every linear layer. Devices that cannot
  /// observe answer Unimplemented; the CPU FP32 executor can.
  virtual Status run_observed(const EncoderInputs& inputs, float* hidden,
                              const LinearObserver& observer) const {
    (void)inputs, (void)hidden, (void)observer;
    return unimplemented("this device cannot observe activations");
  }
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
