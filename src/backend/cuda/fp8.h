// FP8 (E4M3) quantization for cuBLASLt's FP8 GEMMs on Hopper: per-tensor scales kept on the
// device, so a forward pass quantizes its activations without a host round trip (and inside a
// CUDA graph). A value x is stored as e4m3(x / scale), saturated to +-448, and the GEMM
// multiplies the scale back (cuBLASLt's A/B scale pointers).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// The largest finite E4M3 value.
inline constexpr float kFp8E4M3Max = 448.0f;

/// Floats between per-tensor scales (and their amax scratch) kept in one buffer: 256 bytes, so
/// each scale pointer handed to cuBLASLt is as aligned as a fresh allocation. Measured on the
/// H100 (cuBLASLt 13.1): a scale pointer 4 bytes into an allocation makes cublasLtMatmul
/// answer CUBLAS_STATUS_NOT_SUPPORTED without a log line.
inline constexpr int64_t kFp8ScaleStride = 64;

/// Dynamic per-tensor quantization of x[0, n) (`dtype` F16 or BF16, n a multiple of 8, 16-byte
/// aligned): *scale = max|x| / 448 (1 when x is all zeros, at least FLT_MIN, infinite when x
/// holds an infinity), out[i] = e4m3(x[i] / *scale). `amax` is one float of device scratch,
/// distinct from `scale`. Three launches on `stream` (zero, reduce, quantize);
/// all device pointers.
Status quantize_fp8_dynamic(DType dtype, const void* x, int64_t n, float* amax, float* scale,
                            void* out, cudaStream_t stream);

/// Per-row quantization of x [rows, cols] (`dtype` F16 or BF16, cols a multiple of 8, 16-byte
/// aligned): scales[r] = max_c |x[r, c]| / 448 (as quantize_fp8_dynamic per row), out[r, c] =
/// e4m3(x[r, c] / scales[r]). One launch, one warp per row: per-token activation scales, or
/// per-output-channel weight scales for a weight [out, in]. For cuBLASLt's outer-vector scaling.
Status quantize_fp8_rows(DType dtype, const void* x, int64_t rows, int64_t cols, float* scales,
                         void* out, cudaStream_t stream);

/// Where a kernel also writes its output as E4M3 with one scale per row, as quantize_fp8_rows
/// does: `data` [rows, cols] bytes, `scales` [rows] floats. Null `data`: no FP8 copy.
struct Fp8RowsOut {
  void* data = nullptr;
  float* scales = nullptr;
};

/// Static per-tensor quantization: out[i] = e4m3(x[i] / *scale), saturated, with *scale on the
/// device (from calibration or an earlier quantize_fp8_dynamic).
Status quantize_fp8(DType dtype, const void* x, int64_t n, const float* scale, void* out,
                    cudaStream_t stream);

}  // namespace kiln::backend::cuda
