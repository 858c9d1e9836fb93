// LayerNorm over rows, in place, optionally also writing a bfloat16 copy for the next GEMM.
#pragma once

#include <cstdint>

namespace kiln::backend::cpu {

/// x[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta for each of `rows` rows of
/// `cols` floats. When `bf16_out` is not null it receives the result as bfloat16 too.
/// Rows are processed in parallel on the calling thread's OpenMP team.
void layer_norm(float* x, const float* gamma, const float* beta, int64_t rows, int64_t cols,
                float eps, uint16_t* bf16_out);

/// One row (no threading); used by fused ops such as embeddings + LayerNorm.
void layer_norm_row(float* x, const float* gamma, const float* beta, int64_t cols, float eps,
                    uint16_t* bf16_out);

/// Converts n floats to bfloat16 (round to nearest even).
void convert_to_bf16(const float* x, int64_t n, uint16_t* out);

namespace detail {
void layer_norm_row_scalar(float* x, const float* gamma, const float* beta, int64_t cols, float eps,
                           uint16_t* bf16_out);
void layer_norm_row_avx512(float* x, const float* gamma, const float* beta, int64_t cols, float eps,
                           uint16_t* bf16_out);
void convert_to_bf16_avx512(const float* x, int64_t n, uint16_t* out);
}  // namespace detail

}  // namespace kiln::backend::cpu
