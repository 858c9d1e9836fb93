#include "backend/cuda/gemm_tuning.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>

#include "backend/cuda/activation.h"
#include "backend/cuda/cuda_check.h"

namespace kiln::backend::cuda {

namespace {

constexpr const char* kEpilogueNames[] = {"none", "bias", "gelu_tanh_bias", "relu_bias"};
// Weight copies cycled through while timing: more than twice the H100's 50 MB L2, so each call
// reads its weight from memory as a forward pass (a different layer every GEMM) does.
constexpr size_t kRotationBytes = size_t{128} << 20;
constexpr size_t kMaxCopies = 64;
// Per candidate: calls timed per trial aim at this much GPU time, and the best of the trials
// counts.
constexpr double kTrialMicros = 2000;
constexpr int kTrials = 3;

Status corrupt(const std::string& detail) {
  return data_loss("plan section 'device' is corrupt: " + detail);
}

int config_attr(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attr) {
  size_t written = 0;
  if (attr == CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID ||
      attr == CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID) {
    uint16_t v = 0;  // these two are 16-bit
    return cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof(v), &written) ==
                   CUBLAS_STATUS_SUCCESS
               ? v
               : -1;
  }
  uint32_t v = 0;
  return cublasLtMatmulAlgoConfigGetAttribute(&algo, attr, &v, sizeof(v), &written) ==
                 CUBLAS_STATUS_SUCCESS
             ? static_cast<int>(v)
             : -1;
}

std::string kernel_name(const cublasLtMatmulAlgo_t& algo) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "algo %d tile %d stages %d split-k %d cluster %d",
                config_attr(algo, CUBLASLT_ALGO_CONFIG_ID),
                config_attr(algo, CUBLASLT_ALGO_CONFIG_TILE_ID),
                config_attr(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID),
                config_attr(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                config_attr(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID));
  return buf;
}

std::string algo_hex(const cublasLtMatmulAlgo_t& algo) {
  std::string out;
  char word[17];
  for (uint64_t d : algo.data) {
    std::snprintf(word, sizeof(word), "%016" PRIx64, d);
    out += word;
  }
  return out;
}

bool parse_algo(const std::string& hex, cublasLtMatmulAlgo_t* algo) {
  constexpr size_t kWords = sizeof(algo->data) / sizeof(algo->data[0]);
  if (hex.size() != kWords * 16) return false;
  for (size_t i = 0; i < kWords; ++i) {
    uint64_t v = 0;
    for (size_t j = 0; j < 16; ++j) {
      const char c = hex[i * 16 + j];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return false;
      v = v << 4 | static_cast<uint64_t>(d);
    }
    algo->data[i] = v;
  }
  return true;
}

// The timing events of one tuning run, destroyed on scope exit.
struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~Events() {
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
  }
};

}  // namespace

int64_t GemmTuning::bucket(int64_t rows) {
  int64_t b = kMinBucket;
  while (b < rows) b *= 2;
  return b;
}

GemmTuning::Key GemmTuning::key_of(const GemmShape& s, int64_t rows) {
  return {rows, s.out, s.in, static_cast<int>(s.epilogue), static_cast<int>(s.dtype)};
}

