// The CUDA device ("cuda"): FP16 and BF16 encoders on an sm_90 GPU. No CUDA types here, so the
// registry can include it.
#pragma once

#include <memory>

#include "backend/device.h"

namespace kiln::backend::cuda {

/// The device registered as "cuda". Creating it touches no GPU; the first question that needs
/// one (supports, compile) probes for it.
std::unique_ptr<Device> make_cuda_device();

}  // namespace kiln::backend::cuda
