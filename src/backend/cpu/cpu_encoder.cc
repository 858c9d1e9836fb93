#include "backend/cpu/cpu_encoder.h"

#include <omp.h>

#include <cmath>

#include "backend/cpu/attention.h"
#include "backend/cpu/embedding.h"
#include "backend/cpu/layer_norm.h"

namespace kiln::backend::cpu {

namespace {

// Packs `d`, or adopts `packed` (a plan's weights in this machine's layout) when it has data.
Result<std::unique_ptr<Linear>> pack(const model::DenseWeights& d, LinearSpec spec,
                                     const PackedWeight* packed = nullptr) {
  spec.out = d.out;
  spec.in = d.in;
  // Only INT8 layers divide their input by the SmoothQuant factors; other smoothed layers get
  // the factors divided back out of their weights, which packed weights no longer allow.
  const bool unfold = spec.precision != Precision::kInt8 && !spec.smooth.empty();
  if (packed != nullptr && packed->data != nullptr) {
    if (unfold) {
      return invalid_argument("packed " + std::string(precision_name(spec.precision)) +
                              " weights cannot carry SmoothQuant factors");
    }
    return Linear::from_packed(packed->data, packed->bytes, packed->layout, d.bias.data(), spec);
  }
  if (unfold) {
    const auto w = unsmooth(d.weight.data(), d.out, d.in, spec.smooth);
    spec.smooth.clear();
    return Linear::create(w.data(), d.bias.data(), spec);
  }
  return Linear::create(d.weight.data(), d.bias.data(), spec);
}

// "int8 (per-token, smooth, clip 10)": the precision and, for INT8, how the input is scaled.
std::string precision_detail(const LinearSpec& s) {
  std::string out(precision_name(s.precision));
  if (s.precision != Precision::kInt8) return out;
  out += s.scaling == quant::ActivationScaling::kDynamicPerToken
             ? " (per-token"
             : " (static " + std::to_string(s.input_scale);
  if (!s.smooth.empty()) out += ", smooth";
  if (s.input_clip > 0.0f) out += ", clip " + std::to_string(s.input_clip);
  return out + ")";
}

// y[r, col0 + o] += sum_k (x[r] . A[k]) B[o, k] for every row r: a LoRA update of a linear's
// output (y's rows are `ld` floats apart). The rank is small (4-64): plain loops.
void add_lora(const float* x, int64_t rows, const model::LoraPair& p, float* y, int64_t ld,
              int64_t col0) {
  if (p.rank == 0) return;
#pragma omp parallel
  {
    std::vector<float> t(static_cast<size_t>(p.rank));
#pragma omp for
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * p.in;
      for (int64_t k = 0; k < p.rank; ++k) {
        const float* a = p.a.data() + k * p.in;
        float d = 0;
        for (int64_t j = 0; j < p.in; ++j) d += xr[j] * a[j];
        t[static_cast<size_t>(k)] = d;
      }
      float* yr = y + r * ld + col0;
      for (int64_t o = 0; o < p.out; ++o) {
        const float* b = p.b.data() + o * p.rank;
        float d = 0;
        for (int64_t k = 0; k < p.rank; ++k) d += t[static_cast<size_t>(k)] * b[k];
        yr[o] += d;
      }
    }
  }
}

// The FFN activation, applied in place after a LoRA update of its pre-activation.
void activate(Epilogue act, float* v, int64_t n) {
  if (act == Epilogue::kNone) return;
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const float x = v[i];
    switch (act) {
      case Epilogue::kGeluErf:
        v[i] = 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
        break;
      case Epilogue::kGeluTanh:
        v[i] = 0.5f * x * (1.0f + std::tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
        break;
      case Epilogue::kRelu:
        v[i] = x > 0 ? x : 0.0f;
        break;
      case Epilogue::kTanh:
        v[i] = std::tanh(x);
        break;
      case Epilogue::kNone:
        break;
    }
  }
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
  const PrebuiltWeights* pre = options.prebuilt.get();
  const auto& e = enc->embeddings_;
  const bool views = pre != nullptr && pre->word_embeddings != nullptr;
  enc->tables_ = {views ? pre->word_embeddings : e.word_embeddings.data(),
                  views ? pre->position_embeddings : e.position_embeddings.data(),
                  views ? pre->type_embeddings
                        : (e.type_embeddings.empty() ? nullptr : e.type_embeddings.data()),
                  e.embedding_norm.gamma.data(),
                  e.embedding_norm.beta.data(),
                  config.hidden_size,
                  config.position_offset,
                  static_cast<float>(config.layer_norm_eps)};
  KILN_ASSIGN_OR_RETURN(auto specs, layer_specs(config, options));
  enc->lora_ = options.lora;
  if (enc->lora_ != nullptr) {
    if (enc->lora_->size() != specs.size()) {
      return invalid_argument("LoRA updates for " + std::to_string(enc->lora_->size()) +
                              " layers; the model has " + std::to_string(specs.size()));
    }
    for (auto& sp : specs) {
      for (const auto& ls : sp.linears) {
        if (ls.precision != Precision::kF32 || sp.formats.attention_bf16 || sp.formats.ctx_bf16 ||
            sp.formats.mid_bf16 || sp.formats.mid_int8) {
          return unimplemented(
              "cpu: an adapter kept apart from its base runs FP32 layers only (precision fp32); "
              "merge the adapter (or build a plan) for bf16 or int8");
        }
      }
    }
  }
  if (specs.size() != weights.layers.size()) {
    return invalid_argument("model config has " + std::to_string(specs.size()) +
                            " layers, the weights " + std::to_string(weights.layers.size()));
  }
  for (size_t i = 0; i < weights.layers.size(); ++i) {
    const auto& lw = weights.layers[i];
    // A plan's packed weights for this layer's sites, if any.
    const PackedWeight* pk =
        pre != nullptr && i < pre->linears.size() ? pre->linears[i].data() : nullptr;
    auto site = [pk](quant::LinearSite s) {
      return pk != nullptr ? &pk[static_cast<int>(s)] : nullptr;
    };
    Layer l;
    auto& ls = specs[i].linears;
    using quant::LinearSite;
    if (enc->lora_ != nullptr) {  // the activation waits for the update of its input
      auto& ffn_in = ls[static_cast<size_t>(LinearSite::kFfnIn)];
      l.ffn_activation = ffn_in.epilogue;
      ffn_in.epilogue = Epilogue::kNone;
    }
    auto at = [](LinearSite s) { return static_cast<size_t>(s); };
    KILN_ASSIGN_OR_RETURN(l.qkv, pack(lw.qkv, ls[at(LinearSite::kQkv)], site(LinearSite::kQkv)));
    KILN_ASSIGN_OR_RETURN(
        l.attn_out, pack(lw.attn_out, ls[at(LinearSite::kAttnOut)], site(LinearSite::kAttnOut)));
    KILN_ASSIGN_OR_RETURN(l.ffn_in,
                          pack(lw.ffn_in, ls[at(LinearSite::kFfnIn)], site(LinearSite::kFfnIn)));
    KILN_ASSIGN_OR_RETURN(l.ffn_out,
                          pack(lw.ffn_out, ls[at(LinearSite::kFfnOut)], site(LinearSite::kFfnOut)));
    l.formats = specs[i].formats;
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
  return forward(in, hidden, nullptr);
}

Status CpuEncoder::run_observed(const EncoderInputs& in, float* hidden,
                                const LinearObserver& observer) const {
  for (const Layer& l : layers_) {
    for (Precision p : l.formats.site) {
      if (p != Precision::kF32) {
        return unimplemented("cpu: run_observed needs every linear layer in fp32");
      }
    }
  }
  return forward(in, hidden, &observer);
}

Status CpuEncoder::forward(const EncoderInputs& in, float* hidden,
                           const LinearObserver* observer) const {
  const int threads = options_.num_threads > 0 ? options_.num_threads : omp_get_num_procs();
  omp_set_num_threads(threads);  // this thread's team size for our kernels and oneDNN's
  const int64_t t = in.num_tokens;
  const int64_t h = config_.hidden_size;
  const int64_t inter = config_.intermediate_size;
  const float eps = static_cast<float>(config_.layer_norm_eps);

  // Each layer picks float or bfloat16 buffers by its formats (layer_formats.h); allocate the
  // ones any layer uses.
  bool any_xb = false, any_qkv = false, any_qkvb = false, any_ctx = false, any_ctxb = false,
       any_mid = false, any_midb = false, any_midq = false;
  for (const Layer& l : layers_) {
    const LayerFormats& f = l.formats;
    any_xb |= f.qkv_reads_bf16 || f.ffn_in_reads_bf16;
    (f.attention_bf16 ? any_qkvb : any_qkv) = true;
    (f.ctx_bf16 ? any_ctxb : any_ctx) = true;
    (f.mid_int8 ? any_midq : f.mid_bf16 ? any_midb : any_mid) = true;
  }
  auto ws = acquire_workspace();
  float* x = hidden;  // the residual stream lives in the output buffer
  uint16_t* xb = any_xb ? grow(ws->x_bf16, t * h) : nullptr;
  float* qkv = any_qkv ? grow(ws->qkv, t * 3 * h) : nullptr;
  uint16_t* qkvb = any_qkvb ? grow(ws->qkv_bf16, t * 3 * h) : nullptr;
  float* ctx = any_ctx ? grow(ws->ctx, t * h) : nullptr;
  uint16_t* ctxb = any_ctxb ? grow(ws->ctx_bf16, t * h) : nullptr;
  float* mid = any_mid ? grow(ws->inter, t * inter) : nullptr;
  uint16_t* midb = any_midb ? grow(ws->inter_bf16, t * inter) : nullptr;
  const QuantizedRows midq{any_midq ? grow(ws->inter_int8, t * inter) : nullptr,
                           any_midq ? grow(ws->inter_scales, t) : nullptr};
  // The LayerNorm before a GEMM that reads bfloat16 also writes the bfloat16 copy.
  auto xb_for = [&](size_t layer, bool ffn_in) -> uint16_t* {
    if (layer >= layers_.size()) return nullptr;
    const LayerFormats& f = layers_[layer].formats;
    return (ffn_in ? f.ffn_in_reads_bf16 : f.qkv_reads_bf16) ? xb : nullptr;
  };
  auto observe = [&](size_t layer, quant::LinearSite site, const float* a, int64_t cols) {
    if (observer != nullptr) (*observer)(static_cast<int>(layer), site, a, t, cols);
  };

  const EmbeddingTables& tables = tables_;
  std::vector<int32_t> zero_types;
  const int32_t* type_ids = in.type_ids;
  if (type_ids == nullptr && tables.token_type != nullptr) {
    zero_types.assign(static_cast<size_t>(t), 0);
    type_ids = zero_types.data();
  }
  profile_.time("embed_layer_norm", [&] {
    embed_layer_norm(tables, in.ids, type_ids, in.cu_seqlens, in.num_sequences, x,
                     xb_for(0, false));
  });

  const AttentionShape shape{config_.num_heads, config_.head_dim(),
                             1.0f / std::sqrt(static_cast<float>(config_.head_dim()))};
  Status status;
  auto& p = profile_;
  using quant::LinearSite;
  for (size_t i = 0; i < layers_.size() && status.ok(); ++i) {
    const Layer& l = layers_[i];
    const LayerFormats& f = l.formats;
    const void* qkv_in = f.qkv_reads_bf16 ? static_cast<const void*>(xb) : x;
    void* qkv_out = f.attention_bf16 ? static_cast<void*>(qkvb) : qkv;
    const void* ctx_io = f.ctx_bf16 ? static_cast<const void*>(ctxb) : ctx;
    const void* ffn_in = f.ffn_in_reads_bf16 ? static_cast<const void*>(xb) : x;
    void* mid_io = f.mid_bf16 ? static_cast<void*>(midb) : mid;

    observe(i, LinearSite::kQkv, x, h);
    if (!(status = p.time("qkv", [&] { return l.qkv->run(qkv_in, t, qkv_out); })).ok()) break;
    const auto* lora = lora_ != nullptr ? &(*lora_)[i] : nullptr;
    if (lora != nullptr) {
      p.time("lora", [&] {
        for (int m = 0; m < 3; ++m)
          add_lora(x, t, (*lora)[static_cast<size_t>(m)], qkv, 3 * h, m * h);
      });
    }
    p.time("attention", [&] {
      if (f.attention_bf16) {
        attention_bf16(qkvb, in.cu_seqlens, in.num_sequences, shape, ctxb);
      } else {
        attention(qkv, in.cu_seqlens, in.num_sequences, shape, ctx, f.ctx_bf16 ? ctxb : nullptr);
      }
    });
    // x += ctx Wo + bo
    observe(i, LinearSite::kAttnOut, ctx, h);
    if (!(status = p.time("attn_out", [&] { return l.attn_out->run(ctx_io, t, x); })).ok()) break;
    if (lora != nullptr) p.time("lora", [&] { add_lora(ctx, t, (*lora)[3], x, h, 0); });
    p.time("layer_norm", [&] {
      layer_norm(x, l.attn_norm.gamma.data(), l.attn_norm.beta.data(), t, h, eps, xb_for(i, true));
    });
    // mid = act(x W1 + b1); x += mid W2 + b2
    observe(i, LinearSite::kFfnIn, x, h);
    if (f.mid_int8) {
      status = p.time("ffn_in",
                      [&] { return l.ffn_in->run_quantized_output(ffn_in, t, *l.ffn_out, midq); });
      if (!status.ok()) break;
      status = p.time("ffn_out", [&] { return l.ffn_out->run_quantized_input(midq, t, x); });
      if (!status.ok()) break;
    } else {
      if (!(status = p.time("ffn_in", [&] { return l.ffn_in->run(ffn_in, t, mid_io); })).ok()) {
        break;
      }
      if (lora != nullptr) {
        p.time("lora", [&] {
          add_lora(x, t, (*lora)[4], mid, inter, 0);
          activate(l.ffn_activation, mid, t * inter);
        });
      }
      observe(i, LinearSite::kFfnOut, mid, inter);
      if (!(status = p.time("ffn_out", [&] { return l.ffn_out->run(mid_io, t, x); })).ok()) break;
      if (lora != nullptr) p.time("lora", [&] { add_lora(mid, t, (*lora)[5], x, h, 0); });
    }
    p.time("layer_norm", [&] {
      layer_norm(x, l.ffn_norm.gamma.data(), l.ffn_norm.beta.data(), t, h, eps,
                 xb_for(i + 1, false));
    });
  }
  release_workspace(std::move(ws));
  return status;
}

std::shared_ptr<PrebuiltWeights> CpuEncoder::share() const {
  auto p = std::make_shared<PrebuiltWeights>();
  p->word_embeddings = tables_.word;
  p->position_embeddings = tables_.position;
  p->type_embeddings = tables_.token_type;
  p->linears = packed_linears();
  return p;
}

PackedLinears CpuEncoder::packed_linears() const {
  PackedLinears out;
  for (const Layer& l : layers_) {
    auto& sites = out.emplace_back();
    const Linear* linears[] = {l.qkv.get(), l.attn_out.get(), l.ffn_in.get(), l.ffn_out.get()};
    for (int s = 0; s < quant::kLinearSites; ++s) {
      sites[s] = {linears[s]->packed_weights(), linears[s]->weight_bytes(), linears[s]->layout()};
    }
  }
  return out;
}

std::vector<LayerReport> CpuEncoder::describe() const {
  std::vector<LayerReport> out;
  const int64_t table_rows = config_.vocab_size + config_.max_position_embeddings +
                             (tables_.token_type != nullptr ? config_.type_vocab_size : 0);
  out.push_back({"embeddings+layernorm", "cpu:embed_layer_norm", "fp32",
                 static_cast<size_t>(table_rows * config_.hidden_size) * sizeof(float)});
  for (size_t i = 0; i < layers_.size(); ++i) {
    const auto& l = layers_[i];
    const std::string p = "layer." + std::to_string(i) + ".";
    const std::pair<const char*, const Linear*> linears[] = {
        {"qkv", l.qkv.get()},
        {"attn_out+residual", l.attn_out.get()},
        {"ffn_in+bias+act", l.ffn_in.get()},
        {"ffn_out+residual", l.ffn_out.get()}};
    const bool bf16_attn = l.formats.attention_bf16;
    out.push_back({p + "attention", bf16_attn ? "cpu:fused_attention_bf16" : "cpu:fused_attention",
                   bf16_attn ? "bf16 (fp32 softmax)" : "fp32", 0});
    for (const auto& [name, lin] : linears) {
      out.push_back({p + name, "onednn:" + lin->kernel_name(), precision_detail(lin->spec()),
                     lin->weight_bytes()});
    }
    out.push_back({p + "layernorm x2", "cpu:layer_norm", "fp32",
                   static_cast<size_t>(4 * config_.hidden_size) * sizeof(float)});
  }
  return out;
}

}  // namespace kiln::backend::cpu
