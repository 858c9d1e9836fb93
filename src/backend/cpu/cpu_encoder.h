// The encoder stack compiled for the CPU: packed oneDNN linears per layer plus the fused
// embedding, attention and LayerNorm kernels.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "backend/cpu/embedding.h"
#include "backend/cpu/layer_formats.h"
#include "backend/cpu/linear.h"
#include "backend/device.h"
#include "core/op_profile.h"

namespace kiln::backend::cpu {

/// See EncoderExecutor. Threading: OpenMP, because Debian's oneDNN is built with the OpenMP
/// runtime; sharing its thread team keeps our kernels and the GEMMs from competing pools. The
/// team size is set per call on the calling thread, so engines may differ.
class CpuEncoder final : public EncoderExecutor {
 public:
  static Result<std::unique_ptr<CpuEncoder>> create(const model::ModelConfig& config,
                                                    model::EncoderWeights weights,
                                                    const ExecutorOptions& options);

  Status run(const EncoderInputs& inputs, float* hidden) const override;
  /// Observes the float input of every linear; Unimplemented unless every linear is FP32.
  Status run_observed(const EncoderInputs& inputs, float* hidden,
                      const LinearObserver& observer) const override;
  PackedLinears packed_linears() const override;
  std::shared_ptr<PrebuiltWeights> share() const override;
  std::vector<LayerReport> describe() const override;
  std::vector<std::string> profile_report() const override { return profile_.report(); }

 private:
  struct Layer {
    std::unique_ptr<Linear> qkv, attn_out, ffn_in, ffn_out;
    Epilogue ffn_activation = Epilogue::kNone;  // applied after the LoRA update (lora_ only)
    model::NormWeights attn_norm, ffn_norm;
    LayerFormats formats;  // precisions and the formats of the activations between the linears
  };
  // Scratch activations for one call; reused through a free list so steady-state calls do not
  // allocate.
  struct Workspace {
    std::vector<uint16_t> x_bf16, qkv_bf16, ctx_bf16, inter_bf16;
    std::vector<float> qkv, ctx, inter, inter_scales;
    std::vector<uint8_t> inter_int8;
  };
  explicit CpuEncoder(bool profile) : profile_(profile) {}
  Status forward(const EncoderInputs& inputs, float* hidden, const LinearObserver* observer) const;
  std::unique_ptr<Workspace> acquire_workspace() const;
  void release_workspace(std::unique_ptr<Workspace> ws) const;

  mutable core::OpProfile profile_;
  model::ModelConfig config_;
  ExecutorOptions options_;
  model::EncoderWeights embeddings_;  // embedding tables and norm only
  EmbeddingTables tables_;            // into embeddings_ or a plan's mapping (options_.prebuilt)
  std::vector<Layer> layers_;
  std::shared_ptr<const model::LoraModules> lora_;  // updates next to the linears, or null
  mutable std::mutex ws_mu_;
  mutable std::vector<std::unique_ptr<Workspace>> free_workspaces_;
};

}  // namespace kiln::backend::cpu
