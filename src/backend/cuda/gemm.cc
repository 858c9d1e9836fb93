#include "backend/cuda/gemm.h"

#include <cstdint>
#include <string>

#include "backend/cuda/gemm_tuning.h"
#include "backend/cuda/small_gemm.h"

namespace kiln::backend::cuda {

Status cublas_error(cublasStatus_t s, const char* expr, const char* file, int line) {
  return internal_error(std::string("cublasLt: ") + expr + " failed: " + cublasLtGetStatusName(s) +
                        " (" + cublasLtGetStatusString(s) + ") at " + file + ":" +
                        std::to_string(line));
}

namespace {

cublasLtEpilogue_t to_cublas(Epilogue e) {
  switch (e) {
    case Epilogue::kBias:
      return CUBLASLT_EPILOGUE_BIAS;
    case Epilogue::kGeluTanhBias:
      return CUBLASLT_EPILOGUE_GELU_BIAS;
    case Epilogue::kReluBias:
      return CUBLASLT_EPILOGUE_RELU_BIAS;
    case Epilogue::kNone:
      break;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

// Plans are cached per token count; past this many the cache starts over rather than grow
// without bound under an endless variety of batch sizes.
constexpr size_t kMaxPlans = 4096;

}  // namespace

void GemmRunner::destroy(Plan& p) {
  if (p.desc != nullptr) cublasLtMatmulDescDestroy(p.desc);
  for (cublasLtMatrixLayout_t l : {p.a, p.b, p.c}) {
    if (l != nullptr) cublasLtMatrixLayoutDestroy(l);
  }
}

GemmRunner::~GemmRunner() {
  for (auto& [key, p] : plans_) destroy(p);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

Status GemmRunner::init(size_t workspace_bytes) {
  KILN_CUBLAS_CHECK(cublasLtCreate(&handle_));
  KILN_ASSIGN_OR_RETURN(workspace_, DeviceBuffer::allocate(workspace_bytes));
  return ok_status();
}

Status GemmRunner::describe(const GemmShape& s, Plan* p) const {
  if (s.dtype != DType::kF16 && s.dtype != DType::kBF16) {
    return invalid_argument("cuda gemm: dtype must be F16 or BF16");
  }
  const cudaDataType_t dt = s.dtype == DType::kF16 ? CUDA_R_16F : CUDA_R_16BF;
  // FP8 needs the "TN" layout (A transposed, B not), which is the layout used for every type.
  const cudaDataType_t in_dt = s.fp8 ? CUDA_R_8F_E4M3 : dt;
  // Row-major Y = X W^T is column-major Y^T [out, rows] = W [out, in] . X^T [in, rows]: W is
  // column-major [in, out] used transposed, X column-major [in, rows] used as it is.
  KILN_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  if (s.fp8) {
    const int8_t fast = s.fp8_fast_accum ? 1 : 0;
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM,
                                                     &fast, sizeof(fast)));
    const cudaDataType_t bias_dt = dt;  // cuBLASLt: the bias has the output's 16-bit type
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                                                     &bias_dt, sizeof(bias_dt)));
    if (s.fp8_rowwise) {  // A (W) scaled per output channel, B (X) per token row
      const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
      KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                                                       &mode, sizeof(mode)));
      KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                                                       &mode, sizeof(mode)));
    }
  }
  const cublasLtEpilogue_t epi = to_cublas(s.epilogue);
  KILN_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, in_dt, s.in, s.out, s.in));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, in_dt, s.in, s.rows, s.in));
  KILN_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, dt, s.out, s.rows, s.out));
  return ok_status();
}

Result<std::vector<cublasLtMatmulHeuristicResult_t>> GemmRunner::heuristics(const Plan& p,
                                                                            int count) const {
  cublasLtMatmulPreference_t pref = nullptr;
  KILN_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws = workspace_.bytes();
  cublasStatus_t st = cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
  std::vector<cublasLtMatmulHeuristicResult_t> results(static_cast<size_t>(count));
  int found = 0;
  if (st == CUBLAS_STATUS_SUCCESS) {
    st = cublasLtMatmulAlgoGetHeuristic(handle_, p.desc, p.a, p.b, p.c, p.c, pref, count,
                                        results.data(), &found);
  }
  cublasLtMatmulPreferenceDestroy(pref);
  KILN_CUBLAS_CHECK(st);
  results.resize(static_cast<size_t>(found));
  return results;
}

