// Helpers for the CUDA backend tests: skip without a GPU, device buffers, 16-bit conversions on
// the host and error measures that fail on NaN (unwritten, poisoned outputs).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/half.h"
#include "kiln/dtype.h"

namespace kiln::testing {

/// True when a CUDA GPU is usable (the CUDA tests skip otherwise, as in CI).
inline bool cuda_gpu_available() {
  int n = 0;
  const bool ok = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
  cudaGetLastError();
  return ok;
}

#define KILN_SKIP_WITHOUT_GPU()                                                \
  do {                                                                         \
    if (!::kiln::testing::cuda_gpu_available()) GTEST_SKIP() << "no CUDA GPU"; \
  } while (0)

/// Device memory for a test; filled with NaN (0xff bytes) when created.
class DeviceMem {
 public:
  explicit DeviceMem(size_t bytes) : bytes_(bytes) {
    EXPECT_EQ(cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes), cudaSuccess);
    poison();
  }
  template <typename T>
  explicit DeviceMem(const std::vector<T>& host) : DeviceMem(host.size() * sizeof(T)) {
    EXPECT_EQ(cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceMem() { cudaFree(ptr_); }
  DeviceMem(const DeviceMem&) = delete;
  DeviceMem& operator=(const DeviceMem&) = delete;

  void poison() { EXPECT_EQ(cudaMemset(ptr_, 0xff, bytes_), cudaSuccess); }
  template <typename T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  template <typename T>
  std::vector<T> download() const {
    std::vector<T> v(bytes_ / sizeof(T));
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(v.data(), ptr_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

/// float -> 16-bit bits of `dtype` (round to nearest even).
inline std::vector<uint16_t> to_16bit(const std::vector<float>& v, DType dtype) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::kBF16) {
      out[i] = core::float_to_bf16(v[i]);
    } else {
      const __half h = __float2half_rn(v[i]);
      std::memcpy(&out[i], &h, 2);
    }
  }
  return out;
}

inline std::vector<float> from_16bit(const std::vector<uint16_t>& v, DType dtype) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    out[i] = dtype == DType::kBF16 ? core::bf16_to_float(v[i]) : core::fp16_to_float(v[i]);
  }
  return out;
}

/// `v` as the 16-bit type would hold it.
inline std::vector<float> rounded(const std::vector<float>& v, DType dtype) {
  return from_16bit(to_16bit(v, dtype), dtype);
}

/// Elements that are NaN or infinite.
inline size_t count_non_finite(const std::vector<float>& v) {
  size_t n = 0;
  for (float x : v) n += std::isfinite(x) ? 0 : 1;
  return n;
}

/// max |a - ref| / max |ref|; infinity when a holds a non-finite value or sizes differ.
template <typename Ref>
double rel_error_nan_fails(const std::vector<float>& a, const std::vector<Ref>& ref) {
  if (a.size() != ref.size() || count_non_finite(a) > 0) return INFINITY;
  double diff = 0, scale = 1e-12;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - static_cast<double>(ref[i])));
    scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
  }
  return diff / scale;
}

inline const char* dtype_label(DType d) { return d == DType::kBF16 ? "bf16" : "fp16"; }

}  // namespace kiln::testing
