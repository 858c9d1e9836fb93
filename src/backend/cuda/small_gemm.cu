// The small-batch linear layer (see small_gemm.h). One cluster of `split` CTAs computes one
// 128 x 64 output tile; CTA r of the cluster takes the r-th slice of K. A CTA of 8 warps (4 over
// rows x 2 over columns, 32 x 32 each) runs a 4-stage cp.async pipeline of 32-wide K steps (A
// rows past `rows` are zero-filled, never read), then writes its float partial tile to shared
// memory; after a cluster barrier each CTA sums 1/split of the tile's rows over every CTA's
// shared memory (DSMEM), adds the bias, applies the activation and stores 16-bit outputs.
#include <cooperative_groups.h>

#include <algorithm>
#include <string>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/mma_util.cuh"
#include "backend/cuda/small_gemm.h"

namespace kiln::backend::cuda {

namespace cg = cooperative_groups;

namespace {

constexpr int kBM = 128;  // rows per tile: every row of a small batch
constexpr int kBN = 64;   // output columns per tile
constexpr int kBK = 32;   // K per pipeline step
constexpr int kStages = 4;
constexpr int kThreads = 256;
constexpr int kLd = kBK + 8;     // shared row pitch in elements: ldmatrix without bank conflicts
constexpr int kRedLd = kBN + 4;  // float pitch of the partial tile
constexpr int kMaxSplit = 8;     // portable cluster size
constexpr int kStageElems = (kBM + kBN) * kLd;
constexpr size_t kSmemBytes =
    std::max(sizeof(__half) * kStages * kStageElems, sizeof(float) * kBM * kRedLd);

template <Epilogue E>
__device__ __forceinline__ float activate(float v) {
  if constexpr (E == Epilogue::kGeluTanhBias) {
    const float u = 0.7978845608028654f * (v + 0.044715f * v * v * v);
    return 0.5f * v * (1.0f + tanhf(u));
  } else if constexpr (E == Epilogue::kReluBias) {
    return fmaxf(v, 0.0f);
  } else {
    return v;
  }
}

template <typename T, Epilogue E>
__global__ void __launch_bounds__(kThreads)
    small_gemm_kernel(const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ bias,
                      T* __restrict__ y, int rows, int n, int k, int k_per_cta) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* stages = reinterpret_cast<T*>(smem_raw);
  cg::cluster_group cluster = cg::this_cluster();
  const int split = static_cast<int>(cluster.num_blocks());
  const int rank = static_cast<int>(cluster.block_rank());
  const int n0 = static_cast<int>(blockIdx.x) / split * kBN;
  const int k0 = rank * k_per_cta;
  const int steps = k_per_cta / kBK;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int wm = warp % 4, wn = warp / 4;  // this warp's 32 x 32 block of the tile
  const bool active = wm * 32 < rows;      // warps wholly past the rows skip the math

  const T* xk = x + k0;
  const T* wk = w + static_cast<int64_t>(n0) * k + k0;
  auto load_stage = [&](int stage, int step) {
    T* as = stages + stage * kStageElems;
    T* bs = as + kBM * kLd;
    const int kk = step * kBK;
#pragma unroll
    for (int i = tid; i < kBM * kBK / 8; i += kThreads) {
      const int r = i / (kBK / 8), c = (i % (kBK / 8)) * 8;
      const bool valid = r < rows;
      cp_async16(as + r * kLd + c, valid ? xk + static_cast<int64_t>(r) * k + kk + c : x, valid);
    }
#pragma unroll
    for (int i = tid; i < kBN * kBK / 8; i += kThreads) {
      const int r = i / (kBK / 8), c = (i % (kBK / 8)) * 8;
      cp_async16(bs + r * kLd + c, wk + static_cast<int64_t>(r) * k + kk + c, true);
    }
  };

  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
  }

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) load_stage(s, s);
    cp_async_commit();
  }
  for (int step = 0; step < steps; ++step) {
    cp_async_wait<kStages - 2>();  // this step's copy has landed
    __syncthreads();               // and every warp is done with the stage reloaded below
    const int next = step + kStages - 1;
    if (next < steps) load_stage(next % kStages, next);
    cp_async_commit();
    if (!active) continue;
    const T* as = stages + (step % kStages) * kStageElems;
    const T* bs = as + kBM * kLd;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t a[2][4];
#pragma unroll
      for (int mi = 0; mi < 2; ++mi) {
        ldmatrix_x4(a[mi], as + (wm * 32 + mi * 16 + (lane & 15)) * kLd + kk + (lane >> 4) * 8);
      }
#pragma unroll
      for (int nj = 0; nj < 2; ++nj) {
        uint32_t b[4];
        ldmatrix_x4(b, bs + (wn * 32 + nj * 16 + (lane >> 4) * 8 + (lane & 7)) * kLd + kk +
                           ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
          mma16816<T>(acc[mi][2 * nj], a[mi], b[0], b[1]);
          mma16816<T>(acc[mi][2 * nj + 1], a[mi], b[2], b[3]);
        }
      }
    }
  }
  cp_async_wait<0>();
  __syncthreads();  // the stages become the partial tile

  float* red = reinterpret_cast<float*>(smem_raw);
  const int g = lane / 4, t4 = lane % 4;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int r = wm * 32 + mi * 16 + g, c = wn * 32 + j * 8 + 2 * t4;
      *reinterpret_cast<float2*>(red + r * kRedLd + c) = make_float2(acc[mi][j][0], acc[mi][j][1]);
      *reinterpret_cast<float2*>(red + (r + 8) * kRedLd + c) =
          make_float2(acc[mi][j][2], acc[mi][j][3]);
    }
  }
  cluster.sync();  // every partial tile of the cluster is written

  const int slice = kBM / split;  // rows this CTA finishes
  for (int i = tid; i < slice * (kBN / 4); i += kThreads) {
    const int r = rank * slice + i / (kBN / 4), c = (i % (kBN / 4)) * 4;
    if (r >= rows) continue;
    float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    for (int q = 0; q < split; ++q) {
      const float* src = cluster.map_shared_rank(red, q);
      const float4 v = *reinterpret_cast<const float4*>(src + r * kRedLd + c);
      sum.x += v.x, sum.y += v.y, sum.z += v.z, sum.w += v.w;
    }
    float o[4] = {sum.x, sum.y, sum.z, sum.w};
    if constexpr (E != Epilogue::kNone) {
      const uint2 braw = *reinterpret_cast<const uint2*>(bias + n0 + c);
      const auto* b2 = reinterpret_cast<const typename Pack2<T>::type*>(&braw);
      const float2 lo = to_float2(b2[0]), hi = to_float2(b2[1]);
      o[0] = activate<E>(o[0] + lo.x);
      o[1] = activate<E>(o[1] + lo.y);
      o[2] = activate<E>(o[2] + hi.x);
      o[3] = activate<E>(o[3] + hi.y);
    }
    uint2 out;
    out.x = pack2_u32<T>(o[0], o[1]);
    out.y = pack2_u32<T>(o[2], o[3]);
    *reinterpret_cast<uint2*>(y + static_cast<int64_t>(r) * n + n0 + c) = out;
  }
  cluster.sync();  // no CTA leaves while another still reads its shared memory
}

