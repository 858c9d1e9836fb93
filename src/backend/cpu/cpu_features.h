// Runtime CPU feature detection for kernel dispatch. Kernels compiled with AVX-512 flags live in
// *_avx512.cc files and are only called when the running CPU has the features.
#pragma once

namespace kiln::backend::cpu {

/// The instruction-set levels kiln's CPU kernels are written for.
enum class Isa { kScalar, kAvx512 };

/// Features of the running CPU, detected once.
struct CpuFeatures {
  bool avx512 = false;       ///< F + BW + VL + DQ + FMA
  bool avx512_bf16 = false;  ///< AVX512_BF16 (vdpbf16ps, vcvtneps2bf16)
  bool avx512_vnni = false;
};

/// Detected features (thread-safe, computed on first use).
const CpuFeatures& cpu_features();

/// The ISA the kernels use: the best the CPU has, unless KILN_CPU_ISA=scalar forces the
/// portable kernels (used by tests to check both paths agree).
Isa active_isa();

}  // namespace kiln::backend::cpu
