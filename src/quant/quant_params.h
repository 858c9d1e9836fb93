// Quantization decisions for one model, as `kiln build` makes them and a plan file stores them:
// per linear layer, its precision and how its input activations are scaled. Devices read this
// when they compile a model (backend::ExecutorOptions::quant).
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/dtype.h"
#include "model/weights.h"

namespace kiln::quant {

/// How an INT8 layer quantizes its input activations.
enum class ActivationScaling {
  kDynamicPerToken,  ///< absmax of each token row at run time
  kStaticPerTensor,  ///< one scale from calibration (LinearQuant::input_scale)
};

/// The four linear layers of an encoder layer, in execution order.
enum class LinearSite { kQkv = 0, kAttnOut = 1, kFfnIn = 2, kFfnOut = 3 };
inline constexpr int kLinearSites = 4;

/// The weights of one linear layer of a block.
inline const model::DenseWeights& site_weights(const model::LayerWeights& layer, LinearSite site) {
  switch (site) {
    case LinearSite::kQkv:
      return layer.qkv;
    case LinearSite::kAttnOut:
      return layer.attn_out;
    case LinearSite::kFfnIn:
      return layer.ffn_in;
    case LinearSite::kFfnOut:
      break;
  }
  return layer.ffn_out;
}
inline model::DenseWeights& site_weights(model::LayerWeights& layer, LinearSite site) {
  return const_cast<model::DenseWeights&>(
      site_weights(static_cast<const model::LayerWeights&>(layer), site));
}

/// One linear layer's quantization.
struct LinearQuant {
  /// kF32, kBF16 or kInt8 (mixed precision per layer); kF16 or kFp8 in CUDA plans
  Precision precision = Precision::kF32;
  ActivationScaling scaling = ActivationScaling::kDynamicPerToken;
  /// Static scale of the input: real value = int8 value * input_scale (absmax / 127 for the
  /// max calibrator). Only for kStaticPerTensor.
  float input_scale = 0.0f;
  /// SmoothQuant: the input was divided per channel by these factors (and the weights'
  /// input channels multiplied by them) when the plan was built; empty = not smoothed.
  /// Devices must divide activations by them before quantizing, unless the division was
  /// folded into the preceding LayerNorm (then this is empty).
  std::vector<float> smooth;
};

/// Quantization of a whole model: one entry per encoder layer and site.
struct ModelQuant {
  struct Layer {
    LinearQuant sites[kLinearSites];
  };
  std::vector<Layer> layers;
  /// Clip of the GELU output before the INT8 ffn_out layer (TensorRT's BERT demo clips at
  /// 10); 0 = no clip.
  float gelu_clip = 0.0f;
};

}  // namespace kiln::quant
