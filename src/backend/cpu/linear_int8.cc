#include "backend/cpu/linear_int8.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/onednn_util.h"
#include "backend/cpu/quantize.h"

namespace kiln::backend::cpu {

// Why this shape (measured on the 2-core Zen 4 VM, oneDNN 2.6.3, M = 4096 tokens, MiniLM
// shapes; single-thread CPU time, so that the VM's neighbours do not blur it):
// - u8 activations (code + 128), not s8: oneDNN's s8 x s8 kernel on AVX512_VNNI shifts every
//   source byte by 128 itself and adds its own compensation: 2-30% slower on the MiniLM shapes.
//   Our +128 is undone exactly by a per-channel integer compensation, -128 * sum_k Wq[n, k],
//   passed as oneDNN's bias, which 2.x adds to the s32 accumulator before the output scales.
// - oneDNN computes only (acc + comp) * weight_scale, per channel; the per-token scale, bias,
//   activation and residual are our own pass (dequantize_avx512.cc). oneDNN 2.6's brgemm
//   matmul has no per-row scale, and its binary/eltwise post-ops that would emulate one cost
//   +25% (per-row multiply and bias) and +67% (with GELU) on the 384 -> 1536 layer, where an
//   INT8 GEMM does only K/4 = 96 dot-product instructions per 16 outputs.
// - Rows go through in blocks of kBlockRows, one block per OpenMP thread at a time (oneDNN runs
//   single-threaded inside our parallel region): quantized input, the GEMM's float block and
//   our epilogue stay in L2, so the output is written once and never re-read. Blocked GEMMs ran
//   at the whole-matrix speed (360-410 GOP/s per core, 80-89% of the 128 ops/cycle peak), and
//   at batch 1 a whole-matrix GEMM threaded over N by oneDNN was no faster (MiniLM, BERT-base).

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

constexpr size_t kAlign = 64;
// Rows per block: the GEMM's float output of a block (kBlockRows x N, 768 KiB for N = 3072)
// stays in the 2 MiB L2 for the epilogue.
constexpr int64_t kBlockRows = 64;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

Status validate(const LinearSpec& s) {
  if (active_isa() != Isa::kAvx512 || !cpu_features().avx512_vnni) {
    return unimplemented("int8 linear: needs AVX-512 with AVX512_VNNI");
  }
  if (s.bf16_output && !cpu_features().avx512_bf16) {
    return unimplemented("int8 linear: bfloat16 output needs AVX512_BF16");
  }
  if (s.out <= 0 || s.in <= 0) return invalid_argument("int8 linear: empty weight");
  if (s.scaling == quant::ActivationScaling::kStaticPerTensor &&
      !(std::isfinite(s.input_scale) && s.input_scale > 0.0f)) {
    return invalid_argument("int8 linear: static input scale must be positive and finite");
  }
  if (!s.smooth.empty()) {
    if (static_cast<int64_t>(s.smooth.size()) != s.in) {
      return invalid_argument("int8 linear: " + std::to_string(s.smooth.size()) +
                              " smoothing factors for " + std::to_string(s.in) + " inputs");
    }
    for (float f : s.smooth) {
      if (!(std::isfinite(f) && f > 0.0f)) {
        return invalid_argument("int8 linear: smoothing factors must be positive and finite");
      }
    }
  }
  if (s.accumulate && s.bf16_output) {
    return invalid_argument("int8 linear: accumulation needs float output");
  }
  if (!(std::isfinite(s.input_clip) && s.input_clip >= 0.0f)) {
    return invalid_argument("int8 linear: input clip must be >= 0");
  }
  return ok_status();
}

}  // namespace

struct Int8Linear::Impl {
  LinearSpec spec;
  bool dynamic = true;
  std::vector<float> inv_smooth;
  QuantizeParams qparams;
  DequantizeParams dparams;
  std::vector<float> bias;
  std::vector<float> out_scales;  // per output channel: weight scale (x static input scale)
  memory::desc weight_md;         // [K, N] s8, oneDNN's blocked layout
  memory owned;                   // the blob when quantized here (oneDNN allocates aligned)
  const uint8_t* blob = nullptr;
  memory weights, comp;
  std::string kernel;
  mutable std::mutex mu;
  struct Entry {
    dnnl::matmul::primitive_desc pd;
    dnnl::matmul prim;
  };
  mutable std::unordered_map<int64_t, std::shared_ptr<const Entry>> cache;

