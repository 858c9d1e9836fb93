// Flash-style attention on tensor cores for packed ragged batches. A block of 4 warps takes
// 64 * MF queries of one (sequence, head); each warp owns 16 * MF query rows. Key/value tiles of
// 64 rows are copied to shared memory with cp.async (zero-filled past the sequence) into two
// buffers, so the next tile's copy overlaps this tile's math; S = Q K^T and O += P V run on
// mma.sync m16n8k16 with float accumulators, and the softmax is online, in float, in the log2
// domain. Rows are padded by 16 bytes so ldmatrix reads are free of bank conflicts. With MF = 2
// each K or V fragment read from shared memory feeds twice the MMAs, halving the shared-memory
// traffic per FLOP (the limit at MF = 1), at twice the registers and half the blocks: it pays
// on long sequences and large batches (AttentionTiling).
#include <cmath>
#include <tuple>

#include "backend/cuda/attention.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/device_util.cuh"
#include "backend/cuda/mma_util.cuh"

namespace kiln::backend::cuda {

namespace {

constexpr int kBlockM = static_cast<int>(kAttentionQueryBlock);  // queries per block
constexpr int kBlockN = 64;                                      // keys per tile
constexpr int kThreads = 128;
constexpr int kPad = 8;  // elements of padding per shared-memory row

// Copies kRows rows of head_dim D (row `stride` elements apart in global memory) to shared
// memory rows of D + kPad; rows at or past `valid_rows` become zeros.
template <typename T, int D, int kRows>
__device__ __forceinline__ void load_tile(T* smem, const T* src, int64_t stride, int valid_rows) {
  constexpr int kChunks = D / 8;  // 16-byte pieces per row
#pragma unroll
  for (int i = threadIdx.x; i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool valid = r < valid_rows;
    cp_async16(smem + r * (D + kPad) + c, valid ? src + r * stride + c : src, valid);
  }
}

template <typename T, int D, int MF>
__global__ void __launch_bounds__(kThreads)
    attention_mma_kernel(const T* __restrict__ qkv, const int32_t* __restrict__ cu, int hidden,
                         float scale_log2, T* __restrict__ ctx) {
  constexpr int kLd = D + kPad;
  constexpr int kBM = kBlockM * MF;  // queries per block
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* qs = reinterpret_cast<T*>(smem_raw);
  T* kbuf = qs + kBM * kLd;            // two K tiles
  T* vbuf = kbuf + 2 * kBlockN * kLd;  // two V tiles

  const int s = blockIdx.y, h = blockIdx.z;
  const int start = cu[s], len = cu[s + 1] - start;
  const int q0 = blockIdx.x * kBM;
  if (q0 >= len) return;  // the whole block leaves together
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t4 = lane % 4;  // mma fragment row group and column pair
  const int64_t stride = 3 * static_cast<int64_t>(hidden);
  const T* kbase = qkv + start * stride + hidden + h * D;
  const T* vbase = kbase + hidden;

  load_tile<T, D, kBM>(qs, qkv + (start + q0) * stride + h * D, stride, len - q0);
  cp_async_commit();

  uint32_t qf[MF][D / 16][4];
  float o[MF][D / 8][4];
  float row_max[MF][2], row_sum[MF][2];  // row_max in the log2 domain (scaled)
#pragma unroll
  for (int m = 0; m < MF; ++m) {
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o[m][i][0] = o[m][i][1] = o[m][i][2] = o[m][i][3] = 0.0f;
    row_max[m][0] = row_max[m][1] = -INFINITY;
    row_sum[m][0] = row_sum[m][1] = 0.0f;
  }

  const int num_tiles = (len + kBlockN - 1) / kBlockN;
  // Copy groups, oldest first: Q, K0, V0, then K(t+1), V(t+1) issued during tile t.
  load_tile<T, D, kBlockN>(kbuf, kbase, stride, len);
  cp_async_commit();
  load_tile<T, D, kBlockN>(vbuf, vbase, stride, len);
  cp_async_commit();
  for (int tile = 0; tile < num_tiles; ++tile) {
    const int k0 = tile * kBlockN;
    const T* ks = kbuf + (tile & 1) * kBlockN * kLd;
    const T* vs = vbuf + (tile & 1) * kBlockN * kLd;
    cp_async_wait<1>();  // Q and K(t) are in; V(t) may still be landing
    // Also: every warp is done with tile t-1, whose buffers the next copies reuse.
    __syncthreads();
    const bool prefetch = tile + 1 < num_tiles;
    if (prefetch) {
      const int k1 = k0 + kBlockN;
      load_tile<T, D, kBlockN>(kbuf + ((tile + 1) & 1) * kBlockN * kLd, kbase + k1 * stride, stride,
                               len - k1);
      cp_async_commit();
      load_tile<T, D, kBlockN>(vbuf + ((tile + 1) & 1) * kBlockN * kLd, vbase + k1 * stride, stride,
                               len - k1);
      cp_async_commit();
    }
    if (tile == 0) {
#pragma unroll
      for (int m = 0; m < MF; ++m) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) {
          ldmatrix_x4(qf[m][kk],
                      qs + ((warp * MF + m) * 16 + (lane & 15)) * kLd + kk * 16 + (lane >> 4) * 8);
        }
      }
    }

