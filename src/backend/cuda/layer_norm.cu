#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/fp8_util.cuh"
#include "backend/cuda/layer_norm.h"

#include <type_traits>

namespace kiln::backend::cuda {

namespace {

constexpr int kWarps = 8;  // rows per block, one warp each

// The residual and the output of its type may be the same buffer: each lane reads its elements
// before writing them.
template <typename T, typename R, int kVec>
__global__ void __launch_bounds__(kWarps * 32)
    bias_residual_layer_norm_kernel(const T* __restrict__ y, const T* __restrict__ bias,
                                    const R* residual, const float* __restrict__ gamma,
                                    const float* __restrict__ beta, int rows, int hidden, float eps,
                                    T* out, float* out_f32, uint2* out8, float* scales8) {
  const int lane = threadIdx.x % 32;
  const int r = blockIdx.x * kWarps + threadIdx.x / 32;
  if (r >= rows) return;
  const int64_t base = static_cast<int64_t>(r) * hidden;
  float v[kVec][8] = {};
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    if (!row_vec_valid<kVec>(i, lane, hidden)) continue;
    const int c = (lane + 32 * i) * 8;
    float a[8], res[8];
    load8(y + base + c, a);
    load8(residual + base + c, res);
    if (bias != nullptr) {
      float b[8];
      load8(bias + c, b);
#pragma unroll
      for (int j = 0; j < 8; ++j) a[j] += b[j];
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) v[i][j] = a[j] + res[j];
  }
  warp_layer_norm<kVec>(v, hidden, lane, gamma, beta, eps);
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    if (!row_vec_valid<kVec>(i, lane, hidden)) continue;
    const int c = (lane + 32 * i) * 8;
    if (out_f32 != nullptr) store8(out_f32 + base + c, v[i]);
    if (out != nullptr) store8(out + base + c, v[i]);
  }
  if (out8 == nullptr) return;
  float m = 0.0f;
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    if (!row_vec_valid<kVec>(i, lane, hidden)) continue;
#pragma unroll
    for (int j = 0; j < 8; ++j) m = fmaxf(m, fabsf(v[i][j]));
  }
  const float scale = scale_from_amax(warp_max(m));
  if (lane == 0) scales8[r] = scale;
  const float inv = 1.0f / scale;
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    if (!row_vec_valid<kVec>(i, lane, hidden)) continue;
    out8[(base + (lane + 32 * i) * 8) / 8] = pack8(v[i], inv);
  }
}

}  // namespace

Status bias_residual_layer_norm(DType dtype, const void* y, const void* bias, const void* residual,
                                bool residual_f32, const float* gamma, const float* beta,
                                int64_t rows, int64_t hidden, float eps, void* out, float* out_f32,
                                cudaStream_t stream, const Fp8RowsOut& fp8) {
  if (out == nullptr && out_f32 == nullptr) {
    return invalid_argument("bias_residual_layer_norm: no output");
  }
  if (fp8.data != nullptr && fp8.scales == nullptr) {
    return invalid_argument("bias_residual_layer_norm: an FP8 copy needs its row scales");
  }
  if (rows == 0) return ok_status();
  return dispatch_half(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return dispatch_row_vectors(hidden, [&](auto vec) {
      constexpr int kVec = decltype(vec)::value;
      const auto launch = [&](auto* res) {
        using R = std::remove_const_t<std::remove_pointer_t<decltype(res)>>;
        bias_residual_layer_norm_kernel<T, R, kVec>
            <<<blocks_for(rows, kWarps), kWarps * 32, 0, stream>>>(
                static_cast<const T*>(y), static_cast<const T*>(bias), res, gamma, beta,
                static_cast<int>(rows), static_cast<int>(hidden), eps, static_cast<T*>(out),
                out_f32, static_cast<uint2*>(fp8.data), fp8.scales);
      };
      if (residual_f32) {
        launch(static_cast<const float*>(residual));
      } else {
        launch(static_cast<const T*>(residual));
      }
      return last_launch_status("bias_residual_layer_norm_kernel");
    });
  });
}

}  // namespace kiln::backend::cuda
