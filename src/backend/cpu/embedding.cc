#include "backend/cpu/embedding.h"

#include "backend/cpu/layer_norm.h"

namespace kiln::backend::cpu {

void embed_layer_norm(const EmbeddingTables& e, const int32_t* ids, const int32_t* type_ids,
                      const int32_t* cu_seqlens, int64_t num_sequences, float* out,
                      uint16_t* out_bf16) {
  const int64_t h = e.hidden;
#pragma omp parallel for schedule(static)
  for (int64_t s = 0; s < num_sequences; ++s) {
    // RoBERTa numbers the non-padding tokens from padding_idx + 1 and gives padding tokens
    // padding_idx itself (create_position_ids_from_input_ids); BERT counts from 0.
    const int32_t pad = static_cast<int32_t>(e.position_offset) - 1;
    int64_t counted = 0;
    for (int64_t t = cu_seqlens[s]; t < cu_seqlens[s + 1]; ++t) {
      const float* w = e.word + static_cast<int64_t>(ids[t]) * h;
      int64_t position = t - cu_seqlens[s];
      if (e.position_offset > 0) {
        position = ids[t] == pad ? pad : pad + ++counted;
      }
      const float* p = e.position + position * h;
      const float* ty =
          e.token_type != nullptr ? e.token_type + static_cast<int64_t>(type_ids[t]) * h : nullptr;
      float* row = out + t * h;
      if (ty != nullptr) {
        for (int64_t c = 0; c < h; ++c) row[c] = (w[c] + ty[c]) + p[c];  // HF order
      } else {
        for (int64_t c = 0; c < h; ++c) row[c] = w[c] + p[c];
      }
      layer_norm_row(row, e.gamma, e.beta, h, e.eps,
                     out_bf16 != nullptr ? out_bf16 + t * h : nullptr);
    }
  }
}

}  // namespace kiln::backend::cpu
