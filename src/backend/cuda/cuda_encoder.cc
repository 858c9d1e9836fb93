#include "backend/cuda/cuda_encoder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "backend/cuda/activation.h"
#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_record.h"
#include "backend/cuda/embedding.h"
#include "backend/cuda/fp8.h"
#include "backend/cuda/layer_norm.h"
#include "backend/cuda/pooling.h"
#include "core/log.h"

namespace kiln::backend::cuda {

namespace {

size_t align256(size_t bytes) { return (bytes + 255) / 256 * 256; }

bool env_is(const char* name, std::string_view value) {
  const char* v = std::getenv(name);
  return v != nullptr && value == v;
}

// float32 host values -> a device buffer of `dtype`, converted on the GPU.
Result<DeviceBuffer> upload_converted(const std::vector<float>& host, DType dtype,
                                      cudaStream_t stream) {
  const auto n = static_cast<int64_t>(host.size());
  KILN_ASSIGN_OR_RETURN(DeviceBuffer tmp, DeviceBuffer::allocate(host.size() * sizeof(float)));
  KILN_ASSIGN_OR_RETURN(DeviceBuffer out, DeviceBuffer::allocate(host.size() * 2));
  KILN_CUDA_CHECK(
      cudaMemcpyAsync(tmp.get(), host.data(), tmp.bytes(), cudaMemcpyHostToDevice, stream));
  KILN_RETURN_IF_ERROR(convert_from_f32(dtype, tmp.as<float>(), out.get(), n, stream));
  KILN_CUDA_CHECK(cudaStreamSynchronize(stream));  // before tmp is freed
  return out;
}

// Frees nothing until the stream is idle: declared after an activation block, it runs first.
struct SyncOnExit {
  cudaStream_t stream;
  ~SyncOnExit() { cudaStreamSynchronize(stream); }
};

}  // namespace

Result<std::unique_ptr<CudaEncoder>> CudaEncoder::create(int device,
                                                         const model::ModelConfig& config,
                                                         model::EncoderWeights weights,
                                                         const ExecutorOptions& options) {
  if (config.num_layers < 1 || static_cast<int64_t>(weights.layers.size()) != config.num_layers) {
    return invalid_argument("cuda: model config and weights disagree on the number of layers");
  }
  if (config.hidden_size % 8 != 0 || config.hidden_size > 2048 ||
      config.intermediate_size % 8 != 0) {
    return unimplemented(
        "cuda: hidden and intermediate sizes must be multiples of 8 and the "
        "hidden size at most 2048");
  }
  const int64_t head_dim = config.head_dim();
  if (!attention_supports(head_dim) && !attention_simple_supports(head_dim)) {
    return unimplemented("cuda: head dimension " + std::to_string(head_dim));
  }
  std::unique_ptr<CudaEncoder> enc(new CudaEncoder());
  enc->device_ = device;
  enc->dtype_ = options.precision == Precision::kBF16 ? DType::kBF16 : DType::kF16;
  enc->config_ = config;
  enc->poison_ = env_is("KILN_CUDA_POISON", "1");
  enc->profile_ = options.profile;
  enc->residual_f32_ = enc->dtype_ == DType::kBF16;
  enc->graphs_ = !env_is("KILN_CUDA_GRAPHS", "0");
  enc->mma_attention_ = attention_supports(head_dim) && !env_is("KILN_CUDA_ATTENTION", "simple");
  enc->attention_tiling_ = env_is("KILN_CUDA_ATTENTION", "rows16")   ? AttentionTiling::kRows16
                           : env_is("KILN_CUDA_ATTENTION", "rows32") ? AttentionTiling::kRows32
                                                                     : AttentionTiling::kAuto;
  enc->small_gemm_ = env_is("KILN_CUDA_SMALL_GEMM", "1");
  // --precision fp8: per-row (per output channel, per token) E4M3 linears. KILN_CUDA_FP8=1 or
  // =rows turns them on for an fp16/bf16 engine too (experiments; =1 is per tensor).
  enc->fp8_rows_ = options.precision == Precision::kFp8 || env_is("KILN_CUDA_FP8", "rows");
  enc->fp8_ = enc->fp8_rows_ || env_is("KILN_CUDA_FP8", "1");
  enc->fp8_all_linears_ = !enc->fp8_rows_ || env_is("KILN_CUDA_FP8_LINEARS", "all");
  enc->fp8_min_tokens_ = fp8_min_tokens(config.hidden_size);
  if (options.fp8_min_tokens >= 0) {
    enc->fp8_min_tokens_ = options.fp8_min_tokens;
  } else if (const char* v = std::getenv("KILN_CUDA_FP8_MIN_TOKENS"); v != nullptr && *v) {
    char* end = nullptr;
    const long long n = std::strtoll(v, &end, 10);
    if (*end != '\0' || n < 0) {
      return invalid_argument(std::string("KILN_CUDA_FP8_MIN_TOKENS=") + v +
                              ": expected a token count >= 0");
    }
    enc->fp8_min_tokens_ = n;
  }
  // --fast-gelu changes only erf-GELU models (tanh-GELU and ReLU ones are fused anyway).
  enc->fast_gelu_ = options.fast_gelu && config.activation == Activation::kGeluErf;
  KILN_CUDA_CHECK(cudaSetDevice(device));
  if (!options.device_record.empty())
    KILN_RETURN_IF_ERROR(enc->apply_record(options.device_record));
  KILN_RETURN_IF_ERROR(enc->upload(weights, options.prebuilt.get()));
  if (options.autotune) KILN_RETURN_IF_ERROR(enc->autotune(options.autotune_max_tokens));
  return enc;
}

Status CudaEncoder::apply_record(const std::string& bytes) {
  KILN_ASSIGN_OR_RETURN(DeviceRecord r, decode_device_record(bytes));
  fast_gelu_ = fast_gelu_ || (r.fast_gelu && config_.activation == Activation::kGeluErf);
  if (r.gemms == nullptr) return ok_status();
  const TuningTarget here = TuningTarget::current(device_);
  if (r.target == here) {
    tuning_ = std::move(r.gemms);
    tuned_on_ = here;
    return ok_status();
  }
  core::log(core::LogLevel::kWarning,
            "cuda: the plan's GEMM algorithms were timed on another GPU or cuBLASLt version; "
            "using cuBLASLt's heuristic (rebuild the plan here to tune it)",
            {{"plan_gpu", r.target.gpu},
             {"plan_cublaslt", std::to_string(r.target.cublaslt_version)},
             {"gpu", here.gpu},
             {"cublaslt", std::to_string(here.cublaslt_version)}});
  return ok_status();
}

Epilogue CudaEncoder::ffn_epilogue() const {
  switch (config_.activation) {
    case Activation::kGeluTanh:
      return Epilogue::kGeluTanhBias;
    case Activation::kRelu:
      return Epilogue::kReluBias;
    case Activation::kGeluErf:
      break;
  }
  return fast_gelu_ ? Epilogue::kGeluTanhBias : Epilogue::kNone;
}

Status CudaEncoder::autotune(int64_t max_tokens) {
  if (max_tokens < 1) return invalid_argument("cuda: autotune needs a token bound >= 1");
  const int64_t h = config_.hidden_size, inter = config_.intermediate_size;
  const Layer& l = layers_.front();  // every layer has the same shapes
  struct Site {
    const Linear* linear;
    int64_t out, in;
    Epilogue epilogue;
  };
  const Site sites[] = {{&l.qkv, 3 * h, h, Epilogue::kBias},
                        {&l.attn_out, h, h, Epilogue::kNone},
                        {&l.ffn_in, inter, h, ffn_epilogue()},
                        {&l.ffn_out, h, inter, Epilogue::kNone}};
  std::vector<GemmShape> shapes;
  std::vector<const void*> weights, biases;
  for (int64_t rows = GemmTuning::kMinBucket; rows <= GemmTuning::bucket(max_tokens); rows *= 2) {
    for (const Site& s : sites) {
      shapes.push_back({rows, s.out, s.in, s.epilogue, dtype_});
      weights.push_back(s.linear->weight.get());
      biases.push_back(s.linear->bias.get());
    }
  }
  KILN_ASSIGN_OR_RETURN(GemmTuning t, tune_gemms(shapes, weights, biases));
  tuning_ = std::make_shared<const GemmTuning>(std::move(t));
  tuned_on_ = TuningTarget::current(device_);
  return ok_status();
}

std::string CudaEncoder::device_record() const {
  if (tuning_ == nullptr && !fast_gelu_) return {};
  return encode_device_record({tuned_on_, fast_gelu_, tuning_});
}

CudaEncoder::~CudaEncoder() {
  cudaSetDevice(device_);
  // How the small batches ran, for whoever tunes the shape buckets: a server log line per model.
  const StreamContext::GraphCounts n = contexts_.graph_counts();
  if (n.replays + n.captures + n.eager > 0) {
    core::log(core::LogLevel::kInfo, "cuda graphs",
              {{"replays", std::to_string(n.replays)},
               {"captures", std::to_string(n.captures)},
               {"eager", std::to_string(n.eager)},
               {"evictions", std::to_string(n.evictions)}});
  }
}

Status CudaEncoder::upload(const model::EncoderWeights& w, const PrebuiltWeights* pre) {
  cudaStream_t stream = nullptr;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  Status status = [&]() -> Status {
    const int64_t h = config_.hidden_size;
    const bool views = pre != nullptr && pre->word_embeddings != nullptr;
    const float* word = views ? pre->word_embeddings : w.word_embeddings.data();
    const float* pos = views ? pre->position_embeddings : w.position_embeddings.data();
    const float* type = views ? pre->type_embeddings
                              : (w.type_embeddings.empty() ? nullptr : w.type_embeddings.data());
    auto table = [&](const float* src, int64_t rows, DeviceBuffer* dst) -> Status {
      KILN_ASSIGN_OR_RETURN(*dst, DeviceBuffer::upload(src, rows * h * sizeof(float)));
      return ok_status();
    };
    KILN_RETURN_IF_ERROR(table(word, config_.vocab_size, &word_));
    KILN_RETURN_IF_ERROR(table(pos, config_.max_position_embeddings, &position_));
    if (type != nullptr) KILN_RETURN_IF_ERROR(table(type, config_.type_vocab_size, &type_));
    auto norm = [&](const model::NormWeights& n, Norm* dst) -> Status {
      const size_t bytes = n.gamma.size() * sizeof(float);
      KILN_ASSIGN_OR_RETURN(dst->gamma, DeviceBuffer::upload(n.gamma.data(), bytes));
      KILN_ASSIGN_OR_RETURN(dst->beta, DeviceBuffer::upload(n.beta.data(), bytes));
      return ok_status();
    };
    KILN_RETURN_IF_ERROR(norm(w.embedding_norm, &embedding_norm_));
    auto linear = [&](const model::DenseWeights& d, const char* name, Linear* dst,
                      bool fp8_site) -> Status {
      if (d.bias.size() != static_cast<size_t>(d.out)) {
        return unimplemented(std::string("cuda: linear layer ") + name + " without a bias");
      }
      dst->out = d.out;
      dst->in = d.in;
      KILN_ASSIGN_OR_RETURN(dst->weight, upload_converted(d.weight, dtype_, stream));
      KILN_ASSIGN_OR_RETURN(dst->bias, upload_converted(d.bias, dtype_, stream));
      // cuBLASLt's FP8 sizes; else 16-bit.
      if (fp8_ && fp8_site && d.out % 16 == 0 && d.in % 16 == 0) {
        KILN_ASSIGN_OR_RETURN(dst->weight8,
                              DeviceBuffer::allocate(static_cast<size_t>(d.out * d.in)));
        KILN_ASSIGN_OR_RETURN(
            dst->weight_scale,
            DeviceBuffer::allocate((fp8_rows_ ? d.out : 2 * kFp8ScaleStride) * sizeof(float)));
        auto* scale = static_cast<float*>(dst->weight_scale.get());
        KILN_RETURN_IF_ERROR(
            fp8_rows_ ? quantize_fp8_rows(dtype_, dst->weight.get(), d.out, d.in, scale,
                                          dst->weight8.get(), stream)
                      : quantize_fp8_dynamic(dtype_, dst->weight.get(), d.out * d.in, scale,
                                             scale + kFp8ScaleStride, dst->weight8.get(), stream));
      }
      return ok_status();
    };
    for (const auto& lw : w.layers) {
      Layer l;
      // The output GEMMs' inputs (attention output, GELU output) need a quantization pass of
      // their own; see fp8_all_linears_.
      KILN_RETURN_IF_ERROR(linear(lw.qkv, "qkv", &l.qkv, true));
      KILN_RETURN_IF_ERROR(linear(lw.attn_out, "attn_out", &l.attn_out, fp8_all_linears_));
      KILN_RETURN_IF_ERROR(linear(lw.ffn_in, "ffn_in", &l.ffn_in, true));
      KILN_RETURN_IF_ERROR(linear(lw.ffn_out, "ffn_out", &l.ffn_out, fp8_all_linears_));
      KILN_RETURN_IF_ERROR(norm(lw.attn_norm, &l.attn_norm));
      KILN_RETURN_IF_ERROR(norm(lw.ffn_norm, &l.ffn_norm));
      layers_.push_back(std::move(l));
    }
    // Synchronous pageable copies may still be in flight when cudaMemcpy returns; the run
    // streams do not synchronize with the legacy stream, so wait here.
    KILN_CUDA_CHECK(cudaDeviceSynchronize());
    return ok_status();
  }();
  cudaStreamSynchronize(stream);
  cudaStreamDestroy(stream);
  return status;
}

Status CudaEncoder::run(const EncoderInputs& in, float* hidden) const {
  if (in.num_tokens == 0) return ok_status();
  KILN_CUDA_CHECK(cudaSetDevice(device_));
  KILN_ASSIGN_OR_RETURN(auto lease, contexts_.acquire());
  return forward(*lease, in, hidden, nullptr, nullptr);
}

Status CudaEncoder::run_pooled(const EncoderInputs& in, const PoolingConfig& pooling,
                               float* embeddings) const {
  if (in.num_tokens == 0) return ok_status();
  KILN_CUDA_CHECK(cudaSetDevice(device_));
  KILN_ASSIGN_OR_RETURN(auto lease, contexts_.acquire());
  return forward(*lease, in, nullptr, &pooling, embeddings);
}

CudaEncoder::Buffers CudaEncoder::layout(int64_t t, int64_t n, bool types, char* base) const {
  const int64_t h = config_.hidden_size, inter = config_.intermediate_size;
  // Inputs first (one copy), then x, x32, big (QKV, then the FFN middle; the float32 output
  // too when the residual stream is 16-bit), ctx, y and the pooled rows (run_pooled).
  const size_t ids = align256(t * sizeof(int32_t));
  const size_t cu = align256((n + 1) * sizeof(int32_t));
  const size_t row16 = align256(t * h * 2);
  const size_t row32 = residual_f32_ ? align256(t * h * 4) : 0;
  const size_t big = align256(t * std::max({3 * h, inter, 2 * h}) * 2);
  const size_t pooled = align256(n * h * sizeof(float));
  const bool fp8_now = fp8_ && t >= fp8_min_tokens_;  // as forward() decides
  const size_t q = fp8_now ? align256(t * std::max(h, inter)) : 0;
  const size_t scales = !fp8_now    ? 0
                        : fp8_rows_ ? align256(t * sizeof(float))
                                    : 2 * kFp8ScaleStride * sizeof(float);
  Buffers b;
  b.input_bytes = ids + (types ? ids : 0) + cu;
  b.total_bytes = b.input_bytes + row16 + row32 + big + 2 * row16 + pooled + q + scales;
  if (base == nullptr) return b;
  b.ids = reinterpret_cast<const int32_t*>(base);
  b.types = types ? reinterpret_cast<const int32_t*>(base + ids) : nullptr;
  b.cu = reinterpret_cast<const int32_t*>(base + ids + (types ? ids : 0));
  char* p = base + b.input_bytes;
  b.x = p;
  b.x32 = residual_f32_ ? reinterpret_cast<float*>(p + row16) : nullptr;
  b.big = p + row16 + row32;
  b.ctx = static_cast<char*>(b.big) + big;
  b.y = static_cast<char*>(b.ctx) + row16;
  b.out = residual_f32_ ? b.x32 : static_cast<float*>(b.big);
  b.pooled = reinterpret_cast<float*>(static_cast<char*>(b.y) + row16);
  if (fp8_now) {
    b.q = reinterpret_cast<char*>(b.pooled) + pooled;
    b.scales = reinterpret_cast<float*>(static_cast<char*>(b.q) + q);
  }
  return b;
}

Status CudaEncoder::forward(StreamContext& c, const EncoderInputs& in, float* hidden,
                            const PoolingConfig* pooling, float* pooled) const {
  const int64_t t = in.num_tokens, n = in.num_sequences, h = config_.hidden_size;
  const cudaStream_t st = c.stream();
  int64_t max_len = 0;
  for (int64_t s = 0; s < n; ++s) {
    max_len = std::max<int64_t>(max_len, in.cu_seqlens[s + 1] - in.cu_seqlens[s]);
  }
  const bool types = in.type_ids != nullptr && type_.get() != nullptr;
  // Small batches run as CUDA graphs captured per shape bucket: the tokens are padded to a
  // multiple of 16 (up to 128) or 64 by one extra sequence of pad ids at the end, and the
  // sequence count to a power of two by empty sequences, so that the batches a server forms
  // (every one a different size) replay a few graphs instead of paying an eager pass's host
  // time (a cuBLASLt call and a launch per op). The real sequences stay ragged and are computed
  // exactly as without padding; the extra tokens (at most 63) are computed and dropped.
  const bool graphable = graphs_ && !profile_ && t <= kGraphMaxTokens;
  int64_t tp = t, np = n;
  if (graphable && config_.max_sequence_length() >= kAttentionQueryBlock) {
    const int64_t step = t <= 128 ? 16 : 64;
    tp = (t + step - 1) / step * step;
    np = n + (tp > t ? 1 : 0);
    int64_t pow2 = 1;
    while (pow2 < np) pow2 *= 2;
    np = pow2;
  }
  const int64_t attention_len = std::max(max_len, tp - t);
  const size_t bytes = layout(tp, np, types, nullptr).total_bytes;

  // Shapes seen often enough replay a graph captured on a block the context keeps; others take
  // a block from the cache for this run. The tensor-core attention grid depends on the longest
  // sequence only through its number of query blocks.
  StreamContext::Graph* graph = nullptr;
  CachingAllocator::Block local;
  if (graphable) {
    const int64_t attention_blocks =
        mma_attention_ ? (attention_len + kAttentionQueryBlock - 1) / kAttentionQueryBlock
                       : attention_len;
    KILN_ASSIGN_OR_RETURN(
        graph, c.graph_for({tp, np, attention_blocks, types ? 1 : 0}, bytes, activations_));
  }
  if (graph == nullptr) {
    KILN_ASSIGN_OR_RETURN(local, activations_.allocate(bytes));
  }
  SyncOnExit sync{st};  // blocks go back to the cache only once the stream is idle
  c.gemm().set_tuning(tuning_.get());
  c.gemm().set_small_gemm(small_gemm_);
  const Buffers b =
      layout(tp, np, types, static_cast<char*>(graph ? graph->block.get() : local.get()));

  KILN_ASSIGN_OR_RETURN(void* staging, c.input_staging(b.input_bytes));
  auto* stage = static_cast<char*>(staging);
  const auto* d_base = reinterpret_cast<const char*>(b.ids);
  auto* ids = reinterpret_cast<int32_t*>(stage);
  std::memcpy(ids, in.ids, t * sizeof(int32_t));
  std::fill(ids + t, ids + tp, static_cast<int32_t>(config_.pad_token_id));
  if (types) {
    auto* type_ids =
        reinterpret_cast<int32_t*>(stage + (reinterpret_cast<const char*>(b.types) - d_base));
    std::memcpy(type_ids, in.type_ids, t * sizeof(int32_t));
    std::fill(type_ids + t, type_ids + tp, 0);
  }
  auto* cu = reinterpret_cast<int32_t*>(stage + (reinterpret_cast<const char*>(b.cu) - d_base));
  std::memcpy(cu, in.cu_seqlens, (n + 1) * sizeof(int32_t));
  std::fill(cu + n + 1, cu + np + 1, static_cast<int32_t>(tp));  // the pad sequence, then empty
  KILN_CUDA_CHECK(cudaMemcpyAsync(const_cast<char*>(d_base), staging, b.input_bytes,
                                  cudaMemcpyHostToDevice, st));
  EncoderInputs padded = in;
  padded.num_tokens = tp;
  padded.num_sequences = np;

  Marks marks;
  if (graph != nullptr && graph->exec != nullptr) {
    KILN_CUDA_CHECK(cudaGraphLaunch(graph->exec, st));
  } else if (graph != nullptr) {
    // Run eagerly before, so every kernel is loaded and every GEMM planned: capture the pass.
    KILN_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    const Status enqueued = enqueue(c, b, padded, attention_len, nullptr);
    cudaGraph_t g = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(st, &g);
    cudaError_t made = cudaErrorStreamCaptureInvalidated;
    if (enqueued.ok() && ended == cudaSuccess) made = cudaGraphInstantiate(&graph->exec, g, 0);
    if (g != nullptr) cudaGraphDestroy(g);
    if (!enqueued.ok() || ended != cudaSuccess || made != cudaSuccess) {
      // Forget the entry, so that later batches of the bucket run eagerly (and may retry the
      // capture later) instead of failing here each time.
      graph->exec = nullptr;
      cudaStreamSynchronize(st);
      c.drop_graph(graph);
      KILN_RETURN_IF_ERROR(enqueued);
      KILN_CUDA_CHECK(ended);
      KILN_CUDA_CHECK(made);
    }
    KILN_CUDA_CHECK(cudaGraphLaunch(graph->exec, st));
  } else {
    KILN_RETURN_IF_ERROR(enqueue(c, b, padded, attention_len, profile_ ? &marks : nullptr));
  }

  StreamContext::CopyTimes copy;
  if (pooling != nullptr) {
    KILN_RETURN_IF_ERROR(pool_sequences(b.out, b.cu, n, h, *pooling, b.pooled, st));
    KILN_RETURN_IF_ERROR(c.copy_to_host(b.pooled, pooled, n * h * sizeof(float), &copy));
  } else {
    KILN_RETURN_IF_ERROR(c.copy_to_host(b.out, hidden, t * h * sizeof(float), &copy));
  }
  if (profile_) {
    std::vector<float> ms(marks.size());
    for (size_t i = 0; i < marks.size(); ++i) {
      KILN_ASSIGN_OR_RETURN(auto ev, c.timing_events(i));
      KILN_CUDA_CHECK(cudaEventElapsedTime(&ms[i], ev[0], ev[1]));
    }
    std::lock_guard<std::mutex> lock(profile_mu_);
    // The first runs load kernels and plan GEMMs: leave them out.
    if (++profiled_runs_ > kProfileWarmupRuns) {
      for (size_t i = 0; i < marks.size(); ++i) {
        auto& [total, calls] = profile_ms_[marks[i]];
        total += ms[i];
        ++calls;
      }
      for (const auto& [name, value] : {std::pair{"output: wait for GPU (host)", copy.wait_ms},
                                        std::pair{"output: copy to caller (host)", copy.copy_ms}}) {
        auto& [total, calls] = profile_ms_[name];
        total += value;
        ++calls;
      }
    }
  }
  return ok_status();
}

Status CudaEncoder::enqueue(StreamContext& c, const Buffers& b, const EncoderInputs& in,
                            int64_t max_len, Marks* marks) const {
  const int64_t t = in.num_tokens, n = in.num_sequences;
  const int64_t h = config_.hidden_size, inter = config_.intermediate_size;
  const float eps = static_cast<float>(config_.layer_norm_eps);
  const cudaStream_t st = c.stream();
  if (poison_) {
    char* first = static_cast<char*>(b.x);
    KILN_CUDA_CHECK(cudaMemsetAsync(first, 0xff, static_cast<char*>(b.y) - first + t * h * 2, st));
  }
  // With profiling, each op is bracketed by a pair of events on the stream.
  auto timed = [&](const char* name, auto&& fn) -> Status {
    if (marks == nullptr) return fn();
    KILN_ASSIGN_OR_RETURN(auto ev, c.timing_events(marks->size()));
    KILN_CUDA_CHECK(cudaEventRecord(ev[0], st));
    KILN_RETURN_IF_ERROR(fn());
    KILN_CUDA_CHECK(cudaEventRecord(ev[1], st));
    marks->push_back(name);
    return ok_status();
  };
  const EmbeddingTables tables{word_.as<float>(),
                               position_.as<float>(),
                               type_.as<float>(),
                               embedding_norm_.gamma.as<float>(),
                               embedding_norm_.beta.as<float>(),
                               h,
                               config_.position_offset,
                               eps};
  KILN_RETURN_IF_ERROR(timed("embed_layer_norm", [&] {
    return embed_layer_norm(dtype_, tables, b.ids, b.types, b.cu, n, t, b.x, b.x32, st);
  }));

  const AttentionShape shape{config_.num_heads, config_.head_dim(),
                             1.0f / std::sqrt(static_cast<float>(config_.head_dim()))};
  const Epilogue ffn_epi = ffn_epilogue();
  // The residual stream: float32 x32 (BF16) or x itself (FP16).
  const void* residual = residual_f32_ ? static_cast<const void*>(b.x32) : b.x;
  GemmRunner& gemm = c.gemm();
  // Y = X W^T (+ bias)(activation) for one linear layer, in FP8 when it has FP8 weights.
  // With per-row FP8, each LayerNorm also writes its output as E4M3 rows into b.q (fp8_x):
  // the QKV and FFN-in GEMMs that read it then skip their own quantization pass.
  // Small batches run the 16-bit GEMMs (fp8_min_tokens_).
  const bool fp8_now = fp8_ && t >= fp8_min_tokens_;
  if (fp8_now && b.q == nullptr) return internal_error("cuda: FP8 buffers missing for this batch");
  const Fp8RowsOut fp8_x = fp8_rows_ && fp8_now ? Fp8RowsOut{b.q, b.scales} : Fp8RowsOut{};
  auto linear = [&](const char* name, const Linear& w, Epilogue epi, const void* x,
                    const void* bias, void* y, bool x_in_q = false) -> Status {
    GemmShape shape{t, w.out, w.in, epi, dtype_};
    if (!w.fp8() || !fp8_now)
      return timed(name, [&] { return gemm.run(shape, x, w.weight.get(), bias, y, st); });
    if (!(x_in_q && fp8_rows_)) {
      KILN_RETURN_IF_ERROR(timed("quantize_fp8", [&] {
        return fp8_rows_ ? quantize_fp8_rows(dtype_, x, t, w.in, b.scales, b.q, st)
                         : quantize_fp8_dynamic(dtype_, x, t * w.in, b.scales,
                                                b.scales + kFp8ScaleStride, b.q, st);
      }));
    }
    shape.fp8 = true;
    shape.fp8_rowwise = fp8_rows_;
    const int64_t slot = fp8_rows_ ? 0 : kFp8ScaleStride;  // past the amax scratch
    const float* x_scale = b.scales + slot;
    const auto* w_scale = static_cast<const float*>(w.weight_scale.get()) + slot;
    return timed(name, [&] {
      return gemm.run_fp8(shape, b.q, w.weight8.get(), bias, y, x_scale, w_scale, st);
    });
  };
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    const bool last = i + 1 == layers_.size();
    // Layer 0's input comes from the embeddings, which write no FP8 copy.
    KILN_RETURN_IF_ERROR(
        linear("qkv", l.qkv, Epilogue::kBias, b.x, l.qkv.bias.get(), b.big, /*x_in_q=*/i > 0));
    KILN_RETURN_IF_ERROR(timed("attention", [&] {
      return mma_attention_
                 ? attention(dtype_, b.big, b.cu, n, max_len, shape, b.ctx, st, attention_tiling_)
                 : attention_simple(dtype_, b.big, b.cu, n, max_len, shape, b.ctx, st);
    }));
    // x = LN(ctx Wo^T + bo + x)
    KILN_RETURN_IF_ERROR(linear("attn_out", l.attn_out, Epilogue::kNone, b.ctx, nullptr, b.y));
    KILN_RETURN_IF_ERROR(timed("bias_residual_layer_norm", [&] {
      return bias_residual_layer_norm(dtype_, b.y, l.attn_out.bias.get(), residual, residual_f32_,
                                      l.attn_norm.gamma.as<float>(), l.attn_norm.beta.as<float>(),
                                      t, h, eps, b.x, b.x32, st, fp8_x);
    }));
    // mid = act(x W1^T + b1); x = LN(mid W2^T + b2 + x), float32 after the last layer
    KILN_RETURN_IF_ERROR(linear("ffn_in", l.ffn_in, ffn_epi, b.x,
                                ffn_epi == Epilogue::kNone ? nullptr : l.ffn_in.bias.get(), b.big,
                                /*x_in_q=*/true));
    if (ffn_epi == Epilogue::kNone) {
      KILN_RETURN_IF_ERROR(timed("bias_gelu_erf", [&] {
        return bias_gelu_erf(dtype_, b.big, l.ffn_in.bias.get(), t, inter, st);
      }));
    }
    KILN_RETURN_IF_ERROR(linear("ffn_out", l.ffn_out, Epilogue::kNone, b.big, nullptr, b.y));
    KILN_RETURN_IF_ERROR(timed("bias_residual_layer_norm", [&] {
      // After the last layer only the float32 output is written (in place over x32 in BF16).
      return bias_residual_layer_norm(dtype_, b.y, l.ffn_out.bias.get(), residual, residual_f32_,
                                      l.ffn_norm.gamma.as<float>(), l.ffn_norm.beta.as<float>(), t,
                                      h, eps, last ? nullptr : b.x, last ? b.out : b.x32, st,
                                      last ? Fp8RowsOut{} : fp8_x);
    }));
  }
  return ok_status();
}

