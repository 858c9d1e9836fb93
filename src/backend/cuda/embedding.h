// Embeddings + LayerNorm on the GPU, fused: word + position (+ token type) rows gathered from
// float32 tables, summed and normalised per token of a packed ragged batch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kiln/dtype.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// Device pointers to the embedding block; tables are [rows, hidden] row-major float32.
struct EmbeddingTables {
  const float* word = nullptr;
  const float* position = nullptr;
  const float* token_type = nullptr;  ///< null when the model has none (DistilBERT)
  const float* gamma = nullptr;
  const float* beta = nullptr;
  int64_t hidden = 0;           ///< a multiple of 8, at most 2048
  int64_t position_offset = 0;  ///< RoBERTa: pad_token_id + 1 (positions skip pad tokens)
  float eps = 1e-12f;
};

/// For each token t of sequence s writes LayerNorm(word[ids[t]] + type[type_ids[t]] +
/// position[p]) to out[t, :] as `dtype` (F16 or BF16) and, when not null, to out_f32 as
/// float32, with p = t - cu_seqlens[s] (BERT) or, with a position offset, RoBERTa's count of
/// non-pad tokens. type_ids may be null (all 0). All pointers are device pointers; ids must be
/// validated. Enqueued on `stream`.
Status embed_layer_norm(DType dtype, const EmbeddingTables& tables, const int32_t* ids,
                        const int32_t* type_ids, const int32_t* cu_seqlens, int64_t num_sequences,
                        int64_t num_tokens, void* out, float* out_f32, cudaStream_t stream);

}  // namespace kiln::backend::cuda
