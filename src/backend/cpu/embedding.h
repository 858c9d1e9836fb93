// Embeddings + LayerNorm, fused: word + position (+ token type) rows summed and normalised in
// one pass per token of a packed ragged batch.
#pragma once

#include <cstdint>

namespace kiln::backend::cpu {

/// Tables and LayerNorm parameters of the embedding block; all [rows, hidden] row-major.
struct EmbeddingTables {
  const float* word = nullptr;
  const float* position = nullptr;
  const float* token_type = nullptr;  ///< null when the model has none (DistilBERT)
  const float* gamma = nullptr;
  const float* beta = nullptr;
  int64_t hidden = 0;
  int64_t position_offset = 0;  ///< RoBERTa: pad_token_id + 1 (positions skip pad tokens)
  float eps = 1e-12f;
};

/// For each token t of sequence s (tokens cu_seqlens[s] .. cu_seqlens[s+1]-1) writes
/// LayerNorm(word[ids[t]] + position[t - cu_seqlens[s] + offset] + type[type_ids[t]]) to
/// out[t, :] and, when not null, a bfloat16 copy to out_bf16. Ids must already be validated.
void embed_layer_norm(const EmbeddingTables& tables, const int32_t* ids, const int32_t* type_ids,
                      const int32_t* cu_seqlens, int64_t num_sequences, float* out,
                      uint16_t* out_bf16);

}  // namespace kiln::backend::cpu
