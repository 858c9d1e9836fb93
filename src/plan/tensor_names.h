// Names of the encoder's tensors inside a plan ("layers.3.qkv.weight", ...).
#pragma once

#include <string>
#include <string_view>

#include "plan/sections.h"

namespace kiln::plan {

/// "layers.3.qkv"; tensors are PREFIX.weight, PREFIX.bias (linears), PREFIX.gamma/.beta (norms).
inline std::string layer_prefix(int layer, std::string_view part) {
  return "layers." + std::to_string(layer) + "." + std::string(part);
}

inline constexpr const char* kWordEmbeddings = "embeddings.word";
inline constexpr const char* kPositionEmbeddings = "embeddings.position";
inline constexpr const char* kTypeEmbeddings = "embeddings.token_type";
inline constexpr const char* kEmbeddingNorm = "embeddings.norm";

}  // namespace kiln::plan
