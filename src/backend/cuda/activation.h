// Element-wise kernels: bias + exact (erf) GELU after a GEMM whose epilogue cannot do it, and
// float32 -> F16/BF16 conversion of weights at load, random fill for kernel timing.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// x[r, c] = gelu_erf(x[r, c] + bias[c]) in place; x [rows, cols] and bias [cols] are `dtype`
/// (F16 or BF16), cols a multiple of 8. Device pointers, enqueued on `stream`.
Status bias_gelu_erf(DType dtype, void* x, const void* bias, int64_t rows, int64_t cols,
                     cudaStream_t stream);

/// out[i] = round(in[i]) to `dtype` (F16 or BF16) for i < n. Device pointers.
Status convert_from_f32(DType dtype, const float* in, void* out, int64_t n, cudaStream_t stream);

/// out[i] = a value in [-1, 1) hashed from (seed, i), as `dtype` (F16 or BF16): random
/// activations for timing kernels.
Status fill_random(DType dtype, void* out, int64_t n, uint32_t seed, cudaStream_t stream);

}  // namespace kiln::backend::cuda