Result<GemmRunner::Plan*> GemmRunner::plan_for(const GemmShape& s) {
  const Key key{s.rows,
                s.out,
                s.in,
                static_cast<int>(s.epilogue),
                static_cast<int>(s.dtype),
                (s.fp8 ? 1 : 0) | (s.fp8_fast_accum ? 2 : 0) | (s.fp8_rowwise ? 4 : 0)};
  if (auto it = plans_.find(key); it != plans_.end()) return &it->second;
  if (plans_.size() >= kMaxPlans) {
    for (auto& [k, p] : plans_) destroy(p);
    plans_.clear();
  }
  Plan p;
  Status status = [&]() -> Status {
    KILN_RETURN_IF_ERROR(describe(s, &p));
    // The algorithm tuned for this shape's bucket, when cuBLASLt accepts it at this size.
    // Tuning records FP16/BF16 shapes only (gemm_tuning.h).
    if (const cublasLtMatmulAlgo_t* tuned = tuning_ && !s.fp8 ? tuning_->find(s) : nullptr) {
      cublasLtMatmulHeuristicResult_t check{};
      if (cublasLtMatmulAlgoCheck(handle_, p.desc, p.a, p.b, p.c, p.c, tuned, &check) ==
              CUBLAS_STATUS_SUCCESS &&
          check.workspaceSize <= workspace_.bytes()) {
        p.algo = *tuned;
        return ok_status();
      }
    }
    if (s.fp8) {
      // cuBLASLt's heuristic refuses outer-vector scaling without scale pointers; any device
      // address stands in (matmul sets the real ones per call).
      const void* stand_in = workspace_.get();
      KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                       &stand_in, sizeof(stand_in)));
      KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                       &stand_in, sizeof(stand_in)));
    }
    KILN_ASSIGN_OR_RETURN(auto found, heuristics(p, 1));
    if (found.empty()) {
      return unimplemented("cublasLt has no algorithm for a " + std::to_string(s.rows) + "x" +
                           std::to_string(s.out) + "x" + std::to_string(s.in) + " GEMM");
    }
    p.algo = found[0].algo;
    return ok_status();
  }();
  if (!status.ok()) {
    destroy(p);
    return status;
  }
  return &plans_.emplace(key, p).first->second;
}

void GemmRunner::set_tuning(const GemmTuning* tuning) {
  if (tuning == tuning_) return;
  for (auto& [k, p] : plans_) destroy(p);
  plans_.clear();
  tuning_ = tuning;
}

Status GemmRunner::run(const GemmShape& s, const void* x, const void* w, const void* bias, void* y,
                       cudaStream_t stream) {
  if (s.fp8) return invalid_argument("cuda gemm: an FP8 shape runs through run_fp8");
  if (small_ && small_gemm_fits(s)) {
    if (s.epilogue != Epilogue::kNone && bias == nullptr) {
      return invalid_argument("cuda gemm: the epilogue needs a bias");
    }
    return small_gemm(s, x, w, bias, y, stream);
  }
  return matmul(s, x, w, bias, y, nullptr, nullptr, stream);
}

Status GemmRunner::run_fp8(const GemmShape& s, const void* x, const void* w, const void* bias,
                           void* y, const float* x_scale, const float* w_scale,
                           cudaStream_t stream) {
  if (!s.fp8) return invalid_argument("cuda gemm: run_fp8 needs a shape with fp8 set");
  if (x_scale == nullptr || w_scale == nullptr) {
    return invalid_argument("cuda gemm: FP8 needs the X and W scales");
  }
  if (s.in % 16 != 0 || s.out % 16 != 0) {
    return invalid_argument("cuda gemm: FP8 needs in and out to be multiples of 16");
  }
  if (reinterpret_cast<uintptr_t>(x_scale) % 16 != 0 ||
      reinterpret_cast<uintptr_t>(w_scale) % 16 != 0) {
    return invalid_argument("cuda gemm: FP8 scale pointers must be 16-byte aligned");
  }
  return matmul(s, x, w, bias, y, x_scale, w_scale, stream);
}

Status GemmRunner::matmul(const GemmShape& s, const void* x, const void* w, const void* bias,
                          void* y, const float* x_scale, const float* w_scale,
                          cudaStream_t stream) {
  if (s.rows == 0) return ok_status();
  if (s.epilogue != Epilogue::kNone && bias == nullptr) {
    return invalid_argument("cuda gemm: the epilogue needs a bias");
  }
  KILN_ASSIGN_OR_RETURN(Plan * p, plan_for(s));
  if (s.epilogue != Epilogue::kNone) {
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof(bias)));
  }
  if (s.fp8) {  // A is W and B is X in cuBLASLt's column-major view (see describe)
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                                     &w_scale, sizeof(w_scale)));
    KILN_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                                     &x_scale, sizeof(x_scale)));
  }
  const float alpha = 1.0f, beta = 0.0f;
  KILN_CUBLAS_CHECK(cublasLtMatmul(handle_, p->desc, &alpha, w, p->a, x, p->b, &beta, y, p->c, y,
                                   p->c, &p->algo, workspace_.get(), workspace_.bytes(), stream));
  return ok_status();
}

}  // namespace kiln::backend::cuda