  size_t comp_offset() const { return align_up(weight_md.get_size()); }
  size_t blob_bytes() const {
    return comp_offset() + 2 * static_cast<size_t>(spec.out) * sizeof(float);
  }

  // (u8 x s8 + comp) * out_scales, float out: the per-channel half of the dequantization.
  dnnl::matmul::primitive_desc make_pd(int64_t rows, const memory::desc& wmd) const {
    const memory::desc src({rows, spec.in}, dt::u8, tag::ab);
    const memory::desc dst({rows, spec.out}, dt::f32, tag::ab);
    const memory::desc vec({1, spec.out}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, out_scales);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, wmd, vec, dst), attr, cpu_engine());
  }

  std::shared_ptr<const Entry> primitive(int64_t rows) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(rows);
    if (it != cache.end()) return it->second;
    if (cache.size() >= kMaxCachedShapes) cache.clear();
    auto pd = make_pd(rows, weight_md);
    auto entry = std::make_shared<const Entry>(Entry{pd, dnnl::matmul(pd)});
    cache.emplace(rows, entry);
    return entry;
  }

  // Everything but the weights: quantization parameters, the layout oneDNN wants, bias.
  void prepare(const float* b, const LinearSpec& s) {
    spec = s;
    dynamic = s.scaling == quant::ActivationScaling::kDynamicPerToken;
    if (!s.smooth.empty()) {
      inv_smooth.resize(s.smooth.size());
      for (size_t i = 0; i < s.smooth.size(); ++i) inv_smooth[i] = 1.0f / s.smooth[i];
    }
    qparams = {inv_smooth.empty() ? nullptr : inv_smooth.data(), s.input_clip,
               dynamic ? 0.0f : s.input_scale};
    if (b != nullptr) bias.assign(b, b + s.out);
    dparams = {bias.empty() ? nullptr : bias.data(), s.epilogue, s.accumulate, s.bf16_output};
    out_scales.assign(static_cast<size_t>(s.out), 1.0f);
    const auto pd = make_pd(1, memory::desc({s.in, s.out}, dt::s8, tag::any));
    weight_md = pd.weights_desc();
    kernel = std::string(pd.impl_info_str()) + " u8s8s32";
  }

  // Points the weights and compensation at `blob` and reads the weight scales from it.
  void attach(const uint8_t* data) {
    blob = data;
    weights = memory(weight_md, cpu_engine(), const_cast<uint8_t*>(blob));
    const auto* tail = reinterpret_cast<const float*>(blob + comp_offset());
    comp = memory({{1, spec.out}, dt::f32, tag::ab}, cpu_engine(), const_cast<float*>(tail));
    const float* w_scale = tail + spec.out;
    const float in_scale = dynamic ? 1.0f : spec.input_scale;
    for (int64_t n = 0; n < spec.out; ++n) out_scales[n] = w_scale[n] * in_scale;
  }

  // Where a call's rows come from and go to: float/bfloat16 x, or codes and row scales
  // quantized by the previous layer; float/bfloat16 y, or codes quantized for `next`.
  struct BlockIo {
    const void* x = nullptr;
    const uint8_t* in_codes = nullptr;
    const float* in_scales = nullptr;
    void* y = nullptr;
    const QuantizeParams* next = nullptr;
    uint8_t* out_codes = nullptr;
    float* out_scales = nullptr;
  };
  Status run(const BlockIo& io, int64_t rows) const;
  void run_block(const BlockIo& io, int64_t r0, int64_t rows) const;
  // The three steps, on rows [r0, r0 + rows) of the call.
  void quantize(const BlockIo& io, int64_t r0, int64_t rows, uint8_t* codes, float* scales) const;
  void gemm(const uint8_t* q, int64_t rows, float* acc) const;
  void epilogue(const BlockIo& io, int64_t r0, int64_t rows, const float* acc,
                const float* scales) const;
};

Int8Linear::Int8Linear() : impl_(std::make_unique<Impl>()) {}
Int8Linear::~Int8Linear() = default;

