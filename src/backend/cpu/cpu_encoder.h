// The encoder stack compiled for the CPU: packed oneDNN linears per layer plus the fused
// embedding, attention and LayerNorm kernels.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

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
  std::vector<LayerReport> describe() const override;
  std::vector<std::string> profile_report() const override { return profile_.report(); }

 private:
  struct Layer {
    std::unique_ptr<Linear> qkv, attn_out, ffn_in, ffn_out;
    model::NormWeights attn_norm, ffn_norm;
  };
  // Scratch activations for one call; reused through a free list so steady-state calls do not
  // allocate.
  struct Workspace {
    std::vector<uint16_t> x_bf16, qkv_bf16, ctx_bf16, inter_bf16;
    std::vector<float> qkv, ctx, inter;
  };
  explicit CpuEncoder(bool profile) : profile_(profile) {}
  std::unique_ptr<Workspace> acquire_workspace() const;
  void release_workspace(std::unique_ptr<Workspace> ws) const;

  mutable core::OpProfile profile_;
  model::ModelConfig config_;
  ExecutorOptions options_;
  model::EncoderWeights embeddings_;  // embedding tables and norm only
  std::vector<Layer> layers_;
  mutable std::mutex ws_mu_;
  mutable std::vector<std::unique_ptr<Workspace>> free_workspaces_;
};

}  // namespace kiln::backend::cpu
