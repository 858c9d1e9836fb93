#include "backend/cpu/cpu_encoder.h"

#include <omp.h>

#include <cmath>

#include "backend/cpu/attention.h"
#include "backend/cpu/embedding.h"
#include "backend/cpu/layer_norm.h"

namespace kiln::backend::cpu {

namespace {

Epilogue ffn_epilogue(Activation a) {
  switch (a) {
    case Activation::kGeluErf:
      return Epilogue::kGeluErf;
    case Activation::kGeluTanh:
      return Epilogue::kGeluTanh;
    case Activation::kRelu:
      return Epilogue::kRelu;
  }
  return Epilogue::kNone;
}

Result<std::unique_ptr<Linear>> pack(const model::DenseWeights& d, LinearSpec spec) {
  spec.out = d.out;
  spec.in = d.in;
  return Linear::create(d.weight.data(), d.bias.data(), spec);
}

template <typename T>
T* grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

Result<std::unique_ptr<CpuEncoder>> CpuEncoder::create(const model::ModelConfig& config,
                                                       model::EncoderWeights weights,
                                                       const ExecutorOptions& options) {
  std::unique_ptr<CpuEncoder> enc(new CpuEncoder(options.profile));
  enc->config_ = config;
  enc->options_ = options;
  enc->embeddings_.word_embeddings = std::move(weights.word_embeddings);
  enc->embeddings_.position_embeddings = std::move(weights.position_embeddings);
  enc->embeddings_.type_embeddings = std::move(weights.type_embeddings);
  enc->embeddings_.embedding_norm = std::move(weights.embedding_norm);
  const Precision p = options.precision;
  const bool bf16 = p == Precision::kBF16;
  for (const auto& lw : weights.layers) {
    Layer l;
    // Residual adds are fused into the output GEMMs (sum post-op into the residual stream);
    // in BF16 mode the GEMMs feeding another GEMM write bfloat16 directly.
    KILN_ASSIGN_OR_RETURN(l.qkv, pack(lw.qkv, {.precision = p, .bf16_output = bf16}));
    KILN_ASSIGN_OR_RETURN(l.attn_out, pack(lw.attn_out, {.precision = p, .accumulate = true}));
    KILN_ASSIGN_OR_RETURN(l.ffn_in, pack(lw.ffn_in, {.precision = p,
                                                     .epilogue = ffn_epilogue(config.activation),
                                                     .bf16_output = bf16}));
    KILN_ASSIGN_OR_RETURN(l.ffn_out, pack(lw.ffn_out, {.precision = p, .accumulate = true}));
    l.attn_norm = lw.attn_norm;
    l.ffn_norm = lw.ffn_norm;
    enc->layers_.push_back(std::move(l));
  }
  return enc;
}

std::unique_ptr<CpuEncoder::Workspace> CpuEncoder::acquire_workspace() const {
  std::lock_guard<std::mutex> lock(ws_mu_);
  if (free_workspaces_.empty()) return std::make_unique<Workspace>();
  auto ws = std::move(free_workspaces_.back());
  free_workspaces_.pop_back();
  return ws;
}

void CpuEncoder::release_workspace(std::unique_ptr<Workspace> ws) const {
  std::lock_guard<std::mutex> lock(ws_mu_);
  free_workspaces_.push_back(std::move(ws));
}

Status CpuEncoder::run(const EncoderInputs& in, float* hidden) const {
  const int threads = options_.num_threads > 0 ? options_.num_threads : omp_get_num_procs();
  omp_set_num_threads(threads);  // this thread's team size for our kernels and oneDNN's
  const int64_t t = in.num_tokens;
  const int64_t h = config_.hidden_size;
  const int64_t inter = config_.intermediate_size;
  const bool bf16 = options_.precision == Precision::kBF16;
  const float eps = static_cast<float>(config_.layer_norm_eps);

  auto ws = acquire_workspace();
  float* x = hidden;  // the residual stream lives in the output buffer
  uint16_t* xb = bf16 ? grow(ws->x_bf16, t * h) : nullptr;
  float* qkv = bf16 ? nullptr : grow(ws->qkv, t * 3 * h);
  uint16_t* qkvb = bf16 ? grow(ws->qkv_bf16, t * 3 * h) : nullptr;
  float* ctx = bf16 ? nullptr : grow(ws->ctx, t * h);
  uint16_t* ctxb = bf16 ? grow(ws->ctx_bf16, t * h) : nullptr;
  float* mid = bf16 ? nullptr : grow(ws->inter, t * inter);
  uint16_t* midb = bf16 ? grow(ws->inter_bf16, t * inter) : nullptr;
  // GEMM inputs: float in FP32 mode, the bfloat16 copies in BF16 mode.
  const void* x_in = bf16 ? static_cast<const void*>(xb) : x;
  const void* ctx_in = bf16 ? static_cast<const void*>(ctxb) : ctx;
  void* mid_io = bf16 ? static_cast<void*>(midb) : mid;
  void* qkv_io = bf16 ? static_cast<void*>(qkvb) : qkv;

  const auto& e = embeddings_;
  EmbeddingTables tables{e.word_embeddings.data(),
                         e.position_embeddings.data(),
                         e.type_embeddings.empty() ? nullptr : e.type_embeddings.data(),
                         e.embedding_norm.gamma.data(),
                         e.embedding_norm.beta.data(),
                         h,
                         config_.position_offset,
                         eps};
  std::vector<int32_t> zero_types;
  const int32_t* type_ids = in.type_ids;
  if (type_ids == nullptr && tables.token_type != nullptr) {
    zero_types.assign(static_cast<size_t>(t), 0);
    type_ids = zero_types.data();
  }
  profile_.time("embed_layer_norm", [&] {
    embed_layer_norm(tables, in.ids, type_ids, in.cu_seqlens, in.num_sequences, x, xb);
  });

  const AttentionShape shape{config_.num_heads, config_.head_dim(),
                             1.0f / std::sqrt(static_cast<float>(config_.head_dim()))};
  Status status;
  auto& p = profile_;
  for (const Layer& l : layers_) {
    if (!(status = p.time("qkv", [&] { return l.qkv->run(x_in, t, qkv_io); })).ok()) break;
    p.time("attention", [&] {
      if (bf16) {
        attention_bf16(qkvb, in.cu_seqlens, in.num_sequences, shape, ctxb);
      } else {
        attention(qkv, in.cu_seqlens, in.num_sequences, shape, ctx, nullptr);
      }
    });
    // x += ctx Wo + bo
    if (!(status = p.time("attn_out", [&] { return l.attn_out->run(ctx_in, t, x); })).ok()) break;
    p.time("layer_norm", [&] {
      layer_norm(x, l.attn_norm.gamma.data(), l.attn_norm.beta.data(), t, h, eps, xb);
    });
    // mid = act(x W1 + b1); x += mid W2 + b2
    if (!(status = p.time("ffn_in", [&] { return l.ffn_in->run(x_in, t, mid_io); })).ok()) break;
    if (!(status = p.time("ffn_out", [&] { return l.ffn_out->run(mid_io, t, x); })).ok()) break;
    p.time("layer_norm",
           [&] { layer_norm(x, l.ffn_norm.gamma.data(), l.ffn_norm.beta.data(), t, h, eps, xb); });
  }
  release_workspace(std::move(ws));
  return status;
}

std::vector<LayerReport> CpuEncoder::describe() const {
  std::vector<LayerReport> out;
  const std::string prec(precision_name(options_.precision));
  const bool bf16 = options_.precision == Precision::kBF16;
  const auto& e = embeddings_;
  out.push_back(
      {"embeddings+layernorm", "cpu:embed_layer_norm", "fp32",
       (e.word_embeddings.size() + e.position_embeddings.size() + e.type_embeddings.size()) *
           sizeof(float)});
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = layers_[i];
    const std::string p = "layer." + std::to_string(i) + ".";
    const std::pair<const char*, const Linear*> linears[] = {
        {"qkv", l.qkv.get()},
        {"attn_out+residual", l.attn_out.get()},
        {"ffn_in+bias+act", l.ffn_in.get()},
        {"ffn_out+residual", l.ffn_out.get()}};
    out.push_back({p + "attention", bf16 ? "cpu:fused_attention_bf16" : "cpu:fused_attention",
                   bf16 ? "bf16 (fp32 softmax)" : "fp32", 0});
    for (const auto& [name, lin] : linears) {
      out.push_back({p + name, "onednn:" + lin->kernel_name(), prec, lin->weight_bytes()});
    }
    out.push_back({p + "layernorm x2", "cpu:layer_norm", "fp32",
                   static_cast<size_t>(4 * config_.hidden_size) * sizeof(float)});
  }
  return out;
}

}  // namespace kiln::backend::cpu