Result<std::unique_ptr<Int8Linear>> Int8Linear::create(const float* weight, const float* bias,
                                                       const LinearSpec& spec) {
  KILN_RETURN_IF_ERROR(validate(spec));
  std::unique_ptr<Int8Linear> lin(new Int8Linear());
  Impl& im = *lin->impl_;
  const int64_t n_out = spec.out, k_in = spec.in;
  try {
    im.prepare(bias, spec);
    // Symmetric per output channel: scale = absmax / 127, codes in [-127, 127].
    std::vector<int8_t> q(static_cast<size_t>(n_out * k_in));
    std::vector<float> scale(static_cast<size_t>(n_out)), comp(static_cast<size_t>(n_out));
    bool finite = true;
#pragma omp parallel for schedule(static) reduction(&& : finite)
    for (int64_t n = 0; n < n_out; ++n) {
      const float* w = weight + n * k_in;
      float amax = 0.0f;
      for (int64_t k = 0; k < k_in; ++k) {
        finite = finite && std::isfinite(w[k]);
        amax = std::max(amax, std::fabs(w[k]));
      }
      if (!finite) continue;
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      int64_t sum = 0;
      for (int64_t k = 0; k < k_in; ++k) {
        const float r = std::min(std::max(std::nearbyint(w[k] * inv), -127.0f), 127.0f);
        q[n * k_in + k] = static_cast<int8_t>(r);
        sum += static_cast<int64_t>(r);
      }
      scale[n] = amax / 127.0f;
      comp[n] = static_cast<float>(-kQuantZeroPoint * sum);
    }
    if (!finite) return invalid_argument("int8 linear: the weights are not all finite");
    im.owned = memory({{static_cast<int64_t>(im.blob_bytes())}, dt::u8, tag::a}, cpu_engine());
    auto* blob = static_cast<uint8_t*>(im.owned.get_data_handle());
    auto* tail = reinterpret_cast<float*>(blob + im.comp_offset());
    std::copy(comp.begin(), comp.end(), tail);
    std::copy(scale.begin(), scale.end(), tail + n_out);
    im.attach(blob);
    // [out, in] row-major is the [in, out] matrix in "ba" order.
    memory plain({{k_in, n_out}, dt::s8, tag::ba}, cpu_engine(), q.data());
    dnnl::stream stream(cpu_engine());
    dnnl::reorder(plain, im.weights).execute(stream, plain, im.weights);
    stream.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN: cannot build int8 linear layer: ") + e.what());
  }
  return lin;
}

Result<std::unique_ptr<Int8Linear>> Int8Linear::adopt(const void* blob, size_t bytes,
                                                      const float* bias, const LinearSpec& spec) {
  KILN_RETURN_IF_ERROR(validate(spec));
  std::unique_ptr<Int8Linear> lin(new Int8Linear());
  Impl& im = *lin->impl_;
  try {
    im.prepare(bias, spec);
    if (bytes != im.blob_bytes()) {
      return failed_precondition("int8 linear: packed blob of " + std::to_string(bytes) +
                                 " bytes, expected " + std::to_string(im.blob_bytes()));
    }
    im.attach(static_cast<const uint8_t*>(blob));
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN: cannot adopt int8 weights: ") + e.what());
  }
  return lin;
}

