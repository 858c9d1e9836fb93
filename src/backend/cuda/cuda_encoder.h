// The encoder stack compiled for one GPU: FP16 or BF16 weights on the device, cuBLASLt GEMMs
// and kiln's fused embedding, attention and LayerNorm kernels, run on ragged batches.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_context.h"
#include "backend/cuda/gemm_tuning.h"
#include "backend/cuda/memory.h"
#include "backend/device.h"

namespace kiln::backend::cuda {

/// Batches of fewer tokens than this run an FP8 engine's linears as 16-bit GEMMs: at small sizes
/// the GEMMs are no faster in FP8 and the quantization passes are extra. Measured on the H100
/// (2026-11-28, QKV and FFN-in in FP8 per row, forced at every size, against tuned FP16, x 128
/// tokens, one call):
///   BERT-base  (hidden 768):  batch 8 -3%, 16 -1%, 32 +1%, 64 +8%
///   BERT-large (hidden 1024): batch 8 +4%, 16 +8%, 32 +12%; 128 x 384 +15%
/// Wider layers pay off sooner.
inline int64_t fp8_min_tokens(int64_t hidden) { return hidden >= 1024 ? 1024 : 4096; }

/// See EncoderExecutor. run() is thread-safe: each call leases its own stream context (stream,
/// cuBLASLt workspace, pinned staging) and activation block from the caching allocator, so
/// concurrent calls overlap on the GPU and steady-state calls allocate nothing.
/// Small batches (up to kGraphMaxTokens tokens) are padded to a shape bucket (forward()) and
/// replay a CUDA graph per bucket once it has been seen a few times (see StreamContext::Graph).
/// BF16 keeps the residual stream in float32 (its 8-bit mantissa loses too much over the layers
/// otherwise); FP16 keeps it in FP16. With ExecutorOptions::profile every op is timed with CUDA
/// events (device time per op; the first kProfileWarmupRuns runs are left out) and graphs are off.
/// Environment, read at compile time: KILN_CUDA_POISON=1 fills the activations with NaN before
/// every run (tests use it to catch reads of memory nothing wrote); KILN_CUDA_GRAPHS=0 turns
/// graphs off; KILN_CUDA_ATTENTION=simple picks the reference attention kernel, =rows16 or
/// =rows32 fixes the tensor-core kernel's tiling (AttentionTiling);
/// KILN_CUDA_SMALL_GEMM=1 sends the GEMMs of batches of <= 128 tokens to small_gemm.h's
/// kernel (an experiment: slower than cuBLASLt so far, docs/PERFORMANCE.md); KILN_CUDA_FP8,
/// KILN_CUDA_FP8_MIN_TOKENS and KILN_CUDA_FP8_LINEARS shape the FP8 linears (fp8_ below).
/// An FP8 engine's result for a sequence depends on the size of the batch it runs in: FP8
/// GEMMs from fp8_min_tokens_ tokens, FP16 below (ExecutorOptions::fp8_min_tokens = 0 makes it
/// FP8 always, and batching-independent: per-token scales).
class CudaEncoder final : public EncoderExecutor {
 public:
  /// Uploads the weights, converted to `options.precision` (kF16 or kBF16; kFp8: FP16 plus an
  /// E4M3 copy of the linears), to `device`.
  static Result<std::unique_ptr<CudaEncoder>> create(int device, const model::ModelConfig& config,
                                                     model::EncoderWeights weights,
                                                     const ExecutorOptions& options);
  ~CudaEncoder() override;

  Status run(const EncoderInputs& inputs, float* hidden) const override;
  bool pools() const override { return true; }
  Status run_pooled(const EncoderInputs& inputs, const PoolingConfig& pooling,
                    float* embeddings) const override;
  std::vector<LayerReport> describe() const override;
  std::vector<std::string> profile_report() const override;
  /// The tuned GEMM algorithms and the GELU choice (device_record.h); empty when neither.
  std::string device_record() const override;

