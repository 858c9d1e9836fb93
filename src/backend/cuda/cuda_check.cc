#include "backend/cuda/cuda_check.h"

#include <string>

namespace kiln::backend::cuda {

Status cuda_error(cudaError_t error, const char* expr, const char* file, int line) {
  std::string msg = std::string("cuda: ") + expr + " failed: " + cudaGetErrorName(error) + " (" +
                    cudaGetErrorString(error) + ") at " + file + ":" + std::to_string(line);
  switch (error) {
    case cudaErrorMemoryAllocation:
      return resource_exhausted(std::move(msg));
    case cudaErrorNoDevice:
    case cudaErrorInsufficientDriver:
    case cudaErrorInvalidDevice:
      return unavailable(std::move(msg));
    default:
      return internal_error(std::move(msg));
  }
}

Status last_launch_status(const char* kernel) {
  const cudaError_t error = cudaGetLastError();
  if (error == cudaSuccess) return ok_status();
  return cuda_error(error, kernel, "kernel launch", 0);
}

}  // namespace kiln::backend::cuda
