#include "quant/simd_kernels.h"

// `omp simd` lets the compiler reassociate the reductions; target_clones compiles each kernel
// for three ISA levels behind one ifunc symbol.
#if defined(__x86_64__) && defined(__linux__) && !defined(KILN_NO_TARGET_CLONES)
#define KILN_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define KILN_MULTIVERSION
#endif

// `omp simd` is a hint: clang (the fuzz build) reports every clone it leaves scalar as a
// warning, which says nothing about the code's correctness.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

namespace kiln::quant::simd {

KILN_MULTIVERSION double dot(const double* a, const double* b, int64_t n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t k = 0; k < n; ++k) s += a[k] * b[k];
  return s;
}

KILN_MULTIVERSION void dot4(const double* const a[4], const double* b, int64_t n, double out[4]) {
  const double *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3];
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t k = 0; k < n; ++k) {
    const double bk = b[k];
    s0 += a0[k] * bk;
    s1 += a1[k] * bk;
    s2 += a2[k] * bk;
    s3 += a3[k] * bk;
  }
  out[0] = s0;
  out[1] = s1;
  out[2] = s2;
  out[3] = s3;
}

KILN_MULTIVERSION void axpy(double* __restrict y, double c, const double* __restrict x, int64_t n) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) y[k] += c * x[k];
}

KILN_MULTIVERSION void axpy4(double* __restrict y, const double c[4], const double* const x[4],
                             int64_t n) {
  const double *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3];
  const double c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) y[k] += c0 * x0[k] + c1 * x1[k] + c2 * x2[k] + c3 * x3[k];
}

}  // namespace kiln::quant::simd
