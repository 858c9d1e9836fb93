// The inner loops of quant/'s double-precision linear algebra. Compiled once per x86-64 level
// (AVX-512, AVX2+FMA, baseline) and chosen at load time by the dynamic linker (GCC/Clang
// target_clones), so they use wide vectors without the whole library needing them.
#pragma once

#include <cstdint>

namespace kiln::quant::simd {

/// sum_k a[k] * b[k].
double dot(const double* a, const double* b, int64_t n);
/// out[r] = sum_k a[r][k] * b[k] for four rows a[0..4): b is loaded once for all four.
void dot4(const double* const a[4], const double* b, int64_t n, double out[4]);
/// y[k] += c * x[k].
void axpy(double* y, double c, const double* x, int64_t n);
/// y[k] += sum_r c[r] * x[r][k]: y is loaded and stored once for four products.
void axpy4(double* y, const double c[4], const double* const x[4], int64_t n);

}  // namespace kiln::quant::simd
