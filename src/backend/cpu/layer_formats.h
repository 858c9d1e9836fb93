// Per-layer precision on the CPU: which precision each of a layer's four linears runs at (from
// ExecutorOptions: one precision everywhere, or a plan's ModelQuant per layer and site), and
// what that implies for the activations between them (float or bfloat16, FP32 or BF16
// attention).
#pragma once

#include <array>
#include <vector>

#include "backend/cpu/linear.h"
#include "backend/device.h"
#include "model/config.h"

namespace kiln::backend::cpu {

/// One encoder layer's precisions and the formats of its intermediate activations.
struct LayerFormats {
  std::array<Precision, quant::kLinearSites> site{};
  /// The QKV GEMM writes bfloat16 and attention runs on AVX512_BF16 dot products: BF16 and
  /// INT8 layers on CPUs with AVX512_BF16 (attention stays in floating point either way).
  bool attention_bf16 = false;
  bool ctx_bf16 = false;  ///< the attention context is bfloat16
  bool mid_bf16 = false;  ///< the FFN's intermediate activations are bfloat16
  /// Both FFN layers are INT8: FFN-in writes its output already quantized for FFN-out.
  bool mid_int8 = false;
  bool qkv_reads_bf16 = false;     ///< the QKV GEMM reads the bfloat16 copy of the hidden states
  bool ffn_in_reads_bf16 = false;  ///< the FFN-in GEMM reads it
};

/// A layer's formats and the specs of its linears (indexed by quant::LinearSite; out and in
/// are left for the caller).
struct LayerSpecs {
  LayerFormats formats;
  std::array<LinearSpec, quant::kLinearSites> linears;
};

/// Resolves every layer's precision and formats. InvalidArgument when options.quant does not
/// match the model (layer count, smoothing vector lengths).
Result<std::vector<LayerSpecs>> layer_specs(const model::ModelConfig& config,
                                            const ExecutorOptions& options);

/// Whether every linear of every layer runs in FP32 (what run_observed needs).
bool all_fp32(const std::vector<LayerSpecs>& layers);

/// `weight` ([out, in]) with the SmoothQuant factors divided back out of its input channels:
/// a smoothed layer kept in FP32 or BF16 then needs no division of its input at run time.
std::vector<float> unsmooth(const float* weight, int64_t out, int64_t in,
                            const std::vector<float>& smooth);

}  // namespace kiln::backend::cpu
