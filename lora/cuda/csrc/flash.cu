// flash.cu: launches flash.cuh's kernels in place of attention.cu's materialized path (one launch
// per segment, as attention.cu loops over segments). The kernels are checked on the CPU by
// TestFlashKernelsOnCPU; on the GPU by the parity tests with Options.Attention = AttnFlash.
#include "internal.cuh"

#include <cmath>
#include <cstdlib>

#include "flash.cuh"

bool flash_supports(const vz_config &c, cudaDataType wtype) {
  return wtype == CUDA_R_16BF && (c.head_dim == 64 || c.head_dim == 128);
}

namespace {

// Kernel shapes (tuning): VZLOCAL_FLASH_FWD_WARPS (4 or 8 warps per forward block) and
// VZLOCAL_FLASH_BWD_MINB (1 or 2 backward blocks per SM: 2 caps the registers at 128).
int fwd_warps = 8, bwd_minb = 1;

int env_choice(const char *name, int a, int b, int def) {
  const char *v = getenv(name);
  if (!v || !*v) return def;
  int x = atoi(v);
  return x == a || x == b ? x : def;
}

template <int HD, int W>
int set_fwd(Err &err) {
  CUDA_CK(cudaFuncSetAttribute(flash::flash_fwd<HD, W>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)flash::Smem<HD>::fwd(W)));
  return 0;
}
template <int HD, int MINB>
int set_bwd(Err &err) {
  CUDA_CK(cudaFuncSetAttribute(flash::flash_bwd<HD, MINB>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)flash::Smem<HD>::bwd));
  return 0;
}

template <int HD>
int set_smem(Err &err, int optin) {
  using L = flash::Smem<HD>;
  const size_t need = L::fwd(8) > L::bwd ? L::fwd(8) : L::bwd;
  if ((size_t)optin < need)
    return vz_seterr(err, VZ_ERR_NODEVICE, "flash attention needs %zu bytes of shared memory per block, the device allows %d",
                     need, optin);
  TRY((set_fwd<HD, 4>(err)));
  TRY((set_fwd<HD, 8>(err)));
  TRY((set_bwd<HD, 1>(err)));
  TRY((set_bwd<HD, 2>(err)));
  return 0;
}

template <int HD, int W>
int forward(vz_engine *e, Err &err) {
  const vz_config &c = e->c;
  Work &w = e->w;
  float scale = (float)(1.0 / std::sqrt((double)HD));
  for (int s = 0; s < w.nseg; s++) {
    int r0 = w.seg[3 * s], m = w.seg[3 * s + 1] - r0, p = w.seg[3 * s + 2];
    flash::flash_fwd<HD, W><<<flash::fwd_grid(m, c.n_head, W), 32 * W, flash::Smem<HD>::fwd(W), e->stream>>>(
        w.qb, w.kb, w.vb, w.ao, w.lse, w.n, e->qd, e->kvd, c.n_head / c.n_head_kv, r0, m, p, scale);
    LAUNCH_CK();
  }
  return 0;
}

template <int HD, int MINB>
int backward(vz_engine *e, Err &err) {
  const vz_config &c = e->c;
  Work &w = e->w;
  float scale = (float)(1.0 / std::sqrt((double)HD));
  const void *doc;
  TRY(k_attn_rowdot(e, err, w.D, w.dao, w.ao, w.n, c.n_head, HD));
  TRY(to_compute(e, err, w.dao, (size_t)w.n * e->qd, w.dob, &doc));
  for (int s = 0; s < w.nseg; s++) {
    int r0 = w.seg[3 * s], m = w.seg[3 * s + 1] - r0, p = w.seg[3 * s + 2];
    flash::flash_bwd<HD, MINB><<<flash::bwd_grid(m, p, c.n_head), flash::kThreads, flash::Smem<HD>::bwd, e->stream>>>(
        w.qb, w.kb, w.vb, (const __nv_bfloat16 *)doc, w.lse, w.D, w.dq, w.dk, w.dv, w.n, e->qd, e->kvd,
        c.n_head / c.n_head_kv, r0, m, p, scale);
    LAUNCH_CK();
  }
  return 0;
}

}  // namespace

// flash_init raises the kernels' dynamic shared-memory limit (above the default 48 KB), or says
// why the device cannot run them.
int flash_init(const vz_config &c, Err &err) {
  fwd_warps = env_choice("VZLOCAL_FLASH_FWD_WARPS", 4, 8, 8);
  bwd_minb = env_choice("VZLOCAL_FLASH_BWD_MINB", 1, 2, 1);
  int optin = 0;
  CUDA_CK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, c.device));
  return c.head_dim == 64 ? set_smem<64>(err, optin) : set_smem<128>(err, optin);
}

int flash_forward(vz_engine *e, Err &err) {
  if (e->c.head_dim == 64) return fwd_warps == 4 ? forward<64, 4>(e, err) : forward<64, 8>(e, err);
  return fwd_warps == 4 ? forward<128, 4>(e, err) : forward<128, 8>(e, err);
}

int flash_backward(vz_engine *e, Err &err) {
  if (e->c.head_dim == 64) return bwd_minb == 2 ? backward<64, 2>(e, err) : backward<64, 1>(e, err);
  return bwd_minb == 2 ? backward<128, 2>(e, err) : backward<128, 1>(e, err);
}
