#include <cuda_runtime.h>

#include <cmath>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/pooling.h"

namespace kiln::backend::cuda {

namespace {

constexpr int kThreads = 256;

// One block per sequence; each thread owns columns c, c + blockDim, ... Sums in float: a
// sequence is at most a few thousand rows, and the host reference's double sum differs by
// float rounding only.
__global__ void pool_kernel(const float* __restrict__ hidden, const int32_t* __restrict__ cu,
                            int hidden_size, int mode, bool normalize, float* __restrict__ out) {
  const int s = blockIdx.x;
  const int begin = cu[s], len = cu[s + 1] - begin;
  const float* rows = hidden + static_cast<int64_t>(begin) * hidden_size;
  float* o = out + static_cast<int64_t>(s) * hidden_size;
  float local_sq = 0.0f;
  for (int c = threadIdx.x; c < hidden_size; c += blockDim.x) {
    float v;
    if (mode == static_cast<int>(PoolingMode::kCls)) {
      v = rows[c];
    } else if (mode == static_cast<int>(PoolingMode::kMax)) {
      v = rows[c];
      for (int t = 1; t < len; ++t) v = fmaxf(v, rows[static_cast<int64_t>(t) * hidden_size + c]);
    } else {
      float acc = 0.0f;
      for (int t = 0; t < len; ++t) acc += rows[static_cast<int64_t>(t) * hidden_size + c];
      v = mode == static_cast<int>(PoolingMode::kMean) ? acc / static_cast<float>(len)
                                                       : acc / sqrtf(static_cast<float>(len));
    }
    o[c] = v;
    local_sq += v * v;
  }
  if (!normalize) return;
  __shared__ float partial[kThreads / 32];
  for (int off = 16; off > 0; off /= 2) local_sq += __shfl_xor_sync(0xffffffffu, local_sq, off);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = local_sq;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < blockDim.x / 32 ? partial[threadIdx.x] : 0.0f;
    for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (threadIdx.x == 0) partial[0] = v;
  }
  __syncthreads();
  // sentence-transformers divides by max(norm, 1e-12).
  const float inv = 1.0f / fmaxf(sqrtf(partial[0]), 1e-12f);
  for (int c = threadIdx.x; c < hidden_size; c += blockDim.x) o[c] *= inv;
}

}  // namespace

Status pool_sequences(const float* hidden, const int32_t* cu, int64_t sequences,
                      int64_t hidden_size, const PoolingConfig& pooling, float* out,
                      cudaStream_t stream) {
  if (sequences <= 0) return ok_status();
  pool_kernel<<<static_cast<unsigned>(sequences), kThreads, 0, stream>>>(
      hidden, cu, static_cast<int>(hidden_size), static_cast<int>(pooling.mode), pooling.normalize,
      out);
  return last_launch_status("pool_kernel");
}

}  // namespace kiln::backend::cuda