void GemmTuning::add(TunedGemm tuned) {
  const Key key = key_of(tuned.shape, tuned.shape.rows);
  if (auto it = index_.find(key); it != index_.end()) {
    entries_[it->second] = std::move(tuned);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.push_back(std::move(tuned));
}

const cublasLtMatmulAlgo_t* GemmTuning::find(const GemmShape& s) const {
  auto it = index_.find(key_of(s, bucket(s.rows)));
  return it == index_.end() ? nullptr : &entries_[it->second].algo;
}

void GemmTuning::write_json(rapidjson::Writer<rapidjson::StringBuffer>& w) const {
  w.StartArray();
  for (const TunedGemm& t : entries_) {
    w.StartObject();
    w.Key("rows");
    w.Int64(t.shape.rows);
    w.Key("out");
    w.Int64(t.shape.out);
    w.Key("in");
    w.Int64(t.shape.in);
    w.Key("epilogue");
    w.String(kEpilogueNames[static_cast<int>(t.shape.epilogue)]);
    w.Key("dtype");
    w.String(t.shape.dtype == DType::kBF16 ? "bf16" : "f16");
    w.Key("algo");
    w.String(algo_hex(t.algo).c_str());
    w.Key("us");
    w.Double(t.us);
    w.Key("heuristic_us");
    w.Double(t.heuristic_us);
    w.Key("candidates");
    w.Int(t.candidates);
    w.Key("kernel");
    w.String(t.kernel.c_str());
    w.EndObject();
  }
  w.EndArray();
}

Result<GemmTuning> GemmTuning::from_json(const core::json::Value& gemms) {
  namespace json = core::json;
  if (!gemms.IsArray()) return corrupt("\"gemms\" is not an array");
  GemmTuning out;
  for (rapidjson::SizeType i = 0; i < gemms.Size(); ++i) {
    const json::Value& g = gemms[i];
    const std::string where = "gemms[" + std::to_string(i) + "]";
    if (!g.IsObject()) return corrupt(where + " is not an object");
    TunedGemm t;
    auto need_int = [&](const char* key, int64_t* dst) -> Status {
      auto v = json::get_int(g, key);
      if (!v.ok() || !v->has_value() || **v <= 0 || **v > (int64_t{1} << 32)) {
        return corrupt(where + "." + key + " is missing or out of range");
      }
      *dst = **v;
      return ok_status();
    };
    KILN_RETURN_IF_ERROR(need_int("rows", &t.shape.rows));
    if (bucket(t.shape.rows) != t.shape.rows) {
      return corrupt(where + ".rows " + std::to_string(t.shape.rows) +
                     " is not a token bucket (a power of two, at least " +
                     std::to_string(kMinBucket) + ")");
    }
    KILN_RETURN_IF_ERROR(need_int("out", &t.shape.out));
    KILN_RETURN_IF_ERROR(need_int("in", &t.shape.in));
    auto epi = json::get_string(g, "epilogue");
    auto dtype = json::get_string(g, "dtype");
    auto algo = json::get_string(g, "algo");
    if (!epi.ok() || !epi->has_value() || !dtype.ok() || !dtype->has_value() || !algo.ok() ||
        !algo->has_value()) {
      return corrupt(where + " lacks epilogue, dtype or algo");
    }
    const auto* name = std::find_if(std::begin(kEpilogueNames), std::end(kEpilogueNames),
                                    [&](const char* n) { return **epi == n; });
    if (name == std::end(kEpilogueNames)) return corrupt(where + ".epilogue \"" + **epi + "\"");
    t.shape.epilogue = static_cast<Epilogue>(name - std::begin(kEpilogueNames));
    if (**dtype != "f16" && **dtype != "bf16") return corrupt(where + ".dtype \"" + **dtype + "\"");
    t.shape.dtype = **dtype == "bf16" ? DType::kBF16 : DType::kF16;
    if (!parse_algo(**algo, &t.algo)) return corrupt(where + ".algo is not 128 hex digits");
    auto us = json::get_double_or(g, "us", 0);
    auto hus = json::get_double_or(g, "heuristic_us", 0);
    auto candidates = json::get_int_or(g, "candidates", 0);
    auto kernel = json::get_string_or(g, "kernel", "");
    if (!us.ok() || !hus.ok() || !candidates.ok() || !kernel.ok()) {
      return corrupt(where + " has a field of the wrong type");
    }
    if (!(*us >= 0 && *us < 1e12) || !(*hus >= 0 && *hus < 1e12) || *candidates < 0 ||
        *candidates > 1 << 20) {
      return corrupt(where + " has a timing or candidate count out of range");
    }
    t.us = *us;
    t.heuristic_us = *hus;
    t.candidates = static_cast<int>(*candidates);
    t.kernel = std::move(*kernel);
    if (out.find(t.shape) != nullptr) return corrupt(where + " repeats an earlier shape");
    out.add(std::move(t));
  }
  return out;
}

TuningTarget TuningTarget::current(int device) {
  TuningTarget t;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) t.gpu = prop.name;
  cudaGetLastError();
  t.cublaslt_version = cublasLtGetVersion();
  return t;
}

