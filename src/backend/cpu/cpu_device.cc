#include "backend/cpu/cpu_device.h"

#include "backend/cpu/cpu_encoder.h"
#include "backend/cpu/cpu_features.h"
#include "backend/cpu/linear.h"

namespace kiln::backend::cpu {

namespace {

class CpuDevice final : public Device {
 public:
  std::string_view name() const override { return "cpu"; }

  bool supports(Op op, Precision precision) const override {
    // BF16 GEMMs run on any AVX-512 CPU (oneDNN emulates without AVX512_BF16), but only
    // AVX512_BF16 makes them fast; INT8 GEMMs need AVX512_VNNI (u8 x s8 dot products) and
    // the AVX-512 quantization kernel; the portable kernels support FP32 only. In an INT8
    // engine, attention and LayerNorm run in FP32 or BF16.
    if (precision == Precision::kF32) return true;
    // FP16 and FP8 are CUDA precisions
    if (precision == Precision::kF16 || precision == Precision::kFp8) return false;
    if (active_isa() != Isa::kAvx512) return false;
    if (precision == Precision::kInt8) return cpu_features().avx512_vnni;
    return cpu_features().avx512_bf16;
  }

  std::vector<std::string> features() const override {
    const CpuFeatures& f = cpu_features();
    std::vector<std::string> out;
    if (f.avx512) out.emplace_back("avx512");
    if (f.avx512_bf16) out.emplace_back("avx512_bf16");
    if (f.avx512_vnni) out.emplace_back("avx512_vnni");
    return out;
  }

  DeviceTarget target(Precision precision) const override {
    // BF16 and INT8 layers need their dot-product instructions (and AVX-512 kernels); packed
    // GEMM weights depend on the kernel oneDNN picks, AVX-512 when present.
    DeviceTarget t;
    if (precision != Precision::kF32) t.features.emplace_back("avx512");
    if (precision == Precision::kBF16) t.features.emplace_back("avx512_bf16");
    if (precision == Precision::kInt8) t.features.emplace_back("avx512_vnni");
    if (cpu_features().avx512) t.packing_features.emplace_back("avx512");
    t.packing_library = Linear::packing_library();
    return t;
  }

  Result<std::unique_ptr<EncoderExecutor>> compile(const model::ModelConfig& config,
                                                   model::EncoderWeights weights,
                                                   const ExecutorOptions& options) const override {
    if (options.fast_gelu) {
      return unimplemented(
          "cpu: --fast-gelu is a cuda option (the CPU runs GELU as the model "
          "config says)");
    }
    std::vector<Precision> used{options.precision};
    if (options.quant != nullptr) {
      for (const auto& layer : options.quant->layers) {
        for (const auto& site : layer.sites) used.push_back(site.precision);
      }
    }
    for (Precision p : used) {
      for (Op op : {Op::kEmbedding, Op::kLinear, Op::kAttention, Op::kLayerNorm}) {
        if (!supports(op, p)) {
          const char* why = p == Precision::kF16 || p == Precision::kFp8
                                ? " runs on the cuda device only"
                            : p == Precision::kInt8 ? " needs a CPU with AVX-512 and AVX512_VNNI"
                                                    : " needs a CPU with AVX512_BF16";
          return unimplemented("cpu: precision " + std::string(precision_name(p)) + why);
        }
      }
    }
    KILN_ASSIGN_OR_RETURN(auto enc, CpuEncoder::create(config, std::move(weights), options));
    return std::unique_ptr<EncoderExecutor>(std::move(enc));
  }
};

}  // namespace

std::unique_ptr<Device> make_cpu_device() { return std::make_unique<CpuDevice>(); }

}  // namespace kiln::backend::cpu
