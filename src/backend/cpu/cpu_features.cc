#include "backend/cpu/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace kiln::backend::cpu {

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
    __builtin_cpu_init();
    f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("fma");
    f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
    f.avx512_vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
    return f;
  }();
  return features;
}

Isa active_isa() {
  static const Isa isa = [] {
    const char* forced = std::getenv("KILN_CPU_ISA");
    if (forced != nullptr && std::strcmp(forced, "scalar") == 0) return Isa::kScalar;
    return cpu_features().avx512 ? Isa::kAvx512 : Isa::kScalar;
  }();
  return isa;
}

}  // namespace kiln::backend::cpu
