// Dense symmetric linear algebra in double precision for post-training optimization (SparseGPT
// needs the Cholesky factor of an inverse Hessian up to 3072 x 3072). Plain blocked loops,
// parallel with OpenMP: no BLAS/LAPACK dependency.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/status.h"

namespace kiln::quant::linalg {

/// In-place Cholesky factorization A = L L^T of an n x n symmetric positive definite matrix
/// (row-major; only the lower triangle is read). On success the lower triangle holds L and the
/// strict upper triangle is zero; false when A is not (numerically) positive definite.
bool cholesky_lower(double* a, int64_t n);

/// Solves L L^T x = b for x in place (b [n]), given the factor from cholesky_lower().
void cholesky_solve(const double* l, int64_t n, double* b);

/// The inverse of an n x n lower-triangular matrix L with nonzero diagonal, written to `out`
/// (lower triangular, strict upper triangle zero).
void invert_lower(const double* l, int64_t n, double* out);

/// The upper-triangular U with U^T U = A^-1 for a symmetric positive definite A (row-major,
/// replaced by U): torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(A)),
/// upper=True), computed as J chol(J A J)^-1 J (J reverses the index order), i.e. one Cholesky
/// and one triangular inverse. FailedPrecondition when A is not positive definite.
Status inverse_cholesky_upper(std::vector<double>* a, int64_t n);

}  // namespace kiln::quant::linalg