Result<TunedGemm> GemmRunner::tune(const GemmShape& s, const void* x,
                                   const std::vector<const void*>& weights, const void* bias,
                                   void* y, cudaStream_t stream, int max_candidates) {
  if (weights.empty()) return invalid_argument("cuda gemm tuning: no weights");
  if (s.fp8) return invalid_argument("cuda gemm tuning: FP8 shapes are not tuned");
  Plan p;
  struct Destroy {
    Plan* p;
    ~Destroy() { GemmRunner::destroy(*p); }
  } destroy_plan{&p};
  KILN_RETURN_IF_ERROR(describe(s, &p));
  if (s.epilogue != Epilogue::kNone) {
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof(bias)));
  }
  KILN_ASSIGN_OR_RETURN(auto found, heuristics(p, max_candidates));
  if (found.empty()) {
    return unimplemented("cublasLt has no algorithm for a " + std::to_string(s.rows) + "x" +
                         std::to_string(s.out) + "x" + std::to_string(s.in) + " GEMM");
  }
  // Split-K variants of these were tried (2, 4, 8 parts for <= 1024 tokens): better alone
  // but slower inside the forward pass's graph (BERT-base batch 1: 0.537 against 0.501 ms), so
  // only cuBLASLt's own proposals are timed.
  Events ev;
  KILN_CUDA_CHECK(cudaEventCreate(&ev.start));
  KILN_CUDA_CHECK(cudaEventCreate(&ev.stop));
  const float alpha = 1.0f, beta = 0.0f;
  size_t next = 0;
  // Microseconds per call over `calls` back-to-back calls, captured in a CUDA graph and timed
  // over one launch: device time alone, as the forward pass's graphs run them. (Timed
  // from the host, a small GEMM's cuBLASLt call takes longer than its kernel, so the launches
  // were timed instead of the kernels, and the choice at small buckets was noise.) Negative
  // when cuBLASLt refuses the algorithm or the capture fails.
  auto time = [&](const cublasLtMatmulAlgo_t& algo, int calls) -> Result<double> {
    KILN_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    bool refused = false;
    for (int i = 0; i < calls && !refused; ++i) {
      const void* w = weights[next++ % weights.size()];
      refused =
          cublasLtMatmul(handle_, p.desc, &alpha, w, p.a, x, p.b, &beta, y, p.c, y, p.c, &algo,
                         workspace_.get(), workspace_.bytes(), stream) != CUBLAS_STATUS_SUCCESS;
    }
    cudaGraph_t graph = nullptr;
    const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
    struct GraphGuard {
      cudaGraph_t g;
      cudaGraphExec_t e = nullptr;
      ~GraphGuard() {
        if (e != nullptr) cudaGraphExecDestroy(e);
        if (g != nullptr) cudaGraphDestroy(g);
      }
    } guard{graph};
    if (refused || ended != cudaSuccess) {
      cudaGetLastError();  // a failed capture's error must not be blamed on a later kernel
      return -1.0;
    }
    KILN_CUDA_CHECK(cudaGraphInstantiate(&guard.e, graph, 0));
    // Uploaded ahead, not run ahead: a warm-up launch would pull these very weight copies into
    // L2 for the timed one.
    KILN_CUDA_CHECK(cudaGraphUpload(guard.e, stream));
    KILN_CUDA_CHECK(cudaEventRecord(ev.start, stream));
    KILN_CUDA_CHECK(cudaGraphLaunch(guard.e, stream));
    KILN_CUDA_CHECK(cudaEventRecord(ev.stop, stream));
    KILN_CUDA_CHECK(cudaEventSynchronize(ev.stop));
    float ms = 0;
    KILN_CUDA_CHECK(cudaEventElapsedTime(&ms, ev.start, ev.stop));
    return 1000.0 * ms / calls;
  };
  TunedGemm best;
  best.shape = s;
  best.us = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < found.size(); ++i) {
    const cublasLtMatmulAlgo_t& algo = found[i].algo;
    // A first short run sizes the trials (and loads the kernel).
    KILN_ASSIGN_OR_RETURN(double estimate, time(algo, 3));
    if (estimate < 0) continue;
    const int calls =
        static_cast<int>(std::clamp(kTrialMicros / std::max(estimate, 1.0), 5.0, 400.0));
    double us = std::numeric_limits<double>::infinity();
    for (int trial = 0; trial < kTrials; ++trial) {
      KILN_ASSIGN_OR_RETURN(double t, time(algo, calls));
      if (t >= 0) us = std::min(us, t);
    }
    ++best.candidates;
    if (i == 0) best.heuristic_us = us;
    if (us < best.us) {
      best.us = us;
      best.algo = algo;
    }
  }
  if (best.candidates == 0) {
    return internal_error("cublasLt refused every algorithm it proposed for a " +
                          std::to_string(s.rows) + "x" + std::to_string(s.out) + "x" +
                          std::to_string(s.in) + " GEMM");
  }
  best.kernel = kernel_name(best.algo);
  return best;
}

