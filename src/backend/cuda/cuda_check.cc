#include "backend/cuda/cuda_check.h"

#include <mutex>
#include <set>
#include <string>
#include <tuple>

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

Status opt_in_shared_memory(const void* kernel, size_t bytes) {
  int device = 0;
  KILN_CUDA_CHECK(cudaGetDevice(&device));
  static std::mutex mu;
  static std::set<std::tuple<const void*, int, size_t>> done;  // guarded by mu
  std::lock_guard lock(mu);
  if (done.contains({kernel, device, bytes})) return ok_status();
  KILN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(bytes)));
  done.insert({kernel, device, bytes});
  return ok_status();
}

}  // namespace kiln::backend::cuda
