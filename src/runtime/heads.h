// Device-independent post-processing of the last hidden states: sentence pooling and the task
// heads (classification, token classification, question answering). These are small next to the
// encoder (a few rows x hidden x labels), so they run as plain loops on the host.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/model_info.h"
#include "model/weights.h"

namespace kiln::runtime {

/// Pools hidden [tokens, hidden] per sequence into out [sequences, hidden].
void pool(const float* hidden, const int32_t* cu_seqlens, int64_t num_sequences,
          int64_t hidden_size, const PoolingConfig& pooling, float* out);

/// Applies the head to the hidden states; returns logits (see RunOutputs::logits).
std::vector<float> apply_head(const model::HeadWeights& head, Task task, const float* hidden,
                              const int32_t* cu_seqlens, int64_t num_sequences, int64_t num_tokens,
                              int64_t hidden_size);

}  // namespace kiln::runtime
