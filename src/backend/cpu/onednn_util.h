// oneDNN pieces shared by the FP32/BF16 and INT8 linear layers.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "backend/cpu/linear.h"

namespace kiln::backend::cpu {

/// The process-wide oneDNN CPU engine.
inline dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

/// oneDNN's eltwise algorithm for an epilogue (undef for kNone).
inline dnnl::algorithm to_algorithm(Epilogue e) {
  switch (e) {
    case Epilogue::kGeluErf:
      return dnnl::algorithm::eltwise_gelu_erf;
    case Epilogue::kGeluTanh:
      return dnnl::algorithm::eltwise_gelu_tanh;
    case Epilogue::kTanh:
      return dnnl::algorithm::eltwise_tanh;
    case Epilogue::kRelu:
      return dnnl::algorithm::eltwise_relu;
    case Epilogue::kNone:
      break;
  }
  return dnnl::algorithm::undef;
}

/// Primitives are cached per row count; ragged batches produce many distinct counts, so caches
/// are bounded (cleared when full; creating a matmul primitive costs tens of microseconds).
inline constexpr size_t kMaxCachedShapes = 512;

}  // namespace kiln::backend::cpu
