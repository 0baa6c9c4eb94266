// flash.cuh: flash-style attention forward and backward over the packed batch (lora/attention.go's
// layout: segment rows r0..r0+m attend to the shared prompt's rows 0..p and causally to
// themselves), for the bf16 mode and head_dim 64 or 128. Scores never leave the chip: the forward
// keeps a running max and sum per query row (online softmax) and writes O and the log-sum-exp;
// the backward rebuilds P from the log-sum-exp one tile at a time (FlashAttention-2's scheme).
//
// The products are register-level tensor-core instructions (mma.cuh: ldmatrix, mma.sync
// m16n8k16): each warp owns 16 query rows, and in the forward the scores, the probabilities and
// the output accumulator stay in registers (the scores' accumulator layout is the next product's
// A-operand layout, so P never touches shared memory). The backward stages P and dS (bf16, one
// 64x64 tile) in shared memory for the transposed products dV += P^T dO and dK += dS^T Q. Tiles
// of K, V (forward) and Q, dO (backward) arrive by cp.async, the next tile while this one is used.
// Shared-memory tiles are unpadded with their 16-byte chunks XOR-swizzled by row (sw below), so
// that the backward's double-buffered Q and dO still leave room for two blocks per SM at
// head_dim 128.
// Checked on the CPU by emu/flash_emu_test.cc, which compiles this very file against
// emu/cuda_emu.h (its ldmatrix and mma follow the PTX register layouts lane by lane).
//
// Roundings match the materialized path (attention.cu): q, k, v, dO and P, dS are bf16 operands,
// scores, softmax statistics, O and every gradient are fp32. dQ (across key tiles) and dK, dV
// (across query heads of a kv group, and for the prompt's keys across segments) are accumulated
// with fp32 atomics into the zeroed fp32 gradient buffers.
#pragma once

#ifndef VZ_EMU
#include <cuda_bf16.h>
#define VZ_DYN_SMEM(p)                                                                             \
  extern __shared__ __align__(128) unsigned char vz_dyn_smem_[];                                  \
  unsigned char *p = vz_dyn_smem_
#endif
#include "mma.cuh"

