// flash.cuh: flash-style attention forward and backward over the packed batch (lora/attention.go's
// layout: segment rows r0..r0+m attend to the shared prompt's rows 0..p and causally to
// themselves), for the bf16 mode and head_dim 64 or 128. Scores never leave shared memory: the
// forward keeps a running max and sum per query row (online softmax) and writes O and the
// log-sum-exp; the backward rebuilds P from the log-sum-exp one 64x64 tile at a time.
//
// Tensor-core products go through the WMMA API (16x16x16 bf16 tiles, fp32 accumulation) with
// every tile staged in shared memory, so that the element-wise work (masking, softmax, rescaling)
// is plain indexed loops: simpler to get right than register-level mma.sync layouts, and checked
// on the CPU by emu/flash_emu_test.cc, which compiles this very file against emu/cuda_emu.h.
//
// Roundings match the materialized path (attention.cu): q, k, v, dO and P, dS are bf16 operands,
// scores, softmax statistics, O and every gradient are fp32. dQ (across key tiles) and dK, dV
// (across query heads of a kv group, and for the prompt's keys across segments) are accumulated
// with fp32 atomics into the zeroed fp32 gradient buffers.
#pragma once

#ifndef VZ_EMU
#include <cuda_bf16.h>
#include <mma.h>
#define VZ_DYN_SMEM(p)                                                                             \
  extern __shared__ __align__(128) unsigned char vz_dyn_smem_[];                                  \
  unsigned char *p = vz_dyn_smem_
#endif