namespace {

// Per-thread buffers for one block, reused across calls and layers.
struct BlockScratch {
  std::vector<uint8_t> q, pad;
  std::vector<float> acc, scales, row;
  dnnl::stream stream;
};

BlockScratch& block_scratch() {
  thread_local BlockScratch s;
  if (!s.stream) s.stream = dnnl::stream(cpu_engine());
  return s;
}

template <typename T>
T* grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace

void Int8Linear::Impl::quantize(const BlockIo& io, int64_t r0, int64_t rows, uint8_t* codes,
                                float* scales) const {
  const size_t elem = spec.bf16_input ? 2 : 4;
  const int64_t k = spec.in;
  const auto* x = static_cast<const char*>(io.x) + static_cast<size_t>(r0 * k) * elem;
  for (int64_t r = 0; r < rows; ++r) {
    detail::quantize_row_avx512(x + static_cast<size_t>(r * k) * elem, spec.bf16_input, k, qparams,
                                codes + r * k, &scales[r]);
  }
}

void Int8Linear::Impl::gemm(const uint8_t* q, int64_t rows, float* acc) const {
  BlockScratch& s = block_scratch();
  const auto entry = primitive(rows);
  const auto& pd = entry->pd;
  uint8_t* pad = grow(s.pad, static_cast<int64_t>(pd.scratchpad_desc().get_size()));
  entry->prim.execute(s.stream,
                      {{DNNL_ARG_SRC, memory(pd.src_desc(), cpu_engine(), const_cast<uint8_t*>(q))},
                       {DNNL_ARG_WEIGHTS, weights},
                       {DNNL_ARG_BIAS, comp},
                       {DNNL_ARG_DST, memory(pd.dst_desc(), cpu_engine(), acc)},
                       {DNNL_ARG_SCRATCHPAD, memory(pd.scratchpad_desc(), cpu_engine(), pad)}});
  s.stream.wait();
}

void Int8Linear::Impl::epilogue(const BlockIo& io, int64_t r0, int64_t rows, const float* acc,
                                const float* scales) const {
  const int64_t n = spec.out;
  // Static scaling has its input scale in out_scales.
  auto row_scale = [&](int64_t r) { return dynamic ? scales[r] : 1.0f; };
  if (io.next != nullptr) {  // hand over quantized: dequantize a row in L1, quantize it again
    float* row = grow(block_scratch().row, n);
    for (int64_t r = 0; r < rows; ++r) {
      detail::dequantize_row_avx512(acc + r * n, n, row_scale(r), dparams, row);
      float unused = 0.0f;
      detail::quantize_row_avx512(row, false, n, *io.next, io.out_codes + (r0 + r) * n,
                                  io.out_scales != nullptr ? &io.out_scales[r0 + r] : &unused);
    }
    return;
  }
  const size_t elem = spec.bf16_output ? 2 : 4;
  auto* y = static_cast<char*>(io.y) + static_cast<size_t>(r0 * n) * elem;
  for (int64_t r = 0; r < rows; ++r) {
    detail::dequantize_row_avx512(acc + r * n, n, row_scale(r), dparams,
                                  y + static_cast<size_t>(r * n) * elem);
  }
}

void Int8Linear::Impl::run_block(const BlockIo& io, int64_t r0, int64_t rows) const {
  BlockScratch& s = block_scratch();
  const uint8_t* q = io.in_codes != nullptr ? io.in_codes + r0 * spec.in : nullptr;
  const float* scales = io.in_scales != nullptr ? io.in_scales + r0 : nullptr;
  if (q == nullptr) {
    uint8_t* codes = grow(s.q, rows * spec.in);
    float* row_scales = grow(s.scales, rows);
    quantize(io, r0, rows, codes, row_scales);
    q = codes;
    scales = row_scales;
  }
  float* acc = grow(s.acc, rows * spec.out);
  gemm(q, rows, acc);
  epilogue(io, r0, rows, acc, scales);
}

Status Int8Linear::Impl::run(const BlockIo& io, int64_t rows) const {
  if (rows == 0) return ok_status();
  const int64_t threads = omp_get_max_threads();
  // Blocks of at most kBlockRows, at least one per thread when there are enough rows. One
  // block alone runs on this thread, where oneDNN parallelizes the GEMM itself.
  const int64_t block = std::clamp<int64_t>((rows + threads - 1) / threads, 1, kBlockRows);
  const int64_t blocks = (rows + block - 1) / block;
  std::mutex mu;
  std::string error;
  // Dynamic scheduling: a neighbour stealing one core for a while does not stall the other.
#pragma omp parallel for schedule(dynamic, 1) if (blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    try {
      run_block(io, b * block, std::min(block, rows - b * block));
    } catch (const dnnl::error& e) {
      std::lock_guard<std::mutex> lock(mu);
      error = e.what();
    }
  }
  if (!error.empty()) return internal_error("oneDNN int8 matmul failed: " + error);
  return ok_status();
}

Status Int8Linear::run(const void* x, int64_t rows, void* y) const {
  return impl_->run({.x = x, .y = y}, rows);
}

Status Int8Linear::run_quantized_output(const void* x, int64_t rows, const Int8Linear& next,
                                        QuantizedRows out) const {
  if (next.impl_->spec.in != impl_->spec.out || impl_->spec.bf16_output) {
    return invalid_argument("int8 linear: the next layer does not take this one's output");
  }
  return impl_->run(
      {.x = x, .next = &next.impl_->qparams, .out_codes = out.codes, .out_scales = out.scales},
      rows);
}

Status Int8Linear::run_quantized_input(QuantizedRows x, int64_t rows, void* y) const {
  return impl_->run({.in_codes = x.codes, .in_scales = x.scales, .y = y}, rows);
}

const void* Int8Linear::packed_weights() const { return impl_->blob; }
size_t Int8Linear::weight_bytes() const { return impl_->blob_bytes(); }
std::string Int8Linear::kernel_name() const { return impl_->kernel; }
const memory::desc& Int8Linear::weight_md() const { return impl_->weight_md; }

}  // namespace kiln::backend::cpu
