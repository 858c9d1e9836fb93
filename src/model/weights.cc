#include "model/weights.h"

#include <array>
#include <string>
#include <utility>

namespace kiln::model {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Looks tensors up in one or more sources, first match wins (a PEFT adapter's head before the
// base checkpoint's), and checks their shapes against the config.
class TensorReader {
 public:
  TensorReader(std::vector<TensorSource> sources, int64_t* counter)
      : sources_(std::move(sources)), counter_(counter) {}

  std::vector<std::string> take_names_read() { return std::move(names_read_); }

  bool has(const std::string& name, bool prefixed = true) const {
    return find(name, prefixed).first != nullptr;
  }

  Result<std::vector<float>> read(const std::string& name, const std::vector<int64_t>& shape,
                                  bool prefixed = true) {
    const auto [t, full] = find(name, prefixed);
    if (t == nullptr) return not_found("checkpoint has no tensor \"" + full + "\"");
    if (t->shape != shape) {
      return invalid_argument("tensor \"" + full + "\" has shape " + shape_string(t->shape) +
                              " but the config needs " + shape_string(shape));
    }
    *counter_ += t->numel();
    names_read_.push_back(full);
    return to_float32(*t);
  }

  // LayerNorm parameters are "weight"/"bias" in current checkpoints, "gamma"/"beta" in old ones.
  Result<NormWeights> read_norm(const std::string& name, int64_t h, bool prefixed = true) {
    const bool old = !has(name + ".weight", prefixed) && has(name + ".gamma", prefixed);
    NormWeights n;
    KILN_ASSIGN_OR_RETURN(n.gamma, read(name + (old ? ".gamma" : ".weight"), {h}, prefixed));
    KILN_ASSIGN_OR_RETURN(n.beta, read(name + (old ? ".beta" : ".bias"), {h}, prefixed));
    return n;
  }

  Result<DenseWeights> read_dense(const std::string& name, int64_t out, int64_t in,
                                  bool prefixed = true) {
    DenseWeights d;
    d.out = out;
    d.in = in;
    KILN_ASSIGN_OR_RETURN(d.weight, read(name + ".weight", {out, in}, prefixed));
    KILN_ASSIGN_OR_RETURN(d.bias, read(name + ".bias", {out}, prefixed));
    return d;
  }

  // Head tensors sit outside the encoder prefix; their label count comes from the weight.
  Result<DenseWeights> read_head(const std::string& name, int64_t in) {
    const auto [t, full] = find(name + ".weight", /*prefixed=*/false);
    if (t == nullptr) return not_found("checkpoint has no tensor \"" + full + "\"");
    if (t->shape.size() != 2 || t->shape[1] != in || t->shape[0] < 1) {
      return invalid_argument("tensor \"" + full + "\" has shape " + shape_string(t->shape) +
                              " but the head needs [labels, " + std::to_string(in) + "]");
    }
    return read_dense(name, t->shape[0], in, /*prefixed=*/false);
  }

 private:
  // The tensor and its full name in the first source holding it; when none does, nullptr and
  // the name it would have in the first source.
  std::pair<const TensorView*, std::string> find(const std::string& name, bool prefixed) const {
    for (const auto& s : sources_) {
      std::string full = (prefixed ? s.encoder : s.outer) + name;
      if (const TensorView* t = s.file->find(full)) return {t, std::move(full)};
    }
    const auto& s = sources_.front();
    return {nullptr, (prefixed ? s.encoder : s.outer) + name};
  }

  std::vector<TensorSource> sources_;
  int64_t* counter_;
  std::vector<std::string> names_read_;  // full names, in the order read
};

struct LayerNames {
  const char* q;
  const char* k;
  const char* v;
  const char* attn_out;
  const char* attn_norm;
  const char* ffn_in;
  const char* ffn_out;
  const char* ffn_norm;
};

constexpr LayerNames kBertNames = {"attention.self.query",
                                   "attention.self.key",
                                   "attention.self.value",
                                   "attention.output.dense",
                                   "attention.output.LayerNorm",
                                   "intermediate.dense",
                                   "output.dense",
                                   "output.LayerNorm"};
constexpr LayerNames kDistilBertNames = {"attention.q_lin",   "attention.k_lin",  "attention.v_lin",
                                         "attention.out_lin", "sa_layer_norm",    "ffn.lin1",
                                         "ffn.lin2",          "output_layer_norm"};

Result<LayerWeights> read_layer(TensorReader& r, const std::string& base, const LayerNames& n,
                                const ModelConfig& c) {
  const int64_t h = c.hidden_size;
  LayerWeights l;
  std::array<DenseWeights, 3> qkv;
  const char* names[3] = {n.q, n.k, n.v};
  for (int i = 0; i < 3; ++i) {
    KILN_ASSIGN_OR_RETURN(qkv[i], r.read_dense(base + names[i], h, h));
  }
  l.qkv.out = 3 * h;
  l.qkv.in = h;
  for (auto& d : qkv) {  // fuse Q, K, V into one GEMM
    l.qkv.weight.insert(l.qkv.weight.end(), d.weight.begin(), d.weight.end());
    l.qkv.bias.insert(l.qkv.bias.end(), d.bias.begin(), d.bias.end());
  }
  KILN_ASSIGN_OR_RETURN(l.attn_out, r.read_dense(base + n.attn_out, h, h));
  KILN_ASSIGN_OR_RETURN(l.attn_norm, r.read_norm(base + n.attn_norm, h));
  KILN_ASSIGN_OR_RETURN(l.ffn_in, r.read_dense(base + n.ffn_in, c.intermediate_size, h));
  KILN_ASSIGN_OR_RETURN(l.ffn_out, r.read_dense(base + n.ffn_out, h, c.intermediate_size));
  KILN_ASSIGN_OR_RETURN(l.ffn_norm, r.read_norm(base + n.ffn_norm, h));
  return l;
}

Result<HeadWeights> read_head(TensorReader& r, const ModelConfig& c) {
  HeadWeights head;
  const int64_t h = c.hidden_size;
  switch (c.task) {
    case Task::kEmbed:
      return head;
    case Task::kTokenClassification: {
      KILN_ASSIGN_OR_RETURN(head.out, r.read_head("classifier", h));
      return head;
    }
    case Task::kQuestionAnswering: {
      KILN_ASSIGN_OR_RETURN(head.out, r.read_head("qa_outputs", h));
      if (head.out.out != 2) {
        return invalid_argument("tensor \"qa_outputs.weight\" must have 2 rows (start, end)");
      }
      return head;
    }
    case Task::kSequenceClassification:
      break;
  }
  if (c.architecture == Architecture::kDistilBert) {
    KILN_ASSIGN_OR_RETURN(head.pre, r.read_dense("pre_classifier", h, h, /*prefixed=*/false));
    head.pre_activation = HeadActivation::kRelu;
    KILN_ASSIGN_OR_RETURN(head.out, r.read_head("classifier", h));
  } else if (c.architecture == Architecture::kBert) {
    KILN_ASSIGN_OR_RETURN(head.pre, r.read_dense("pooler.dense", h, h));
    head.pre_activation = HeadActivation::kTanh;
    KILN_ASSIGN_OR_RETURN(head.out, r.read_head("classifier", h));
  } else {  // RoBERTa family: classifier.dense + tanh, classifier.out_proj
    KILN_ASSIGN_OR_RETURN(head.pre, r.read_dense("classifier.dense", h, h, /*prefixed=*/false));
    head.pre_activation = HeadActivation::kTanh;
    KILN_ASSIGN_OR_RETURN(head.out, r.read_head("classifier.out_proj", h));
  }
  return head;
}

}  // namespace

std::string linear_module_name(const ModelConfig& c, int64_t layer, int site) {
  const bool distil = c.architecture == Architecture::kDistilBert;
  const LayerNames& n = distil ? kDistilBertNames : kBertNames;
  const char* names[6] = {n.q, n.k, n.v, n.attn_out, n.ffn_in, n.ffn_out};
  return std::string(distil ? "transformer.layer." : "encoder.layer.") + std::to_string(layer) +
         "." + names[site];
}

TensorSource checkpoint_source(const SafeTensors& file) {
  for (const char* p : {"bert.", "roberta.", "distilbert."}) {
    if (file.find(std::string(p) + "embeddings.word_embeddings.weight") != nullptr) {
      return {&file, "", p};
    }
  }
  // A bare encoder (BertModel, ...), or the error will name the unprefixed tensor.
  return {&file, "", ""};
}

Result<HeadWeights> load_head(std::vector<TensorSource> sources, const ModelConfig& c,
                              int64_t* num_parameters, std::vector<std::string>* names_read) {
  TensorReader r(std::move(sources), num_parameters);
  auto head = read_head(r, c);
  if (names_read != nullptr) *names_read = r.take_names_read();
  return head;
}

Result<EncoderWeights> load_weights(const SafeTensors& file, const ModelConfig& c) {
  EncoderWeights w;
  TensorReader r({checkpoint_source(file)}, &w.num_parameters);
  const int64_t h = c.hidden_size;
  KILN_ASSIGN_OR_RETURN(w.word_embeddings,
                        r.read("embeddings.word_embeddings.weight", {c.vocab_size, h}));
  KILN_ASSIGN_OR_RETURN(w.position_embeddings, r.read("embeddings.position_embeddings.weight",
                                                      {c.max_position_embeddings, h}));
  if (c.type_vocab_size > 0) {
    KILN_ASSIGN_OR_RETURN(w.type_embeddings, r.read("embeddings.token_type_embeddings.weight",
                                                    {c.type_vocab_size, h}));
  }
  KILN_ASSIGN_OR_RETURN(w.embedding_norm, r.read_norm("embeddings.LayerNorm", h));
  const bool distil = c.architecture == Architecture::kDistilBert;
  const std::string stack = distil ? "transformer.layer." : "encoder.layer.";
  for (int64_t i = 0; i < c.num_layers; ++i) {
    KILN_ASSIGN_OR_RETURN(auto layer, read_layer(r, stack + std::to_string(i) + ".",
                                                 distil ? kDistilBertNames : kBertNames, c));
    w.layers.push_back(std::move(layer));
  }
  KILN_ASSIGN_OR_RETURN(w.head, read_head(r, c));
  return w;
}

}  // namespace kiln::model