 private:
  struct Linear {
    DeviceBuffer weight;  // [out, in], dtype_
    DeviceBuffer bias;    // [out], dtype_
    int64_t out = 0, in = 0;
    // With fp8_ (and in, out multiples of 16): also the weight as E4M3 and its scale (fp8_rows_:
    // one per output channel; else one, kFp8ScaleStride floats after an amax scratch float).
    DeviceBuffer weight8, weight_scale;
    bool fp8() const { return weight8.get() != nullptr; }
  };
  struct Norm {
    DeviceBuffer gamma, beta;  // float32
  };
  struct Layer {
    Linear qkv, attn_out, ffn_in, ffn_out;
    Norm attn_norm, ffn_norm;
  };
  // Device pointers of one run's activations.
  struct Buffers {
    const int32_t *ids = nullptr, *types = nullptr, *cu = nullptr;
    void* x = nullptr;        // [t, h] dtype_: GEMM input (and the residual stream in FP16)
    float* x32 = nullptr;     // [t, h] float32 residual stream (BF16), else null
    void* big = nullptr;      // QKV, then the FFN middle
    void* ctx = nullptr;      // attention output
    void* y = nullptr;        // GEMM outputs before LayerNorm
    float* out = nullptr;     // float32 hidden states after the last layer
    float* pooled = nullptr;  // [n, h] float32 pooled embeddings (run_pooled)
    void* q = nullptr;        // fp8_: the current FP8 GEMM input [t, max(h, inter)]
    // fp8_: amax scratch and, kFp8ScaleStride floats on, the input's scale; or one per token row
    float* scales = nullptr;
    size_t input_bytes = 0;
    size_t total_bytes = 0;
  };
  static constexpr int64_t kGraphMaxTokens = 1024;
  static constexpr long kProfileWarmupRuns = 3;

  CudaEncoder() = default;
  Status upload(const model::EncoderWeights& weights, const PrebuiltWeights* prebuilt);
  // Applies a plan's device record: the GELU choice, and the tuning when it was made here.
  Status apply_record(const std::string& bytes);
  // Times the GEMM algorithms of every layer shape for token buckets up to `max_tokens`.
  Status autotune(int64_t max_tokens);
  Epilogue ffn_epilogue() const;
  Buffers layout(int64_t tokens, int64_t sequences, bool types, char* base) const;
  // Writes the hidden states to `hidden`, or with `pooling` the pooled rows to `pooled`.
  Status forward(StreamContext& c, const EncoderInputs& in, float* hidden,
                 const PoolingConfig* pooling, float* pooled) const;
  using Marks = std::vector<const char*>;
  Status enqueue(StreamContext& c, const Buffers& b, const EncoderInputs& in, int64_t max_len,
                 Marks* marks) const;

  int device_ = 0;
  DType dtype_ = DType::kF16;
  model::ModelConfig config_;
  bool poison_ = false;
  bool mma_attention_ = true;
  AttentionTiling attention_tiling_ = AttentionTiling::kAuto;  // KILN_CUDA_ATTENTION=rows16|rows32
  bool profile_ = false;
  bool residual_f32_ = false;
  bool graphs_ = true;
  bool small_gemm_ = false;  // batches of <= 128 tokens on small_gemm.h (KILN_CUDA_SMALL_GEMM=1)
  bool fast_gelu_ = false;
  // Linear layers as FP8 E4M3 GEMMs for batches of at least fp8_min_tokens_ tokens (smaller ones
  // run the 16-bit GEMMs, which are faster there: both weights are kept). --precision fp8 or
  // KILN_CUDA_FP8=rows: weights per output channel, inputs per token row (cuBLASLt's
  // outer-vector scales). Experimental KILN_CUDA_FP8=1: weights per tensor at load, each input
  // per tensor on the device before its GEMM. KILN_CUDA_FP8_MIN_TOKENS overrides the bound.
  // Per row, only QKV and FFN-in run in FP8 (KILN_CUDA_FP8_LINEARS=all: all four). Their inputs
  // come quantized from the LayerNorm before them, while the attention-output and FFN-out GEMMs
  // would need a quantization pass that costs about what FP8 saves them. H100, 2026-11-28, same
  // call: BERT-large b128 x s384 2,292 seq/s with two FP8 linears against 2,241 with four (FP16
  // 1,968); BERT-base b64 19,825 / 19,522 against 19,132 / 18,998.
  bool fp8_ = false;
  bool fp8_rows_ = false;
  bool fp8_all_linears_ = false;
  int64_t fp8_min_tokens_ = 0;
  std::shared_ptr<const GemmTuning> tuning_;  // null = cuBLASLt's heuristic for every GEMM
  TuningTarget tuned_on_;
  DeviceBuffer word_, position_, type_;  // float32 tables
  Norm embedding_norm_;
  std::vector<Layer> layers_;
  mutable CachingAllocator activations_;  // before contexts_: their graphs hold blocks
  mutable ContextPool contexts_;
  mutable std::mutex profile_mu_;
  mutable long profiled_runs_ = 0;
  mutable std::map<std::string, std::pair<double, long>> profile_ms_;  // op -> (ms, calls)
};

}  // namespace kiln::backend::cuda