Result<GemmTuning> tune_gemms(const std::vector<GemmShape>& shapes,
                              const std::vector<const void*>& weights,
                              const std::vector<const void*>& biases, int max_candidates) {
  if (weights.size() != shapes.size() || biases.size() != shapes.size()) {
    return invalid_argument("cuda gemm tuning: one weight and bias per shape");
  }
  size_t x_elems = 0, y_elems = 0;
  for (const GemmShape& s : shapes) {
    x_elems = std::max(x_elems, static_cast<size_t>(s.rows * s.in));
    y_elems = std::max(y_elems, static_cast<size_t>(s.rows * s.out));
  }
  cudaStream_t stream = nullptr;
  KILN_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  struct StreamGuard {
    cudaStream_t s;
    ~StreamGuard() {
      cudaStreamSynchronize(s);
      cudaStreamDestroy(s);
    }
  } guard{stream};
  GemmRunner runner;
  KILN_RETURN_IF_ERROR(runner.init());
  KILN_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::allocate(std::max<size_t>(x_elems, 8) * 2));
  KILN_ASSIGN_OR_RETURN(DeviceBuffer y, DeviceBuffer::allocate(std::max<size_t>(y_elems, 8) * 2));
  const DType dtype = shapes.empty() ? DType::kF16 : shapes.front().dtype;
  KILN_RETURN_IF_ERROR(fill_random(dtype, x.get(), static_cast<int64_t>(x_elems), 7, stream));

  // Copies of each distinct weight, made once and reused for every bucket.
  std::map<const void*, std::pair<DeviceBuffer, std::vector<const void*>>> copies;
  GemmTuning out;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const GemmShape& s = shapes[i];
    auto it = copies.find(weights[i]);
    if (it == copies.end()) {
      const size_t bytes = static_cast<size_t>(s.out * s.in) * 2;
      const size_t stride = (bytes + 255) / 256 * 256;
      const size_t n =
          std::clamp<size_t>(kRotationBytes / std::max<size_t>(bytes, 1), 1, kMaxCopies);
      KILN_ASSIGN_OR_RETURN(DeviceBuffer buf, DeviceBuffer::allocate(stride * n));
      std::vector<const void*> ptrs;
      for (size_t c = 0; c < n; ++c) {
        char* dst = static_cast<char*>(buf.get()) + c * stride;
        KILN_CUDA_CHECK(cudaMemcpyAsync(dst, weights[i], bytes, cudaMemcpyDeviceToDevice, stream));
        ptrs.push_back(dst);
      }
      it = copies.emplace(weights[i], std::pair{std::move(buf), std::move(ptrs)}).first;
    }
    KILN_ASSIGN_OR_RETURN(TunedGemm t, runner.tune(s, x.get(), it->second.second, biases[i],
                                                   y.get(), stream, max_candidates));
    out.add(std::move(t));
  }
  return out;
}

}  // namespace kiln::backend::cuda
