#include "backend/cpu/cpu_device.h"

#include "backend/cpu/cpu_encoder.h"
#include "backend/cpu/cpu_features.h"

namespace kiln::backend::cpu {

namespace {

class CpuDevice final : public Device {
 public:
  std::string_view name() const override { return "cpu"; }

  bool supports(Op op, Precision precision) const override {
    // BF16 GEMMs run on any AVX-512 CPU (oneDNN emulates without AVX512_BF16), but only
    // AVX512_BF16 makes them fast; the portable kernels support FP32 only.
    if (precision == Precision::kF32) return true;
    if (precision == Precision::kInt8) return false;  // INT8 kernels: issue `kiln build`
    return cpu_features().avx512_bf16 && active_isa() == Isa::kAvx512;
  }

  Result<std::unique_ptr<EncoderExecutor>> compile(const model::ModelConfig& config,
                                                   model::EncoderWeights weights,
                                                   const ExecutorOptions& options) const override {
    for (Op op : {Op::kEmbedding, Op::kLinear, Op::kAttention, Op::kLayerNorm}) {
      if (!supports(op, options.precision)) {
        return unimplemented("cpu: precision " + std::string(precision_name(options.precision)) +
                             (options.precision == Precision::kInt8
                                  ? " is not implemented yet"
                                  : " needs a CPU with AVX512_BF16"));
      }
    }
    KILN_ASSIGN_OR_RETURN(auto enc, CpuEncoder::create(config, std::move(weights), options));
    return std::unique_ptr<EncoderExecutor>(std::move(enc));
  }
};

}  // namespace

std::unique_ptr<Device> make_cpu_device() { return std::make_unique<CpuDevice>(); }

}  // namespace kiln::backend::cpu
