// flash.cu: launches flash.cuh's kernels in place of attention.cu's materialized path (one launch
// per segment, as attention.cu loops over segments). The kernels are checked on the CPU by
// TestFlashKernelsOnCPU; on the GPU by the parity tests with Options.Attention = AttnFlash.
#include "internal.cuh"

#include <algorithm>
#include <cmath>

#include "flash.cuh"

bool flash_supports(const vz_config &c, cudaDataType wtype) {
  return wtype == CUDA_R_16BF && (c.head_dim == 64 || c.head_dim == 128);
}

namespace {

// Kernel shapes, as timed on an H100 (7B, 4,096 tokens; docs/cuda.md): forward blocks of 8 warps
// (128 query rows) beat 4 warps (21.7 vs 24.6 ms a step), and two backward blocks per SM (at
// most 128 registers, a few bytes spilled) beat one (79.5 vs 92.1 ms). The backward with the next
// query tile's loads in flight (PF, VZLOCAL_CUDA_FLASH_PREFETCH=1) still fits two blocks per SM at
// head_dim 128 (2 x 112.5 KiB of the H100's 228) thanks to swizzled, unpadded tiles, but spills
// more (ptxas 11.8: 60 bytes against 16); off until timed against the plain one on a GPU.
constexpr int kFwdWarps = 8, kBwdMinBlocks = 2;

template <int HD>
int set_smem(Err &err, int optin) {
  const size_t fwd = flash::FwdSmem<HD>::fwd(kFwdWarps), bwd = flash::bwd_smem<HD, false>(),
               bwd_pf = flash::bwd_smem<HD, true>();
  const size_t need = std::max({fwd, bwd, bwd_pf});
  if ((size_t)optin < need)
    return vz_seterr(err, VZ_ERR_NODEVICE, "flash attention needs %zu bytes of shared memory per block, the device allows %d",
                     need, optin);
  CUDA_CK(cudaFuncSetAttribute(flash::flash_fwd<HD, kFwdWarps>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)fwd));
  CUDA_CK(cudaFuncSetAttribute(flash::flash_bwd<HD, kBwdMinBlocks, false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)bwd));
  CUDA_CK(cudaFuncSetAttribute(flash::flash_bwd<HD, kBwdMinBlocks, true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)bwd_pf));
  return 0;
}

template <int HD>
int forward(vz_engine *e, Err &err) {
  constexpr int W = kFwdWarps;
  const vz_config &c = e->c;
  Work &w = e->w;
  float scale = (float)(1.0 / std::sqrt((double)HD));
  for (int s = 0; s < w.nseg; s++) {
    int r0 = w.seg[3 * s], m = w.seg[3 * s + 1] - r0, p = w.seg[3 * s + 2];
    flash::flash_fwd<HD, W><<<flash::fwd_grid(m, c.n_head, W), 32 * W, flash::FwdSmem<HD>::fwd(W), e->stream>>>(
        w.qb, w.kb, w.vb, w.ao, w.lse, w.n, e->qd, e->kvd, c.n_head / c.n_head_kv, r0, m, p, scale);
    LAUNCH_CK_AS("flash_fwd");
  }
  return 0;
}

template <int HD, bool PF>
int backward(vz_engine *e, Err &err) {
  const vz_config &c = e->c;
  Work &w = e->w;
  float scale = (float)(1.0 / std::sqrt((double)HD));
  const void *doc;
  TRY(k_attn_rowdot(e, err, w.D, w.dao, w.ao, w.n, c.n_head, HD));
  TRY(to_compute(e, err, w.dao, (size_t)w.n * e->qd, w.dob, &doc));
  for (int s = 0; s < w.nseg; s++) {
    int r0 = w.seg[3 * s], m = w.seg[3 * s + 1] - r0, p = w.seg[3 * s + 2];
    flash::flash_bwd<HD, kBwdMinBlocks, PF><<<flash::bwd_grid(m, p, c.n_head), flash::kThreads, flash::bwd_smem<HD, PF>(), e->stream>>>(
        w.qb, w.kb, w.vb, (const __nv_bfloat16 *)doc, w.lse, w.D, w.dq, w.dk, w.dv, w.n, e->qd, e->kvd,
        c.n_head / c.n_head_kv, r0, m, p, scale);
    LAUNCH_CK_AS("flash_bwd");
  }
  return 0;
}

}  // namespace

// flash_init raises the kernels' dynamic shared-memory limit (above the default 48 KB), or says
// why the device cannot run them.
int flash_init(const vz_config &c, Err &err) {
  int optin = 0;
  CUDA_CK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, c.device));
  return c.head_dim == 64 ? set_smem<64>(err, optin) : set_smem<128>(err, optin);
}

int flash_forward(vz_engine *e, Err &err) {
  return e->c.head_dim == 64 ? forward<64>(e, err) : forward<128>(e, err);
}

int flash_backward(vz_engine *e, Err &err) {
  if (e->flash_prefetch) return e->c.head_dim == 64 ? backward<64, true>(e, err) : backward<128, true>(e, err);
  return e->c.head_dim == 64 ? backward<64, false>(e, err) : backward<128, false>(e, err);
}
