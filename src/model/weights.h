// Encoder weights in float32, in kiln's own layout (Q, K and V fused), read from a checkpoint
// by architecture-specific tensor names. Backends pack these into their own formats.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/status.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace kiln::model {

/// A linear layer y = x W^T + b with W stored [out, in] row-major, as in PyTorch.
struct DenseWeights {
  std::vector<float> weight;
  std::vector<float> bias;
  int64_t out = 0;
  int64_t in = 0;
  bool empty() const { return weight.empty(); }
};

/// LayerNorm scale and shift.
struct NormWeights {
  std::vector<float> gamma;
  std::vector<float> beta;
};

/// One transformer block (post-LayerNorm, as in BERT).
struct LayerWeights {
  DenseWeights qkv;       ///< [3H, H]: rows 0..H-1 are Q, then K, then V
  DenseWeights attn_out;  ///< [H, H]
  NormWeights attn_norm;
  DenseWeights ffn_in;   ///< [I, H]
  DenseWeights ffn_out;  ///< [H, I]
  NormWeights ffn_norm;
};

/// Activation applied after a head's first dense layer.
enum class HeadActivation { kNone, kTanh, kRelu };

/// Task head: an optional dense+activation on the first token (BERT pooler, RoBERTa
/// classifier.dense, DistilBERT pre_classifier), then the output projection.
struct HeadWeights {
  DenseWeights pre;
  HeadActivation pre_activation = HeadActivation::kNone;
  DenseWeights out;  ///< [labels, H], or [2, H] for question answering
};

/// Everything the encoder needs, converted to float32.
struct EncoderWeights {
  std::vector<float> word_embeddings;      ///< [vocab, H]
  std::vector<float> position_embeddings;  ///< [max_positions, H]
  std::vector<float> type_embeddings;      ///< [type_vocab, H]; empty for DistilBERT
  NormWeights embedding_norm;
  std::vector<LayerWeights> layers;
  HeadWeights head;
  int64_t num_parameters = 0;
};

/// Where tensors are found in a safetensors file: head tensors under `outer` (empty in a
/// checkpoint, "base_model.model." in a PEFT adapter), encoder tensors under `encoder`
/// (`outer` + "bert.", "roberta.", "distilbert." or nothing for a bare encoder).
struct TensorSource {
  const SafeTensors* file = nullptr;
  std::string outer;
  std::string encoder;
};

/// Linear modules of a layer in checkpoint order: query, key, value, attention output, FFN in,
/// FFN out (the first three are rows of LayerWeights::qkv).
inline constexpr int kLayerLinears = 6;
/// The checkpoint name of layer `layer`'s linear module `site` (< kLayerLinears) without the
/// encoder prefix, e.g. "encoder.layer.3.attention.self.query".
std::string linear_module_name(const ModelConfig& c, int64_t layer, int site);

/// A checkpoint's source, its encoder prefix detected from the word embeddings' name.
TensorSource checkpoint_source(const SafeTensors& file);

/// Reads the task head of `c.task`, each tensor from the first source that has it;
/// `names_read` (optional) receives the full names of the tensors used.
Result<HeadWeights> load_head(std::vector<TensorSource> sources, const ModelConfig& c,
                              int64_t* num_parameters,
                              std::vector<std::string>* names_read = nullptr);

/// Reads and checks every tensor the architecture needs; a missing tensor or a shape that does
/// not match the config is an error naming the tensor.
Result<EncoderWeights> load_weights(const SafeTensors& file, const ModelConfig& config);

}  // namespace kiln::model
