#include "backend/cpu/layer_formats.h"

#include <string>

#include "backend/cpu/cpu_features.h"

namespace kiln::backend::cpu {

namespace {

using quant::LinearSite;

Epilogue ffn_epilogue(Activation a) {
  switch (a) {
    case Activation::kGeluErf:
      return Epilogue::kGeluErf;
    case Activation::kGeluTanh:
      return Epilogue::kGeluTanh;
    case Activation::kRelu:
      return Epilogue::kRelu;
  }
  return Epilogue::kNone;
}

constexpr int idx(LinearSite s) { return static_cast<int>(s); }

}  // namespace

Result<std::vector<LayerSpecs>> layer_specs(const model::ModelConfig& config,
                                            const ExecutorOptions& options) {
  const quant::ModelQuant* mq = options.quant.get();
  if (mq != nullptr && static_cast<int64_t>(mq->layers.size()) != config.num_layers) {
    return invalid_argument("quantization has " + std::to_string(mq->layers.size()) +
                            " layers, the model " + std::to_string(config.num_layers));
  }
  const bool bf16_dot = cpu_features().avx512_bf16 && active_isa() == Isa::kAvx512;
  std::vector<LayerSpecs> out(static_cast<size_t>(config.num_layers));
  for (size_t i = 0; i < out.size(); ++i) {
    LayerSpecs& ls = out[i];
    LayerFormats& f = ls.formats;
    for (int s = 0; s < quant::kLinearSites; ++s) {
      LinearSpec& spec = ls.linears[s];
      if (mq == nullptr) {
        spec.precision = options.precision;
      } else {
        const quant::LinearQuant& q = mq->layers[i].sites[s];
        spec.precision = q.precision;
        spec.scaling = q.scaling;
        spec.input_scale = q.input_scale;
        spec.smooth = q.smooth;
      }
      f.site[s] = spec.precision;
    }
    auto prec = [&f](LinearSite s) { return f.site[idx(s)]; };
    f.attention_bf16 = bf16_dot && prec(LinearSite::kQkv) != Precision::kF32 &&
                       prec(LinearSite::kAttnOut) != Precision::kF32;
    f.ctx_bf16 = f.attention_bf16 || prec(LinearSite::kAttnOut) == Precision::kBF16;
    // An INT8 FFN-out quantizes the float GELU output: a bfloat16 copy would round it first.
    f.mid_bf16 = prec(LinearSite::kFfnOut) == Precision::kBF16;
    f.mid_int8 = prec(LinearSite::kFfnIn) == Precision::kInt8 &&
                 prec(LinearSite::kFfnOut) == Precision::kInt8;
    f.qkv_reads_bf16 = prec(LinearSite::kQkv) == Precision::kBF16;
    f.ffn_in_reads_bf16 = prec(LinearSite::kFfnIn) == Precision::kBF16;

    // Residual adds are fused into the output GEMMs (sum post-op into the residual stream);
    // GEMMs feeding a bfloat16 consumer write bfloat16 directly.
    LinearSpec& qkv = ls.linears[idx(LinearSite::kQkv)];
    qkv.bf16_output = f.attention_bf16;
    LinearSpec& attn_out = ls.linears[idx(LinearSite::kAttnOut)];
    attn_out.accumulate = true;
    attn_out.bf16_input = f.ctx_bf16;
    LinearSpec& ffn_in = ls.linears[idx(LinearSite::kFfnIn)];
    ffn_in.epilogue = ffn_epilogue(config.activation);
    ffn_in.bf16_output = f.mid_bf16;
    LinearSpec& ffn_out = ls.linears[idx(LinearSite::kFfnOut)];
    ffn_out.accumulate = true;
    if (mq != nullptr && ffn_out.precision == Precision::kInt8) ffn_out.input_clip = mq->gelu_clip;

    const int64_t in_dims[] = {config.hidden_size, config.hidden_size, config.hidden_size,
                               config.intermediate_size};
    for (int s = 0; s < quant::kLinearSites; ++s) {
      const auto& smooth = ls.linears[s].smooth;
      if (!smooth.empty() && static_cast<int64_t>(smooth.size()) != in_dims[s]) {
        return invalid_argument("quantization of layer " + std::to_string(i) + " site " +
                                std::to_string(s) + ": " + std::to_string(smooth.size()) +
                                " smoothing factors for " + std::to_string(in_dims[s]) + " inputs");
      }
    }
  }
  return out;
}

bool all_fp32(const std::vector<LayerSpecs>& layers) {
  for (const auto& l : layers) {
    for (Precision p : l.formats.site) {
      if (p != Precision::kF32) return false;
    }
  }
  return true;
}

std::vector<float> unsmooth(const float* weight, int64_t out, int64_t in,
                            const std::vector<float>& smooth) {
  std::vector<float> w(weight, weight + out * in);
  for (int64_t n = 0; n < out; ++n) {
    for (int64_t k = 0; k < in; ++k) w[n * in + k] /= smooth[k];
  }
  return w;
}

}  // namespace kiln::backend::cpu
