// The residual block's tail on the GPU: out = LayerNorm(y + bias + residual), one pass.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/fp8.h"
#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// For every row r < rows: LayerNorm(y[r] + bias + residual[r]) * gamma + beta, in float. y and
/// bias are `dtype` (F16 or BF16), bias may be null; the residual is float32 when
/// `residual_f32`, else `dtype`; gamma and beta are float32 [hidden]. Writes `out` (`dtype`)
/// and/or `out_f32` (float32), whichever are not null (at least one); the one of the
/// residual's type may alias it. With `fp8.data`, also the rows as E4M3 with a scale each
/// (as quantize_fp8_rows on the float result), for the FP8 GEMM that reads them next. hidden is
/// a multiple of 8, at most 2048. Device pointers, enqueued on `stream`.
Status bias_residual_layer_norm(DType dtype, const void* y, const void* bias, const void* residual,
                                bool residual_f32, const float* gamma, const float* beta,
                                int64_t rows, int64_t hidden, float eps, void* out, float* out_f32,
                                cudaStream_t stream, const Fp8RowsOut& fp8 = {});

}  // namespace kiln::backend::cuda
