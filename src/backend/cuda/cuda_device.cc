#include "backend/cuda/cuda_device.h"

#include <cuda_runtime.h>

#include <mutex>
#include <string>

#include "backend/cuda/cuda_encoder.h"

namespace kiln::backend::cuda {

namespace {

// What the probe found: the GPU kiln runs on (device 0) or why there is none.
struct Probe {
  bool usable = false;
  std::string name;
  std::string why_not;
};

Probe probe_gpu() {
  Probe p;
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    cudaGetLastError();
    p.why_not = e != cudaSuccess
                    ? std::string("no usable CUDA driver or GPU (") + cudaGetErrorString(e) + ")"
                    : "no CUDA GPU";
    return p;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    cudaGetLastError();
    p.why_not = "cannot read the properties of GPU 0";
    return p;
  }
  p.name = prop.name;
  // The kernels are built for sm_90a only (Hopper: H100, H200).
  if (prop.major != 9 || prop.minor != 0) {
    p.why_not = std::string("GPU 0 (") + prop.name + ") has compute capability " +
                std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                "; kiln's CUDA kernels are built for 9.0 (sm_90a)";
    return p;
  }
  p.usable = true;
  return p;
}

class CudaDevice final : public Device {
 public:
  std::string_view name() const override { return "cuda"; }

  bool supports(Op op, Precision precision) const override {
    (void)op;
    return probe().usable && (precision == Precision::kF16 || precision == Precision::kBF16 ||
                              precision == Precision::kFp8);
  }

  std::vector<std::string> features() const override {
    if (!probe().usable) return {};
    return {"sm_90a"};
  }

  DeviceTarget target(Precision precision) const override {
    (void)precision;
    DeviceTarget t;
    t.features = {"sm_90a"};
    return t;
  }

  Result<std::unique_ptr<EncoderExecutor>> compile(const model::ModelConfig& config,
                                                   model::EncoderWeights weights,
                                                   const ExecutorOptions& options) const override {
    const Probe& p = probe();
    if (!p.usable) return unavailable("cuda: " + p.why_not);
    const Precision prec = options.precision;
    if (prec != Precision::kF16 && prec != Precision::kBF16 && prec != Precision::kFp8) {
      return unimplemented("cuda: precision " + std::string(precision_name(prec)) +
                           " is not supported; use fp16, bf16 or fp8");
    }
    if (options.quant != nullptr) {
      for (const auto& layer : options.quant->layers) {
        for (const auto& site : layer.sites) {
          if (site.precision != prec) {
            return unimplemented("cuda: per-layer precisions are not supported");
          }
        }
      }
    }
    if (options.prebuilt != nullptr) {
      for (const auto& layer : options.prebuilt->linears) {
        for (const auto& w : layer) {
          if (w.data != nullptr) {
            return unimplemented("cuda: plans with packed linear weights are not supported");
          }
        }
      }
    }
    KILN_ASSIGN_OR_RETURN(auto enc, CudaEncoder::create(0, config, std::move(weights), options));
    return std::unique_ptr<EncoderExecutor>(std::move(enc));
  }

 private:
  const Probe& probe() const {
    std::call_once(once_, [this] { probe_ = probe_gpu(); });
    return probe_;
  }

  mutable std::once_flag once_;
  mutable Probe probe_;
};

}  // namespace

std::unique_ptr<Device> make_cuda_device() { return std::make_unique<CudaDevice>(); }

}  // namespace kiln::backend::cuda