namespace flash {

using bf16 = __nv_bfloat16;
using mma::ldsm_x4;
using mma::ldsm_x4_t;
using mma::mma16816;
using mma::pack_bf16;

constexpr int kThreads = 256;  // backward block: 8 warps
constexpr int kKeys = 64;      // keys per tile (forward) and per backward block
constexpr int kBwdRows = 64;   // query rows per backward step
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

__host__ __device__ constexpr size_t align128(size_t b) { return (b + 127) & ~(size_t)127; }

// Shared-memory tiles are bf16 [rows][COLS] in one of two layouts, so that the eight row
// addresses of an ldmatrix (eight consecutive rows, one 16-byte chunk column) fall in distinct
// bank groups:
//   padded (Swz = false): rows LD = COLS + 8 elements apart (16 bytes of padding);
//   swizzled (Swz = true): no padding, the 16-byte chunk j of row r stored at chunk j ^ (r % 8).
// The swizzled one saves the padding (the backward with its loads ahead needs that to fit two
// blocks per SM at head_dim 128) at the price of address arithmetic that cannot be folded into
// the instructions' immediate offsets (more registers).
template <int COLS, bool Swz>
struct Lay {
  static_assert(!Swz || COLS % 64 == 0, "swizzled tiles need at least 8 chunks per row");
  static constexpr int LD = Swz ? COLS : COLS + 8;
  __host__ __device__ static __forceinline__ int at(int r, int c) {
    if constexpr (Swz) return r * COLS + (((c >> 3) ^ (r & 7)) << 3) + (c & 7);
    return r * LD + c;
  }
};

template <int HD, bool Swz>
struct Smem {
  static_assert(HD == 64 || HD == 128, "flash attention: head_dim 64 or 128");
  static constexpr size_t T = align128(kKeys * Lay<HD, Swz>::LD * 2);              // q, k, v, dO tiles
  static constexpr size_t P = align128(kBwdRows * Lay<kKeys, Swz>::LD * 2), R = kBwdRows * 4;  // P, dS
  // Forward with W warps: Q (16 rows per warp) | K, V twice (double buffered).
  __host__ __device__ static constexpr size_t fwdQ(int W) { return align128(16 * W * Lay<HD, Swz>::LD * 2); }
  __host__ __device__ static constexpr size_t fwd(int W) { return fwdQ(W) + 4 * T; }
  // Backward: K V | Q dO (twice with the next tile's copy in flight, pf) | P dS | lse, D.
  __host__ __device__ static constexpr size_t bwd(bool pf) { return (pf ? 6 : 4) * T + 2 * P + 2 * R; }
};
// The forward's layout, and the backward's: padded, or swizzled with the loads ahead.
template <int HD>
using FwdSmem = Smem<HD, false>;
template <int HD, bool PF>
constexpr size_t bwd_smem() { return Smem<HD, PF>::bwd(PF); }

// Launch geometry, shared by flash.cu and the CPU test: a forward block of W warps has 16 W
// query rows, a backward block kThreads threads and kKeys keys.
inline dim3 fwd_grid(int m, int n_head, int W) { return dim3((m + 16 * W - 1) / (16 * W), n_head); }
inline dim3 bwd_grid(int m, int p, int n_head) {
  return dim3((p + kKeys - 1) / kKeys + (m + kKeys - 1) / kKeys, n_head);
}

// load_rows starts the copy of rows [0, rows) of a head's HD columns (src: row 0, rows ld apart)
// into the tile dst [R][HD] (layout Swz); rows in [rows, R) become zero.
template <int HD, int R, int NT, bool Swz>
__device__ __forceinline__ void load_rows(bf16 *dst, const bf16 *src, size_t ld, int rows) {
  constexpr int C8 = HD / 8;
  for (int idx = threadIdx.x; idx < R * C8; idx += NT) {
    int r = idx / C8, c = idx % C8 * 8;
    bool ok = r < rows;
    mma::cp_async16(dst + Lay<HD, Swz>::at(r, c), ok ? src + r * ld + c : src, ok);
  }
}

// Fragment addressing for lane `lane` of a warp (mma.cuh's layouts), as element offsets into a
// bf16 tile of layout L (Lay):
// a_off: the A fragment of rows r..r+15 and columns c..c+15 (ldsm_x4).
template <class L>
__device__ __forceinline__ int a_off(int lane, int r, int c) { return L::at(r + lane % 16, c + lane / 16 * 8); }
// bt_off, with ldsm_x4: the B fragments of B = tile^T for k = columns c..c+15 and n = rows
// r..r+15, regs 0, 1 for rows r..r+7 and 2, 3 for r+8..r+15 (S = Q K^T reads K's rows this way).
// With ldsm_x4_t: the A fragment of A = tile^T, rows = tile columns c..c+15, columns = tile rows
// r..r+15 (dV += P^T dO reads P this way).
template <class L>
__device__ __forceinline__ int bt_off(int lane, int r, int c) {
  return L::at(r + lane / 16 * 8 + lane % 8, c + lane / 8 % 2 * 8);
}
// b_off, with ldsm_x4_t: the B fragments for k = rows r..r+15 and n = columns c..c+15 of the
// tile itself, regs 0, 1 for columns c..c+7 and 2, 3 for c+8..c+15 (O += P V reads V this way).
template <class L>
__device__ __forceinline__ int b_off(int lane, int r, int c) {
  return L::at(r + lane / 8 % 2 * 8 + lane % 8, c + lane / 16 * 8);
}

// visible says whether query row i (local to its segment) sees key j0 + c: the prompt's keys
// (causal == false) all, the segment's own keys up to the query itself.
__device__ __forceinline__ bool visible(int r, int rows, int c, int keys, bool causal, int j0, int i) {
  return r < rows && c < keys && (!causal || j0 + c <= i);
}

// flash_fwd: grid fwd_grid(m, n_head, W), 32 W threads, FwdSmem<HD>::fwd(W) bytes. Block (x, h)
// writes o and lse of the segment's query rows 16 W x.. for query head h, which reads kv head
// h/G; warp w owns 16 of those rows. q and o are [n][ldq] (head h at column h*HD), k and v [n][ldkv],
// lse [n_head][n].
template <int HD, int W>
__global__ void __launch_bounds__(32 * W)
    flash_fwd(const bf16 *q, const bf16 *k, const bf16 *v, float *o, float *lse, int n, int ldq, int ldkv, int G,
              int r0, int m, int p, float scale) {
  using L = FwdSmem<HD>;
  using LT = Lay<HD, false>;
  constexpr int KB = HD / 16, DN = HD / 8, NB = kKeys / 8, ROWS = 16 * W, NT = 32 * W;
  constexpr size_t QB = L::fwdQ(W);
  VZ_DYN_SMEM(smem);
  bf16 *Qs = (bf16 *)smem;
  auto Ks = [&](int b) { return (bf16 *)(smem + QB + 2 * b * L::T); };
  auto Vs = [&](int b) { return (bf16 *)(smem + QB + (2 * b + 1) * L::T); };
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  const int h = blockIdx.y, hk = h / G, i0 = blockIdx.x * ROWS;
  const int rows = min(ROWS, m - i0), w0 = warp * 16;  // w0: the warp's first row in the block
  // Key tiles: the prompt's [0, p), then the segment's own keys [0, i0 + rows).
  const int npre = (p + kKeys - 1) / kKeys, own_end = i0 + rows;
  const int ntiles = npre + (own_end + kKeys - 1) / kKeys;
  struct Tile {
    bool causal;  // the segment's own keys (else the prompt's)
    int j0, keys;  // first key (segment-local, or prompt row) and how many
  };
  auto tile = [&](int t) {
    const bool causal = t >= npre;
    const int j0 = (causal ? t - npre : t) * kKeys;
    return Tile{causal, j0, min(kKeys, (causal ? own_end : p) - j0)};
  };
  auto issue = [&](int t) {
    const Tile tl = tile(t);
    const size_t krow = tl.causal ? (size_t)r0 + tl.j0 : (size_t)tl.j0;
    load_rows<HD, kKeys, NT, false>(Ks(t & 1), k + krow * ldkv + (size_t)hk * HD, ldkv, tl.keys);
    load_rows<HD, kKeys, NT, false>(Vs(t & 1), v + krow * ldkv + (size_t)hk * HD, ldkv, tl.keys);
    mma::cp_async_commit();
  };
  load_rows<HD, ROWS, NT, false>(Qs, q + (size_t)(r0 + i0) * ldq + (size_t)h * HD, ldq, rows);
  mma::cp_async_commit();
  issue(0);
  mma::cp_async_wait<1>();
  __syncthreads();
  uint32_t qf[KB][4];
  for (int kb = 0; kb < KB; kb++) ldsm_x4(qf[kb], Qs + a_off<LT>(lane, w0, kb * 16));

  float oacc[DN][4] = {};
  float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.f, 0.f};  // log2 units; per-lane partial sums
  const float sl2 = scale * kLog2e;
  const bool live = w0 < rows;  // a warp past the segment's end only keeps the barriers
  for (int t = 0; t < ntiles; t++) {
    if (t + 1 < ntiles) {
      issue(t + 1);
      mma::cp_async_wait<1>();
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();  // tile t is in shared memory for every thread
    const auto [causal, j0, keys] = tile(t);
    if (live && !(causal && j0 > i0 + w0 + 15)) {  // else every key of the tile is in this warp's future
      const bf16 *K = Ks(t & 1), *V = Vs(t & 1);
      float s[NB][4] = {};
      for (int kb = 0; kb < KB; kb++)
        for (int n2 = 0; n2 < NB / 2; n2++) {
          uint32_t b[4];
          ldsm_x4(b, K + bt_off<LT>(lane, n2 * 16, kb * 16));
          mma16816(s[2 * n2], qf[kb], b[0], b[1]);
          mma16816(s[2 * n2 + 1], qf[kb], b[2], b[3]);
        }
      // Mask only where some key is invisible to some row of this warp (rows past the segment's
      // end are zero queries whose results are never written).
      const bool full = keys == kKeys && !(causal && j0 + kKeys - 1 > i0 + w0);
      float mx[2] = {-INFINITY, -INFINITY};
      for (int nb = 0; nb < NB; nb++)
        for (int e = 0; e < 4; e++) {
          const int r = w0 + g + (e >> 1) * 8, c = nb * 8 + 2 * t4 + (e & 1);
          float x = s[nb][e] * sl2;
          if (!full && !visible(r, rows, c, keys, causal, j0, i0 + r)) x = -INFINITY;
          s[nb][e] = x;
          mx[e >> 1] = fmaxf(mx[e >> 1], x);
        }
      float alpha[2], base[2];
      for (int u = 0; u < 2; u++) {
        mx[u] = fmaxf(mx[u], __shfl_xor_sync(0xffffffffu, mx[u], 1));
        mx[u] = fmaxf(mx[u], __shfl_xor_sync(0xffffffffu, mx[u], 2));
        const float mnew = fmaxf(mrow[u], mx[u]);
        // A row with no visible key yet keeps m = -inf and l = 0 (and exp2 of -inf - 0 = 0).
        base[u] = mnew == -INFINITY ? 0.f : mnew;
        alpha[u] = exp2f(mrow[u] - base[u]);
        mrow[u] = mnew;
        lrow[u] *= alpha[u];
      }
      for (int dn = 0; dn < DN; dn++)
        for (int e = 0; e < 4; e++) oacc[dn][e] *= alpha[e >> 1];
      // P = exp2(s - m), summed in fp32 and rounded to bf16 as the next product's A operand.
      for (int k2 = 0; k2 < NB / 2; k2++) {
        float pr[2][4];
        for (int hh = 0; hh < 2; hh++)
          for (int e = 0; e < 4; e++) {
            pr[hh][e] = exp2f(s[2 * k2 + hh][e] - base[e >> 1]);
            lrow[e >> 1] += pr[hh][e];
          }
        uint32_t a[4] = {pack_bf16(pr[0][0], pr[0][1]), pack_bf16(pr[0][2], pr[0][3]), pack_bf16(pr[1][0], pr[1][1]),
                         pack_bf16(pr[1][2], pr[1][3])};
        for (int d2 = 0; d2 < DN / 2; d2++) {
          uint32_t b[4];
          ldsm_x4_t(b, V + b_off<LT>(lane, k2 * 16, d2 * 16));
          mma16816(oacc[2 * d2], a, b[0], b[1]);
          mma16816(oacc[2 * d2 + 1], a, b[2], b[3]);
        }
      }
    }
    __syncthreads();  // tile t's buffers are refilled by the next iteration's issue
  }
  for (int u = 0; u < 2; u++) {
    lrow[u] += __shfl_xor_sync(0xffffffffu, lrow[u], 1);
    lrow[u] += __shfl_xor_sync(0xffffffffu, lrow[u], 2);
  }
  for (int u = 0; u < 2; u++) {
    const int r = w0 + g + 8 * u;
    if (r >= rows) continue;
    const size_t row = (size_t)r0 + i0 + r;
    const float inv = 1.f / lrow[u];
    float *out = o + row * ldq + (size_t)h * HD + 2 * t4;
    for (int dn = 0; dn < DN; dn++) out[dn * 8] = oacc[dn][2 * u] * inv, out[dn * 8 + 1] = oacc[dn][2 * u + 1] * inv;
    if (t4 == 0) lse[(size_t)h * n + row] = mrow[u] * kLn2 + logf(lrow[u]);
  }
}

// flash_bwd: grid bwd_grid(m, p, n_head), kThreads threads, bwd_smem<HD, PF>() bytes; MINB blocks
// per SM for the register budget (2: at most 128 registers). Block (x, h) owns one tile of keys
// (the prompt's tiles first, then the segment's own) and query head h: it walks the query tiles
// that see those keys, rebuilding P = exp(scale q k^T - lse) and dS = P (dO v^T - D),
// accumulates dV += P^T dO and dK += dS^T q in registers, and adds dQ = scale dS k into dq per
// query tile; at the end it adds dK (times scale) and dV into dk, dv. D [n_head][n] is
// rowsum(dO * O) (attn_rowdot). With PF the next query tile's Q and dO (cp.async, a second pair of
// buffers, in the swizzled layout to fit) and its lse and D (registers) are on their way while this tile is computed; without,
// each tile's loads are waited for before its products (VZLOCAL_CUDA_FLASH_PREFETCH=0, to time
// the difference).
//
// Warps: for S and dP, warp w has query rows 16(w%4).. and keys 32(w/4)..; for dK, dV and dQ, the
// 16-row block w%4 (keys, resp. queries) and the head-dim half w/4.
template <int HD, int MINB, bool PF>
__global__ void __launch_bounds__(kThreads, MINB)
    flash_bwd(const bf16 *q, const bf16 *k, const bf16 *v, const bf16 *dO, const float *lse, const float *D,
              float *dq, float *dk, float *dv, int n, int ldq, int ldkv, int G, int r0, int m, int p, float scale) {
  using L = Smem<HD, PF>;
  using LT = Lay<HD, PF>;      // q, k, v, dO tiles
  using LP = Lay<kKeys, PF>;   // P, dS
  constexpr int KB = HD / 16, HN = HD / 16;  // HN: 8-column blocks in half the head dim
  constexpr int NBUF = PF ? 2 : 1;           // Q, dO buffer pairs
  VZ_DYN_SMEM(smem);
  bf16 *Ks = (bf16 *)smem, *Vs = (bf16 *)(smem + L::T);
  auto Qb = [&](int b) { return (bf16 *)(smem + (2 + 2 * b) * L::T); };
  auto dOb = [&](int b) { return (bf16 *)(smem + (3 + 2 * b) * L::T); };
  unsigned char *rest = smem + (2 + 2 * NBUF) * L::T;
  bf16 *Ps = (bf16 *)rest, *dSs = (bf16 *)(rest + L::P);
  float *lse_s = (float *)(rest + 2 * L::P), *D_s = lse_s + kBwdRows;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  const int wr = warp % 4 * 16, wk = warp / 4 * 32, wd = warp / 4 * (HD / 2);
  const int h = blockIdx.y, hk = h / G;
  const int npre = (p + kKeys - 1) / kKeys;
  const bool causal = (int)blockIdx.x >= npre;
  const int j0 = (causal ? (int)blockIdx.x - npre : (int)blockIdx.x) * kKeys;
  const int keys = min(kKeys, (causal ? m : p) - j0);
  const size_t krow = causal ? (size_t)r0 + j0 : (size_t)j0;
  const float sl2 = scale * kLog2e;
  // issue starts the copies of query tile i0's Q and dO into buffer pair b (one cp.async group).
  auto issue = [&](int i0, int b) {
    const int rows = min(kBwdRows, m - i0);
    load_rows<HD, kBwdRows, kThreads, PF>(Qb(b), q + (size_t)(r0 + i0) * ldq + (size_t)h * HD, ldq, rows);
    load_rows<HD, kBwdRows, kThreads, PF>(dOb(b), dO + (size_t)(r0 + i0) * ldq + (size_t)h * HD, ldq, rows);
    mma::cp_async_commit();
  };
  // stats: threads 0..63 read query tile i0's lse and D (their row's); plain loads, waited for
  // only where the values are first used.
  auto stats = [&](int i0, float &l, float &d) {
    const bool ok = (int)threadIdx.x < min(kBwdRows, m - i0);
    const size_t at = (size_t)h * n + r0 + i0 + threadIdx.x;
    l = ok ? lse[at] : 0.f;
    d = ok ? D[at] : 0.f;
  };
  load_rows<HD, kKeys, kThreads, PF>(Ks, k + krow * ldkv + (size_t)hk * HD, ldkv, keys);
  load_rows<HD, kKeys, kThreads, PF>(Vs, v + krow * ldkv + (size_t)hk * HD, ldkv, keys);
  mma::cp_async_commit();
  const int first = causal ? j0 : 0;
  float lse_r = 0.f, D_r = 0.f;
  if (PF && first < m) {
    issue(first, 0);
    if (threadIdx.x < kBwdRows) stats(first, lse_r, D_r);
  }
  float dKa[HN][4] = {}, dVa[HN][4] = {};
  for (int i0 = first; i0 < m; i0 += kBwdRows) {
    const int rows = min(kBwdRows, m - i0), b = PF ? (i0 - first) / kBwdRows & 1 : 0;
    __syncthreads();  // the previous query tile's buffers, P, dS, lse and D are no longer read
    if (!PF) {
      issue(i0, 0);
      if (threadIdx.x < kBwdRows) stats(i0, lse_r, D_r);
    }
    if (threadIdx.x < kBwdRows) lse_s[threadIdx.x] = lse_r * kLog2e, D_s[threadIdx.x] = D_r;
    if (PF && i0 + kBwdRows < m) {
      issue(i0 + kBwdRows, b ^ 1);
      if (threadIdx.x < kBwdRows) stats(i0 + kBwdRows, lse_r, D_r);
      mma::cp_async_wait<1>();  // all but the copy just issued: K, V and this tile's Q, dO
    } else {
      mma::cp_async_wait<0>();
    }
    __syncthreads();
    const bf16 *Qs = Qb(b), *dOs = dOb(b);
    // S = Q K^T and dP = dO V^T for 16 query rows and 32 keys.
    float s[4][4] = {}, dp[4][4] = {};
    for (int kb = 0; kb < KB; kb++) {
      uint32_t aq[4], ad[4];
      ldsm_x4(aq, Qs + a_off<LT>(lane, wr, kb * 16));
      ldsm_x4(ad, dOs + a_off<LT>(lane, wr, kb * 16));
      for (int n2 = 0; n2 < 2; n2++) {
        uint32_t bb[4];
        ldsm_x4(bb, Ks + bt_off<LT>(lane, wk + n2 * 16, kb * 16));
        mma16816(s[2 * n2], aq, bb[0], bb[1]);
        mma16816(s[2 * n2 + 1], aq, bb[2], bb[3]);
        ldsm_x4(bb, Vs + bt_off<LT>(lane, wk + n2 * 16, kb * 16));
        mma16816(dp[2 * n2], ad, bb[0], bb[1]);
        mma16816(dp[2 * n2 + 1], ad, bb[2], bb[3]);
      }
    }
    for (int nb = 0; nb < 4; nb++)
      for (int u = 0; u < 2; u++) {
        const int r = wr + g + 8 * u, c = wk + nb * 8 + 2 * t4;
        float P[2], dS[2];
        for (int e = 0; e < 2; e++) {
          P[e] = visible(r, rows, c + e, keys, causal, j0, i0 + r) ? exp2f(s[nb][2 * u + e] * sl2 - lse_s[r]) : 0.f;
          dS[e] = P[e] * (dp[nb][2 * u + e] - D_s[r]);
        }
        *reinterpret_cast<uint32_t *>(Ps + LP::at(r, c)) = pack_bf16(P[0], P[1]);
        *reinterpret_cast<uint32_t *>(dSs + LP::at(r, c)) = pack_bf16(dS[0], dS[1]);
      }
    __syncthreads();
    // dV += P^T dO and dK += dS^T Q: 16 keys (wr..) x half the head dim (wd..).
    for (int qb = 0; qb < kBwdRows / 16; qb++) {
      uint32_t ap[4], as[4];
      ldsm_x4_t(ap, Ps + bt_off<LP>(lane, qb * 16, wr));
      ldsm_x4_t(as, dSs + bt_off<LP>(lane, qb * 16, wr));
      for (int d2 = 0; d2 < HN / 2; d2++) {
        uint32_t bb[4];
        ldsm_x4_t(bb, dOs + b_off<LT>(lane, qb * 16, wd + d2 * 16));
        mma16816(dVa[2 * d2], ap, bb[0], bb[1]);
        mma16816(dVa[2 * d2 + 1], ap, bb[2], bb[3]);
        ldsm_x4_t(bb, Qs + b_off<LT>(lane, qb * 16, wd + d2 * 16));
        mma16816(dKa[2 * d2], as, bb[0], bb[1]);
        mma16816(dKa[2 * d2 + 1], as, bb[2], bb[3]);
      }
    }
    // dQ = dS K: 16 query rows (wr..) x half the head dim (wd..), added into dq.
    float dQa[HN][4] = {};
    for (int kb = 0; kb < kKeys / 16; kb++) {
      uint32_t a[4];
      ldsm_x4(a, dSs + a_off<LP>(lane, wr, kb * 16));
      for (int d2 = 0; d2 < HN / 2; d2++) {
        uint32_t bb[4];
        ldsm_x4_t(bb, Ks + b_off<LT>(lane, kb * 16, wd + d2 * 16));
        mma16816(dQa[2 * d2], a, bb[0], bb[1]);
        mma16816(dQa[2 * d2 + 1], a, bb[2], bb[3]);
      }
    }
    for (int u = 0; u < 2; u++) {
      const int r = wr + g + 8 * u;
      if (r >= rows) continue;
      float *out = dq + (size_t)(r0 + i0 + r) * ldq + (size_t)h * HD + wd + 2 * t4;
      for (int dn = 0; dn < HN; dn++) {
        atomicAdd(out + dn * 8, scale * dQa[dn][2 * u]);
        atomicAdd(out + dn * 8 + 1, scale * dQa[dn][2 * u + 1]);
      }
    }
  }
  for (int u = 0; u < 2; u++) {
    const int c = wr + g + 8 * u;
    if (c >= keys) continue;
    const size_t off = (krow + c) * ldkv + (size_t)hk * HD + wd + 2 * t4;
    for (int dn = 0; dn < HN; dn++)
      for (int e = 0; e < 2; e++) {
        atomicAdd(dv + off + dn * 8 + e, dVa[dn][2 * u + e]);
        atomicAdd(dk + off + dn * 8 + e, scale * dKa[dn][2 * u + e]);
      }
  }
}

}  // namespace flash
