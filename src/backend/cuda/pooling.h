// Sentence pooling on the GPU: the last hidden states of a packed ragged batch reduced to one
// row per sequence (mean, CLS, max, mean / sqrt(len); optional L2 normalize), so that only
// [sequences, hidden] crosses to the host instead of [tokens, hidden].
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kiln/model_info.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// out[s] = pool(hidden[cu[s] .. cu[s + 1])) for s < sequences, float32, as runtime::pool does
/// on the host. hidden [tokens, hidden_size] float32; cu [sequences + 1] int32 device
/// cumulative lengths; out [sequences, hidden_size] float32. Enqueued on `stream`.
Status pool_sequences(const float* hidden, const int32_t* cu, int64_t sequences,
                      int64_t hidden_size, const PoolingConfig& pooling, float* out,
                      cudaStream_t stream);

}  // namespace kiln::backend::cuda