namespace flash {

using bf16 = __nv_bfloat16;
namespace wm = nvcuda::wmma;

constexpr int kTile = 64;          // query rows and keys per tile
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;

constexpr size_t align128(size_t b) { return (b + 127) & ~(size_t)127; }

// Shared-memory layout of one block: tiles padded by 16 bytes per row against bank conflicts
// (WMMA wants 32-byte aligned tile starts and a leading dimension of whole 16-byte units).
template <int HD>
struct Smem {
  static_assert(HD == 64 || HD == 128, "flash attention: head_dim 64 or 128");
  static constexpr int LDB = HD + 8;      // bf16 [64][LDB]: q, k, v, dO tiles
  static constexpr int LDS = kTile + 4;   // fp32 [64][LDS]: scores S, dP
  static constexpr int LDP = kTile + 8;   // bf16 [64][LDP]: P, dS as GEMM operands
  static constexpr int LDO = HD + 4;      // fp32 [64][LDO]: O, dQ, dK, dV tiles
  static constexpr size_t B = align128(kTile * LDB * 2), S = align128(kTile * LDS * 4),
                          P = align128(kTile * LDP * 2), O = align128(kTile * LDO * 4), R = kTile * 4;
  static constexpr size_t fwd = 3 * B + S + P + O + 2 * R;  // Q K V | S | P | O | row max, row sum
  static constexpr size_t bwd = 4 * B + 2 * S + 2 * P + 2 * R;  // K V Q dO | S dP | P dS | lse, D
  static_assert(O <= 2 * S, "dQ tile aliases S and dP");
  static_assert(2 * O <= bwd, "dK and dV are staged over the whole block's memory");
};

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// load_tile copies rows [0, rows) of a head's columns (src: row 0 of the tile, rows ld apart)
// into dst [64][LDB] in 16-byte pieces; rows past `rows` become zero.
template <int HD>
__device__ __forceinline__ void load_tile(bf16 *dst, const bf16 *src, size_t ld, int rows) {
  constexpr int C8 = HD / 8;
  for (int idx = threadIdx.x; idx < kTile * C8; idx += kThreads) {
    int r = idx / C8, c = idx % C8 * 8;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (r < rows) val = *reinterpret_cast<const uint4 *>(src + r * ld + c);
    *reinterpret_cast<uint4 *>(dst + r * Smem<HD>::LDB + c) = val;
  }
}

using FragA = wm::fragment<wm::matrix_a, 16, 16, 16, bf16, wm::row_major>;
using FragAT = wm::fragment<wm::matrix_a, 16, 16, 16, bf16, wm::col_major>;
using FragB = wm::fragment<wm::matrix_b, 16, 16, 16, bf16, wm::row_major>;
using FragBT = wm::fragment<wm::matrix_b, 16, 16, 16, bf16, wm::col_major>;
using FragC = wm::fragment<wm::accumulator, 16, 16, 16, float>;

// tile_abt: the 16x16 tile (rb, ct) of A B^T for A, B [64][ld] bf16 with HD columns (B^T through
// a column-major load of B's rows).
template <int HD>
__device__ __forceinline__ void tile_abt(FragC &acc, const bf16 *A, const bf16 *B, int rb, int ct) {
  constexpr int ld = Smem<HD>::LDB;
  wm::fill_fragment(acc, 0.f);
  for (int kk = 0; kk < HD / 16; kk++) {
    FragA a;
    FragBT b;
    wm::load_matrix_sync(a, A + rb * 16 * ld + kk * 16, ld);
    wm::load_matrix_sync(b, B + ct * 16 * ld + kk * 16, ld);
    wm::mma_sync(acc, a, b, acc);
  }
}

// score_tile writes the 16x16 tile (rb, ct) of A B^T into dst [64][LDS] fp32 (S or dP).
template <int HD>
__device__ __forceinline__ void score_tile(float *dst, const bf16 *A, const bf16 *B, int rb, int ct) {
  FragC acc;
  tile_abt<HD>(acc, A, B, rb, ct);
  wm::store_matrix_sync(dst + rb * 16 * Smem<HD>::LDS + ct * 16, acc, Smem<HD>::LDS, wm::mem_row_major);
}

// tile_ab adds the 16x16 tile (rb, dt) of A B to acc, for A [64][LDP] bf16 (P or dS: 64 rows of
// 64 keys) and B [64][LDB] (64 keys' rows of V or K).
template <int HD>
__device__ __forceinline__ void tile_ab(FragC &acc, const bf16 *A, const bf16 *B, int rb, int dt) {
  for (int kk = 0; kk < kTile / 16; kk++) {
    FragA a;
    FragB b;
    wm::load_matrix_sync(a, A + rb * 16 * Smem<HD>::LDP + kk * 16, Smem<HD>::LDP);
    wm::load_matrix_sync(b, B + kk * 16 * Smem<HD>::LDB + dt * 16, Smem<HD>::LDB);
    wm::mma_sync(acc, a, b, acc);
  }
}

// visible says whether query row i (local to its segment) sees key c of a tile: keys of the
// prompt (causal == false) are all visible, the segment's own keys j0 + c up to the query itself.
__device__ __forceinline__ bool visible(int r, int rows, int c, int keys, bool causal, int j0, int i) {
  return r < rows && c < keys && (!causal || j0 + c <= i);
}

// flash_fwd: grid (ceil(m/64), n_head), kThreads threads, Smem<HD>::fwd bytes. Block (x, h) writes
// o and lse of the segment's query rows 64x..64x+63 for query head h, which reads kv head h/G.
// q and o are [n][ldq] (head h at column h*HD), k and v [n][ldkv], lse [n_head][n].
template <int HD>
__global__ void __launch_bounds__(kThreads)
    flash_fwd(const bf16 *q, const bf16 *k, const bf16 *v, float *o, float *lse, int n, int ldq, int ldkv, int G,
              int r0, int m, int p, float scale) {
  using L = Smem<HD>;
  VZ_DYN_SMEM(smem);
  bf16 *Qs = (bf16 *)smem, *Ks = (bf16 *)(smem + L::B), *Vs = (bf16 *)(smem + 2 * L::B);
  float *Ss = (float *)(smem + 3 * L::B);
  bf16 *Ps = (bf16 *)(smem + 3 * L::B + L::S);
  float *Os = (float *)(smem + 3 * L::B + L::S + L::P);
  float *rowm = (float *)(smem + 3 * L::B + L::S + L::P + L::O), *rowl = rowm + kTile;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int h = blockIdx.y, hk = h / G, i0 = blockIdx.x * kTile;
  const int rows = min(kTile, m - i0);
  load_tile<HD>(Qs, q + (size_t)(r0 + i0) * ldq + (size_t)h * HD, ldq, rows);
  for (int idx = tid; idx < kTile * L::LDO; idx += kThreads) Os[idx] = 0.f;
  if (tid < kTile) rowm[tid] = -INFINITY, rowl[tid] = 0.f;
  // Key tiles: the prompt's [0, p), then the segment's own keys [0, i0 + rows).
  const int npre = (p + kTile - 1) / kTile, own_end = i0 + rows;
  const int ntiles = npre + (own_end + kTile - 1) / kTile;
  for (int t = 0; t < ntiles; t++) {
    const bool causal = t >= npre;
    const int j0 = (causal ? t - npre : t) * kTile;
    const int keys = min(kTile, (causal ? own_end : p) - j0);
    const size_t krow = causal ? (size_t)r0 + j0 : (size_t)j0;
    __syncthreads();  // the previous tile's K, V, P are no longer read
    load_tile<HD>(Ks, k + krow * ldkv + (size_t)hk * HD, ldkv, keys);
    load_tile<HD>(Vs, v + krow * ldkv + (size_t)hk * HD, ldkv, keys);
    __syncthreads();
    // S = Q K^T: warp w computes row block w/2, column blocks 2(w%2) and 2(w%2)+1.
    for (int cc = 0; cc < 2; cc++) score_tile<HD>(Ss, Qs, Ks, warp / 2, 2 * (warp % 2) + cc);
    __syncthreads();
    // Online softmax: warp w owns rows 8w..8w+7, lane l the columns 2l and 2l+1.
    for (int rr = 0; rr < kTile / kWarps; rr++) {
      const int r = warp * (kTile / kWarps) + rr;
      float s[2], pr[2];
      for (int u = 0; u < 2; u++) {
        int c = 2 * lane + u;
        s[u] = visible(r, rows, c, keys, causal, j0, i0 + r) ? Ss[r * L::LDS + c] * scale : -INFINITY;
      }
      const float mold = rowm[r], mnew = fmaxf(mold, warp_max(fmaxf(s[0], s[1])));
      float alpha = 1.f;
      pr[0] = pr[1] = 0.f;
      if (mnew != -INFINITY) {  // a row with no visible key yet keeps m = -inf, l = 0
        alpha = expf(mold - mnew);
        pr[0] = expf(s[0] - mnew), pr[1] = expf(s[1] - mnew);
      }
      const float sum = warp_sum(pr[0] + pr[1]);
      Ps[r * L::LDP + 2 * lane] = __float2bfloat16(pr[0]);
      Ps[r * L::LDP + 2 * lane + 1] = __float2bfloat16(pr[1]);
      for (int d = lane; d < HD; d += 32) Os[r * L::LDO + d] *= alpha;
      __syncwarp();  // every lane has read rowm[r] and rowl[r]
      if (lane == 0) rowm[r] = mnew, rowl[r] = rowl[r] * alpha + sum;
    }
    __syncthreads();
    // O += P V: warp w updates row block w/2, column blocks (w%2)*HD/32 ... +HD/32-1.
    for (int dd = 0; dd < HD / 32; dd++) {
      int rb = warp / 2, dt = (warp % 2) * (HD / 32) + dd;
      FragC acc;
      wm::load_matrix_sync(acc, Os + rb * 16 * L::LDO + dt * 16, L::LDO, wm::mem_row_major);
      tile_ab<HD>(acc, Ps, Vs, rb, dt);
      wm::store_matrix_sync(Os + rb * 16 * L::LDO + dt * 16, acc, L::LDO, wm::mem_row_major);
    }
  }
  __syncthreads();
  for (int idx = tid; idx < rows * HD; idx += kThreads) {
    int r = idx / HD, d = idx % HD;
    o[(size_t)(r0 + i0 + r) * ldq + (size_t)h * HD + d] = Os[r * L::LDO + d] / rowl[r];
  }
  if (tid < rows) lse[(size_t)h * n + r0 + i0 + tid] = rowm[tid] + logf(rowl[tid]);
}

// flash_bwd: grid (ceil(p/64) + ceil(m/64), n_head), kThreads threads, Smem<HD>::bwd bytes. Block
// (x, h) owns one tile of keys (the prompt's tiles first, then the segment's own) and query head
// h: it walks the query tiles that see those keys, rebuilding P = exp(scale q k^T - lse) and
// dS = P (dO v^T - D), accumulates dV += P^T dO and dK += dS^T q in registers, and adds
// dQ = scale dS k into dq per query tile; at the end it adds dK (times scale) and dV into dk, dv.
// D [n_head][n] is rowsum(dO * O) (attn_rowdot).
template <int HD>
__global__ void __launch_bounds__(kThreads)
    flash_bwd(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *dO, const float *lse, const float *D,
              float *dq, float *dk, float *dv, int n, int ldq, int ldkv, int G, int r0, int m, int p, float scale) {
  using L = Smem<HD>;
  constexpr int DT = HD / 32;  // 16-column blocks of HD per warp
  VZ_DYN_SMEM(smem);
  bf16 *Ks = (bf16 *)smem, *Vs = (bf16 *)(smem + L::B), *Qs = (bf16 *)(smem + 2 * L::B),
       *dOs = (bf16 *)(smem + 3 * L::B);
  float *Ss = (float *)(smem + 4 * L::B), *dPs = (float *)(smem + 4 * L::B + L::S);
  float *dQs = Ss;  // S and dP are dead once P and dS are formed
  bf16 *Ps = (bf16 *)(smem + 4 * L::B + 2 * L::S), *dSs = (bf16 *)(smem + 4 * L::B + 2 * L::S + L::P);
  float *lse_s = (float *)(smem + 4 * L::B + 2 * L::S + 2 * L::P), *D_s = lse_s + kTile;
  const int tid = threadIdx.x, warp = tid / 32;
  const int h = blockIdx.y, hk = h / G;
  const int npre = (p + kTile - 1) / kTile;
  const bool causal = (int)blockIdx.x >= npre;
  const int j0 = (causal ? (int)blockIdx.x - npre : (int)blockIdx.x) * kTile;
  const int keys = min(kTile, (causal ? m : p) - j0);
  const size_t krow = causal ? (size_t)r0 + j0 : (size_t)j0;
  load_tile<HD>(Ks, k + krow * ldkv + (size_t)hk * HD, ldkv, keys);
  load_tile<HD>(Vs, v + krow * ldkv + (size_t)hk * HD, ldkv, keys);
  // Warp w accumulates key rows 16(w/2).. and column blocks (w%2)*DT .. of dK and dV.
  const int kb = warp / 2;
  FragC dKf[DT], dVf[DT];
  for (int dd = 0; dd < DT; dd++) wm::fill_fragment(dKf[dd], 0.f), wm::fill_fragment(dVf[dd], 0.f);
  for (int i0 = causal ? j0 : 0; i0 < m; i0 += kTile) {
    const int rows = min(kTile, m - i0);
    __syncthreads();  // the previous query tile's Q, dO, P, dS and dQ are no longer read
    load_tile<HD>(Qs, q + (size_t)(r0 + i0) * ldq + (size_t)h * HD, ldq, rows);
    load_tile<HD>(dOs, dO + (size_t)(r0 + i0) * ldq + (size_t)h * HD, ldq, rows);
    if (tid < kTile) {
      bool ok = tid < rows;
      lse_s[tid] = ok ? lse[(size_t)h * n + r0 + i0 + tid] : 0.f;
      D_s[tid] = ok ? D[(size_t)h * n + r0 + i0 + tid] : 0.f;
    }
    __syncthreads();
    // S = Q K^T and dP = dO V^T: warp w, row block w/2, column blocks 2(w%2) and 2(w%2)+1.
    for (int cc = 0; cc < 2; cc++) {
      score_tile<HD>(Ss, Qs, Ks, warp / 2, 2 * (warp % 2) + cc);
      score_tile<HD>(dPs, dOs, Vs, warp / 2, 2 * (warp % 2) + cc);
    }
    __syncthreads();
    for (int idx = tid; idx < kTile * kTile; idx += kThreads) {
      int r = idx / kTile, c = idx % kTile;
      float P = visible(r, rows, c, keys, causal, j0, i0 + r) ? expf(Ss[r * L::LDS + c] * scale - lse_s[r]) : 0.f;
      Ps[r * L::LDP + c] = __float2bfloat16(P);
      dSs[r * L::LDP + c] = __float2bfloat16(P * (dPs[r * L::LDS + c] - D_s[r]));
    }
    __syncthreads();
    // dV += P^T dO and dK += dS^T Q (P^T, dS^T through column-major loads).
    for (int dd = 0; dd < DT; dd++) {
      int dt = (warp % 2) * DT + dd;
      for (int kk = 0; kk < kTile / 16; kk++) {
        FragAT a;
        FragB b;
        wm::load_matrix_sync(a, Ps + kk * 16 * L::LDP + kb * 16, L::LDP);
        wm::load_matrix_sync(b, dOs + kk * 16 * L::LDB + dt * 16, L::LDB);
        wm::mma_sync(dVf[dd], a, b, dVf[dd]);
        wm::load_matrix_sync(a, dSs + kk * 16 * L::LDP + kb * 16, L::LDP);
        wm::load_matrix_sync(b, Qs + kk * 16 * L::LDB + dt * 16, L::LDB);
        wm::mma_sync(dKf[dd], a, b, dKf[dd]);
      }
    }
    // dQ tile = dS K: warp w, row block w/2, column blocks (w%2)*DT ...
    for (int dd = 0; dd < DT; dd++) {
      int rb = warp / 2, dt = (warp % 2) * DT + dd;
      FragC acc;
      wm::fill_fragment(acc, 0.f);
      tile_ab<HD>(acc, dSs, Ks, rb, dt);
      wm::store_matrix_sync(dQs + rb * 16 * L::LDO + dt * 16, acc, L::LDO, wm::mem_row_major);
    }
    __syncthreads();
    for (int idx = tid; idx < rows * HD; idx += kThreads) {
      int r = idx / HD, d = idx % HD;
      atomicAdd(dq + (size_t)(r0 + i0 + r) * ldq + (size_t)h * HD + d, scale * dQs[r * L::LDO + d]);
    }
  }
  __syncthreads();  // every tile is dead: stage dV and dK over the block's memory
  float *dVs = (float *)smem, *dKs = (float *)(smem + L::O);
  for (int dd = 0; dd < DT; dd++) {
    int dt = (warp % 2) * DT + dd;
    wm::store_matrix_sync(dVs + kb * 16 * L::LDO + dt * 16, dVf[dd], L::LDO, wm::mem_row_major);
    wm::store_matrix_sync(dKs + kb * 16 * L::LDO + dt * 16, dKf[dd], L::LDO, wm::mem_row_major);
  }
  __syncthreads();
  for (int idx = tid; idx < keys * HD; idx += kThreads) {
    int c = idx / HD, d = idx % HD;
    size_t off = (krow + c) * ldkv + (size_t)hk * HD + d;
    atomicAdd(dv + off, dVs[c * L::LDO + d]);
    atomicAdd(dk + off, scale * dKs[c * L::LDO + d]);
  }
}

}  // namespace flash
