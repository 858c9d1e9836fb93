#include "quant/linalg.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "quant/simd_kernels.h"

namespace kiln::quant::linalg {

namespace {

// Rows per block: the block's rows stay in L2 while every earlier row streams past them once.
constexpr int64_t kBlock = 32;  // a multiple of 4 (invert_lower)

// [begin, end) of the rows of [i0, i1) that OpenMP thread `t` of `nt` owns.
void thread_rows(int64_t i0, int64_t i1, int t, int nt, int64_t* begin, int64_t* end) {
  const int64_t rows = i1 - i0, per = (rows + nt - 1) / nt;
  *begin = std::min(i1, i0 + t * per);
  *end = std::min(i1, *begin + per);
}

}  // namespace

bool cholesky_lower(double* a, int64_t n) {
  bool ok = true;
  for (int64_t i0 = 0; i0 < n && ok; i0 += kBlock) {
    const int64_t i1 = std::min(n, i0 + kBlock);
    // The block's rows against every finished row j < i0: independent per row. Row j is the
    // outer loop so that it is read once per thread, not once per row.
#pragma omp parallel
    {
      int64_t b, e;
      thread_rows(i0, i1, omp_get_thread_num(), omp_get_num_threads(), &b, &e);
      for (int64_t j = 0; j < i0; ++j) {
        const double* lj = a + j * n;
        int64_t i = b;
        for (; i + 4 <= e; i += 4) {  // four rows share each load of row j
          const double* rows[4] = {a + i * n, a + (i + 1) * n, a + (i + 2) * n, a + (i + 3) * n};
          double s[4];
          simd::dot4(rows, lj, j, s);
          for (int r = 0; r < 4; ++r) a[(i + r) * n + j] = (a[(i + r) * n + j] - s[r]) / lj[j];
        }
        for (; i < e; ++i) {
          double* li = a + i * n;
          li[j] = (li[j] - simd::dot(li, lj, j)) / lj[j];
        }
      }
    }
    for (int64_t i = i0; i < i1 && ok; ++i) {
      double* li = a + i * n;
      for (int64_t j = i0; j < i; ++j) {
        const double* lj = a + j * n;
        li[j] = (li[j] - simd::dot(li, lj, j)) / lj[j];
      }
      const double d = li[i] - simd::dot(li, li, i);
      if (!(d > 0) || !std::isfinite(d)) ok = false;
      li[i] = std::sqrt(d);
    }
  }
  if (!ok) return false;
  for (int64_t i = 0; i < n; ++i) std::fill(a + i * n + i + 1, a + (i + 1) * n, 0.0);
  return true;
}

void cholesky_solve(const double* l, int64_t n, double* b) {
  for (int64_t i = 0; i < n; ++i) b[i] = (b[i] - simd::dot(l + i * n, b, i)) / l[i * n + i];
  for (int64_t i = n - 1; i >= 0; --i) {
    double s = b[i];
    for (int64_t k = i + 1; k < n; ++k) s -= l[k * n + i] * b[k];
    b[i] = s / l[i * n + i];
  }
}

void invert_lower(const double* l, int64_t n, double* out) {
  std::fill(out, out + n * n, 0.0);
  // Row i of M = L^-1: M[i][0..i) = -(sum_{k<i} L[i][k] M[k][0..k]) / L[i][i], M[i][i] = 1/L[i][i].
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t i1 = std::min(n, i0 + kBlock);
#pragma omp parallel
    {
      int64_t b, e;
      thread_rows(i0, i1, omp_get_thread_num(), omp_get_num_threads(), &b, &e);
      // Four rows of M per sweep (i0 is a multiple of 4): rows k..k+3 are zero past their
      // diagonal, so all four can run to k + 4.
      for (int64_t k = 0; k < i0; k += 4) {
        const double* mk[4] = {out + k * n, out + (k + 1) * n, out + (k + 2) * n,
                               out + (k + 3) * n};
        for (int64_t i = b; i < e; ++i) {
          const double* li = l + i * n + k;
          if (li[0] != 0 || li[1] != 0 || li[2] != 0 || li[3] != 0) {
            simd::axpy4(out + i * n, li, mk, k + 4);
          }
        }
      }
    }
    for (int64_t i = i0; i < i1; ++i) {
      double* mi = out + i * n;
      for (int64_t k = i0; k < i; ++k) {
        const double c = l[i * n + k];
        if (c != 0) simd::axpy(mi, c, out + k * n, k + 1);
      }
      const double inv = 1.0 / l[i * n + i];
      for (int64_t j = 0; j < i; ++j) mi[j] *= -inv;
      mi[i] = inv;
    }
  }
}

Status inverse_cholesky_upper(std::vector<double>* a, int64_t n) {
  if (static_cast<int64_t>(a->size()) != n * n) {
    return invalid_argument("inverse_cholesky_upper: matrix size does not match n");
  }
  // J A J is A with its flat storage reversed: element (i, j) moves to (n-1-i, n-1-j).
  std::vector<double> l(a->rbegin(), a->rend());
  if (!cholesky_lower(l.data(), n)) {
    return failed_precondition("inverse_cholesky_upper: matrix is not positive definite");
  }
  invert_lower(l.data(), n, a->data());
  // A = (J L J)(J L J)^T with J L J upper, so A^-1 = V^T V with V = (J L J)^-1 = J L^-1 J.
  std::reverse(a->begin(), a->end());
  return ok_status();
}

}  // namespace kiln::quant::linalg
