// Every CUDA runtime call is checked: KILN_CUDA_CHECK returns a Status naming the call, file and
// line from the enclosing function when the call fails.
#pragma once

#include <cuda_runtime.h>

#include "kiln/status.h"

namespace kiln::backend::cuda {

/// The Status for a failed CUDA call: out of memory is ResourceExhausted, a missing device or
/// driver Unavailable, anything else Internal.
Status cuda_error(cudaError_t error, const char* expr, const char* file, int line);

/// The launch error of the last kernel started on this thread, as a Status.
Status last_launch_status(const char* kernel);

/// Lets `kernel` use `bytes` of dynamic shared memory (above 48 KiB a kernel must opt in) on the
/// current device. The attribute belongs to each device's context, so this is done once per
/// kernel and device, remembered; thread-safe, cheap after the first call.
Status opt_in_shared_memory(const void* kernel, size_t bytes);

}  // namespace kiln::backend::cuda

/// Returns a Status from the enclosing function when the CUDA call `expr` fails.
#define KILN_CUDA_CHECK(expr)                                                                \
  do {                                                                                       \
    const cudaError_t kiln_cuda_error_ = (expr);                                             \
    if (kiln_cuda_error_ != cudaSuccess) {                                                   \
      return ::kiln::backend::cuda::cuda_error(kiln_cuda_error_, #expr, __FILE__, __LINE__); \
    }                                                                                        \
  } while (0)