std::vector<LayerReport> CudaEncoder::describe() const {
  const std::string p(dtype_ == DType::kBF16 ? "bf16" : "fp16");
  const std::string ln_p = residual_f32_ ? p + " (fp32 residual)" : p;
  const int64_t h = config_.hidden_size;
  std::vector<LayerReport> out;
  out.push_back({"embeddings+layernorm", "cuda:embed_layer_norm", "fp32 tables, " + p + " out",
                 word_.bytes() + position_.bytes() + type_.bytes()});
  const Epilogue ffn = ffn_epilogue();
  const char* ffn_kernel = ffn == Epilogue::kGeluTanhBias
                               ? (config_.activation == Activation::kGeluErf
                                      ? "cublasLt:gelu_bias (tanh form of erf GELU)"
                                      : "cublasLt:gelu_bias")
                           : ffn == Epilogue::kReluBias ? "cublasLt:relu_bias"
                                                        : "cublasLt+cuda:bias_gelu_erf";
  // GEMMs say whether their 16-bit algorithms were timed here (autotuned) or left to the
  // heuristic (as FP8 GEMMs always are).
  const auto tuned_for = [&](const Linear& w) {
    if (tuning_ == nullptr) return std::string();
    return w.fp8() ? " [tuned below " + std::to_string(fp8_min_tokens_) + " tokens]"
                   : std::string(" [tuned]");
  };
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    const std::string n = "layer." + std::to_string(i) + ".";
    // FP8 linears (--precision fp8, KILN_CUDA_FP8): E4M3 weights, inputs quantized on the device.
    const std::string f8 = std::string(fp8_rows_ ? "fp8 e4m3 per row" : "fp8 e4m3 per tensor") +
                           " from " + std::to_string(fp8_min_tokens_) + " tokens (";
    const auto lp = [&](const Linear& w) { return w.fp8() ? f8 + p + " out)" : p; };
    out.push_back({n + "qkv", "cublasLt:bias" + tuned_for(l.qkv), lp(l.qkv),
                   l.qkv.weight.bytes() + l.qkv.bias.bytes() + l.qkv.weight8.bytes()});
    out.push_back({n + "attention", mma_attention_ ? "cuda:attention_mma" : "cuda:attention_simple",
                   p + " (fp32 softmax)", 0});
    out.push_back({n + "attn_out+residual+layernorm",
                   "cublasLt+cuda:bias_residual_layer_norm" + tuned_for(l.attn_out),
                   l.attn_out.fp8() ? lp(l.attn_out) + ", " + ln_p : ln_p,
                   l.attn_out.weight.bytes() + l.attn_out.bias.bytes() +
                       l.attn_out.weight8.bytes() + static_cast<size_t>(2 * h) * sizeof(float)});
    out.push_back({n + "ffn_in+bias+act", ffn_kernel + tuned_for(l.ffn_in), lp(l.ffn_in),
                   l.ffn_in.weight.bytes() + l.ffn_in.bias.bytes() + l.ffn_in.weight8.bytes()});
    out.push_back({n + "ffn_out+residual+layernorm",
                   "cublasLt+cuda:bias_residual_layer_norm" + tuned_for(l.ffn_out),
                   l.ffn_out.fp8() ? lp(l.ffn_out) + ", " + ln_p : ln_p,
                   l.ffn_out.weight.bytes() + l.ffn_out.bias.bytes() + l.ffn_out.weight8.bytes() +
                       static_cast<size_t>(2 * h) * sizeof(float)});
  }
  return out;
}

std::vector<std::string> CudaEncoder::profile_report() const {
  std::lock_guard<std::mutex> lock(profile_mu_);
  if (!profile_) return {"cuda: load with profile on to time each op"};
  if (profile_ms_.empty()) return {"cuda: no profiled runs yet (the first runs are warm-up)"};
  double all = 0;
  for (const auto& [name, tc] : profile_ms_) all += tc.first;
  std::vector<std::string> out;
  for (const auto& [name, tc] : profile_ms_) {
    char line[160];
    std::snprintf(line, sizeof(line), "%-32s %10.3f ms %5.1f%% %8ld calls %9.4f ms/call",
                  name.c_str(), tc.first, all > 0 ? 100 * tc.first / all : 0.0, tc.second,
                  tc.first / static_cast<double>(tc.second));
    out.emplace_back(line);
  }
  return out;
}

}  // namespace kiln::backend::cuda