    // S = Q K^T for this warp's rows and the tile's 64 keys.
    float sc[MF][kBlockN / 8][4];
#pragma unroll
    for (int m = 0; m < MF; ++m) {
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j) {
        sc[m][j][0] = sc[m][j][1] = sc[m][j][2] = sc[m][j][3] = 0.0f;
      }
    }
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int nt = 0; nt < kBlockN / 16; ++nt) {
        uint32_t b[4];
        ldmatrix_x4(b, ks + (nt * 16 + (lane >> 4) * 8 + (lane & 7)) * kLd + kk * 16 +
                           ((lane >> 3) & 1) * 8);
#pragma unroll
        for (int m = 0; m < MF; ++m) {
          mma16816<T>(sc[m][2 * nt], qf[m][kk], b[0], b[1]);
          mma16816<T>(sc[m][2 * nt + 1], qf[m][kk], b[2], b[3]);
        }
      }
    }

    // Online softmax; c0, c1 belong to row g, c2, c3 to row g + 8. The scale folds into the
    // exponent's FMA: p = 2^(s * scale_log2 - max).
    const bool ragged = k0 + kBlockN > len;
#pragma unroll
    for (int m = 0; m < MF; ++m) {
      float tile_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          if (ragged && k0 + j * 8 + 2 * t4 + (c & 1) >= len) sc[m][j][c] = -INFINITY;
          tile_max[c / 2] = fmaxf(tile_max[c / 2], sc[m][j][c]);
        }
      }
      float corr[2], neg_max[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
        tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
        // Key k0 < len is always valid, so the new maximum is finite.
        const float m_new = fmaxf(row_max[m][r], tile_max[r] * scale_log2);
        corr[r] = exp2f(row_max[m][r] - m_new);
        row_max[m][r] = m_new;
        row_sum[m][r] *= corr[r];
        neg_max[r] = -m_new;
      }
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j) {
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          const float p = exp2f(fmaf(sc[m][j][c], scale_log2, neg_max[c / 2]));
          sc[m][j][c] = p;
          row_sum[m][c / 2] += p;
        }
      }
#pragma unroll
      for (int i = 0; i < D / 8; ++i) {
        o[m][i][0] *= corr[0];
        o[m][i][1] *= corr[0];
        o[m][i][2] *= corr[1];
        o[m][i][3] *= corr[1];
      }
    }

    // V(t) is in once at most the two prefetch groups are pending.
    if (prefetch) {
      cp_async_wait<2>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    // O += P V: the S accumulators of n-tiles 2kk and 2kk+1 are the A fragment of keys
    // 16kk..16kk+15.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      uint32_t a[MF][4];
#pragma unroll
      for (int m = 0; m < MF; ++m) {
        a[m][0] = pack2_u32<T>(sc[m][2 * kk][0], sc[m][2 * kk][1]);
        a[m][1] = pack2_u32<T>(sc[m][2 * kk][2], sc[m][2 * kk][3]);
        a[m][2] = pack2_u32<T>(sc[m][2 * kk + 1][0], sc[m][2 * kk + 1][1]);
        a[m][3] = pack2_u32<T>(sc[m][2 * kk + 1][2], sc[m][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dt = 0; dt < D / 16; ++dt) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, vs + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * kLd + dt * 16 +
                                 (lane >> 4) * 8);
#pragma unroll
        for (int m = 0; m < MF; ++m) {
          mma16816<T>(o[m][2 * dt], a[m], b[0], b[1]);
          mma16816<T>(o[m][2 * dt + 1], a[m], b[2], b[3]);
        }
      }
    }
  }

  using T2 = typename Pack2<T>::type;
