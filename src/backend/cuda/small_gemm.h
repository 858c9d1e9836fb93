// Linear layers for small batches (at most 128 token rows), where cuBLASLt's kernels leave most
// of the GPU idle: a 128-row tile covers all rows, so a layer has only out / 64 tiles (12 for
// BERT-base's 768 outputs) for 132 SMs. Here the K dimension of each tile is split across a
// thread-block cluster (up to 8 CTAs on Hopper): every CTA streams its share of the weights
// through a cp.async pipeline into mma.sync tensor-core math, the partial tiles are summed over
// distributed shared memory, and bias and activation are applied once, in the same kernel. No
// workspace, no second kernel, so it is captured into CUDA graphs like any other launch.
// Status: correct (cuda_ops_test) but slower than cuBLASLt inside the batch-1 graph (BERT-base
// 0.70 against 0.51 ms on the H100: 10-15 us per GEMM against 6-9), so the encoder uses it only
// with KILN_CUDA_SMALL_GEMM=1. Each CTA re-reads the activation slice of its K range (twice the
// bytes of its weights at 64 output columns) with at most three 12 KB stages in flight; wider
// tiles, a deeper pipeline and a TMA multicast of the activations across the cluster are next.
#pragma once

#include <cuda_runtime.h>

#include "backend/cuda/gemm.h"
#include "kiln/status.h"

namespace kiln::backend::cuda {

/// The most token rows the small-batch kernel takes.
inline constexpr int64_t kSmallGemmMaxRows = 128;

/// Whether small_gemm() takes `shape`: 1..128 rows, out a multiple of 64, in of 32.
bool small_gemm_fits(const GemmShape& shape);

/// How many CTAs of a cluster share the K dimension of one output tile for `shape`.
int small_gemm_split(const GemmShape& shape);

/// Enqueues Y = X W^T (+ bias)(activation) on `stream`, as GemmRunner::run; `shape` must fit.
Status small_gemm(const GemmShape& shape, const void* x, const void* w, const void* bias, void* y,
                  cudaStream_t stream);

}  // namespace kiln::backend::cuda
