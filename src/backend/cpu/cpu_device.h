// The CPU device: oneDNN GEMMs plus kiln's own AVX-512 kernels, threaded with OpenMP.
#pragma once

#include <memory>

#include "backend/device.h"

namespace kiln::backend::cpu {

/// Creates the CPU device (registered as "cpu").
std::unique_ptr<Device> make_cpu_device();

}  // namespace kiln::backend::cpu