#pragma unroll
  for (int m = 0; m < MF; ++m) {
    float inv[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      row_sum[m][r] += __shfl_xor_sync(0xffffffffu, row_sum[m][r], 1);
      row_sum[m][r] += __shfl_xor_sync(0xffffffffu, row_sum[m][r], 2);
      inv[r] = 1.0f / row_sum[m][r];
    }
    const int row0 = q0 + (warp * MF + m) * 16 + g;
    T* out0 = ctx + (start + row0) * static_cast<int64_t>(hidden) + h * D + 2 * t4;
    T* out1 = out0 + 8 * static_cast<int64_t>(hidden);
#pragma unroll
    for (int i = 0; i < D / 8; ++i) {
      if (row0 < len) {
        *reinterpret_cast<T2*>(out0 + i * 8) = pack2<T>(o[m][i][0] * inv[0], o[m][i][1] * inv[0]);
      }
      if (row0 + 8 < len) {
        *reinterpret_cast<T2*>(out1 + i * 8) = pack2<T>(o[m][i][2] * inv[1], o[m][i][3] * inv[1]);
      }
    }
  }
}

template <typename T, int D, int MF>
Status launch(const void* qkv, const int32_t* cu, int64_t num_sequences, int64_t max_seqlen,
              const AttentionShape& s, void* ctx, cudaStream_t stream) {
  constexpr int kBM = kBlockM * MF;
  constexpr size_t kSmem = (kBM + 4 * kBlockN) * (D + kPad) * sizeof(T);
  KILN_RETURN_IF_ERROR(
      opt_in_shared_memory(reinterpret_cast<const void*>(attention_mma_kernel<T, D, MF>), kSmem));
  const dim3 grid(blocks_for(max_seqlen, kBM), static_cast<unsigned>(num_sequences),
                  static_cast<unsigned>(s.num_heads));
  attention_mma_kernel<T, D, MF><<<grid, kThreads, kSmem, stream>>>(
      static_cast<const T*>(qkv), cu, static_cast<int>(s.num_heads * D),
      s.scale * 1.4426950408889634f, static_cast<T*>(ctx));
  return last_launch_status("attention_mma_kernel");
}

// 32 rows per warp for sequences longer than one 128-query block, when those blocks still give
// every SM several to swap between (at least kMinBlocksPerSm each); at batch 1 the smaller
// blocks spread further. `num_sequences` counts the empty sequences a graph bucket pads with:
// the choice must depend only on what keys the graph. The SM count is the first caller's GPU. H100,
// 2026-11-28: BERT-large b128 x s384 attention 0.454 ms per layer at 32 rows against 0.505 at 16;
// BERT-base b64 x s128 0.0364 against 0.0344 (one query block).
bool rows32_pays(int64_t num_sequences, int64_t max_seqlen, int64_t heads) {
  if (max_seqlen <= 2 * kBlockM) return false;
  constexpr int64_t kMinBlocksPerSm = 4;
  static const int sms = [] {
    int device = 0, n = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
      return 132;  // an H100's
    }
    return n;
  }();
  const int64_t blocks = num_sequences * heads * ((max_seqlen + 2 * kBlockM - 1) / (2 * kBlockM));
  return blocks >= kMinBlocksPerSm * sms;
}

}  // namespace

bool attention_supports(int64_t head_dim) {
  return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
}

Status attention(DType dtype, const void* qkv, const int32_t* cu_seqlens, int64_t num_sequences,
                 int64_t max_seqlen, const AttentionShape& shape, void* ctx, cudaStream_t stream,
                 AttentionTiling tiling) {
  if (!attention_supports(shape.head_dim)) {
    return unimplemented("cuda attention: head_dim " + std::to_string(shape.head_dim) +
                         " (supported: 16, 32, 64, 128)");
  }
  // The kernel takes the row maximum of unscaled scores: a positive scale keeps it the maximum.
  if (!(shape.scale > 0.0f)) return invalid_argument("cuda attention: scale must be positive");
  if (num_sequences == 0 || max_seqlen == 0) return ok_status();
  if (tiling == AttentionTiling::kAuto) {
    tiling = shape.head_dim <= 64 && rows32_pays(num_sequences, max_seqlen, shape.num_heads)
                 ? AttentionTiling::kRows32
                 : AttentionTiling::kRows16;
  }
  // Head dim 128 at 32 rows per warp would not fit the registers.
  const bool rows32 = tiling == AttentionTiling::kRows32 && shape.head_dim <= 64;
  return dispatch_half(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto args =
        std::make_tuple(qkv, cu_seqlens, num_sequences, max_seqlen, shape, ctx, stream);
    switch (shape.head_dim) {
      case 16:
        return std::apply(rows32 ? launch<T, 16, 2> : launch<T, 16, 1>, args);
      case 32:
        return std::apply(rows32 ? launch<T, 32, 2> : launch<T, 32, 1>, args);
      case 64:
        return std::apply(rows32 ? launch<T, 64, 2> : launch<T, 64, 1>, args);
      default:
        return std::apply(launch<T, 128, 1>, args);
    }
  });
}

}  // namespace kiln::backend::cuda
