// The CUDA backend's part of a plan (the "device" section): what `kiln build --device cuda`
// decided for this GPU that the weights do not say. JSON, so `kiln inspect` can print its
// "summary" lines without the CUDA backend:
//   {"backend": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "cublaslt_version": 130100,
//    "fast_gelu": false, "gemms": [{"rows", "out", "in", "epilogue", "dtype", "algo" (the
//    cublasLtMatmulAlgo_t as 128 hex digits), "us", "heuristic_us", "candidates", "kernel"}],
//    "summary": ["..."]}
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "backend/cuda/gemm_tuning.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

struct DeviceRecord {
  TuningTarget target;  ///< where `gemms` was timed
  /// Erf-GELU models run GELU as its tanh approximation in the FFN-in GEMM's epilogue.
  bool fast_gelu = false;
  std::shared_ptr<const GemmTuning> gemms;  ///< null when not tuned
};

std::string encode_device_record(const DeviceRecord& record);
/// DataLoss naming the problem when `bytes` is not a CUDA device record.
Result<DeviceRecord> decode_device_record(std::string_view bytes);

}  // namespace kiln::backend::cuda