template <typename T, Epilogue E>
Status launch(const GemmShape& s, const void* x, const void* w, const void* bias, void* y,
              cudaStream_t stream) {
  auto* kernel = small_gemm_kernel<T, E>;
  KILN_RETURN_IF_ERROR(opt_in_shared_memory(reinterpret_cast<const void*>(kernel), kSmemBytes));
  const int split = small_gemm_split(s);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(s.out / kBN * split));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = kSmemBytes;
  config.stream = stream;
  cudaLaunchAttribute cluster[1];
  cluster[0].id = cudaLaunchAttributeClusterDimension;
  cluster[0].val.clusterDim.x = static_cast<unsigned>(split);
  cluster[0].val.clusterDim.y = 1;
  cluster[0].val.clusterDim.z = 1;
  config.attrs = cluster;
  config.numAttrs = 1;
  KILN_CUDA_CHECK(cudaLaunchKernelEx(
      &config, kernel, static_cast<const T*>(x), static_cast<const T*>(w),
      static_cast<const T*>(bias), static_cast<T*>(y), static_cast<int>(s.rows),
      static_cast<int>(s.out), static_cast<int>(s.in), static_cast<int>(s.in / split)));
  return last_launch_status("small_gemm_kernel");
}

template <typename T>
Status launch_epilogue(const GemmShape& s, const void* x, const void* w, const void* bias, void* y,
                       cudaStream_t stream) {
  switch (s.epilogue) {
    case Epilogue::kNone:
      return launch<T, Epilogue::kNone>(s, x, w, bias, y, stream);
    case Epilogue::kBias:
      return launch<T, Epilogue::kBias>(s, x, w, bias, y, stream);
    case Epilogue::kGeluTanhBias:
      return launch<T, Epilogue::kGeluTanhBias>(s, x, w, bias, y, stream);
    case Epilogue::kReluBias:
      return launch<T, Epilogue::kReluBias>(s, x, w, bias, y, stream);
  }
  return invalid_argument("cuda small gemm: unknown epilogue");
}

}  // namespace

bool small_gemm_fits(const GemmShape& s) {
  return s.rows > 0 && s.rows <= kSmallGemmMaxRows && s.out > 0 && s.out % kBN == 0 && s.in > 0 &&
         s.in % kBK == 0 && (s.dtype == DType::kF16 || s.dtype == DType::kBF16) && !s.fp8;
}

int small_gemm_split(const GemmShape& s) {
  // Double the split while the grid stays within one CTA per SM (132 on the H100 SXM) and each
  // CTA keeps whole K steps: the weights then stream through most SMs at once.
  const int64_t tiles = s.out / kBN;
  int split = 1;
  while (split < kMaxSplit && tiles * split < 132 && s.in % (2 * split * kBK) == 0) split *= 2;
  return split;
}

Status small_gemm(const GemmShape& s, const void* x, const void* w, const void* bias, void* y,
                  cudaStream_t stream) {
  if (!small_gemm_fits(s)) {
    return invalid_argument("cuda small gemm: shape " + std::to_string(s.rows) + "x" +
                            std::to_string(s.out) + "x" + std::to_string(s.in) +
                            " does not fit (rows <= 128, out % 64, in % 32)");
  }
  if (s.epilogue != Epilogue::kNone && bias == nullptr) {
    return invalid_argument("cuda small gemm: the epilogue needs a bias");
  }
  return dispatch_half(s.dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launch_epilogue<T>(s, x, w, bias, y, stream);
  });
}

}  // namespace kiln::backend::cuda
