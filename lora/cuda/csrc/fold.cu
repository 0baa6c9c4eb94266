// fold.cu: LoRA folded into the base GEMMs (bf16 mode). A target's matrix is stored as
//
//        in   rp                      forward:  y  = [x | s u] M[0:out]^T      (K = in + rp)
//   M = [ W    B ]  out               backward: dx = [dy | s dy B] M[:, 0:in]  (K = out + rp)
//       [ A    0 ]  rp
//
// with u = x A^T and rp the adapter's rank rounded up to 8 (zero-padded, so that every leading
// dimension stays a multiple of 8 elements for the tensor cores). One GEMM then computes the base
// product and the adapter's, instead of a base GEMM followed by an fp32 LoRA GEMM that reads and
// rewrites the whole output (at 7B and 4,096 rows those read-modify-writes were ~1.3 ms per block
// forward; docs/cuda.md). The adapter's own products for its gradients (dB = s dy^T u,
// dA = s (dy B)^T x) stay fp32.
//
// The layout is set by the first adapter (relayout_weights) and kept while the adapter is removed
// (the reference passes use K = in, ignoring the extra rows and columns); pack_lora copies the
// adapter's current values into the B and A blocks after every vz_set_adapter, and after each
// per-layer dequantization of a quantized layer (prepare_layer).
#include "internal.cuh"

namespace {

// copy_rows: dst[i][j] = src[i][j] for j < cols (row strides ldd, lds).
__global__ void copy_rows(__nv_bfloat16 *dst, int ldd, const __nv_bfloat16 *src, int lds, int rows, int cols) {
  size_t total = (size_t)rows * cols;
  for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x) {
    size_t i = t / cols, j = t % cols;
    dst[i * ldd + j] = src[i * lds + j];
  }
}

// pack: M's B block (rows [0, out), columns [in, in + rp)) and A block with the zero corner
// (rows [out, out + rp), columns [0, in + rp)) from the fp32 factors A [r][in], B [out][r].
__global__ void pack(__nv_bfloat16 *M, int ld, int in, int out, int r, int rp, const float *A, const float *B) {
  size_t nb = (size_t)out * rp, total = nb + (size_t)rp * (in + rp);
  for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x) {
    if (t < nb) {
      size_t i = t / rp;
      int j = (int)(t % rp);
      M[i * ld + in + j] = __float2bfloat16(j < r ? B[i * r + j] : 0.f);
    } else {
      size_t a = t - nb;
      int k = (int)(a / (in + rp)), j = (int)(a % (in + rp));
      M[(size_t)(out + k) * ld + j] = __float2bfloat16(k < r && j < in ? A[(size_t)k * in + j] : 0.f);
    }
  }
}

// scaled_cols: dst[i][col0 + j] = bf16(scale src[i][j]) for j < r, 0 for r <= j < rp.
__global__ void scaled_cols(__nv_bfloat16 *dst, int ldd, int col0, const float *src, int rows, int r, int rp,
                            float scale) {
  size_t total = (size_t)rows * rp;
  for (size_t t = blockIdx.x * (size_t)blockDim.x + threadIdx.x; t < total; t += (size_t)gridDim.x * blockDim.x) {
    size_t i = t / rp;
    int j = (int)(t % rp);
    dst[i * ldd + col0 + j] = __float2bfloat16(j < r ? scale * src[i * r + j] : 0.f);
  }
}

}  // namespace

int k_scaled_cols(vz_engine *e, Err &err, __nv_bfloat16 *dst, int ldd, int col0, const float *src, int rows, int r,
                  int rp, float scale) {
  if ((size_t)rows * rp == 0) return 0;
  scaled_cols<<<grid_for((size_t)rows * rp), kBlock, 0, e->stream>>>(dst, ldd, col0, src, rows, r, rp, scale);
  LAUNCH_CK();
  return 0;
}

int pack_lora(vz_engine *e, Err &err, int il, int t, void *M) {
  const LoraPair &lp = e->layers[il].lora[t];
  if (e->lrp == 0 || e->rank == 0 || lp.a == nullptr) return 0;
  int in, out;
  target_shape(e, t, &in, &out);
  size_t total = (size_t)out * e->lrp + (size_t)e->lrp * (in + e->lrp);
  pack<<<grid_for(total), kBlock, 0, e->stream>>>((__nv_bfloat16 *)M, in + e->lrp, in, out, e->rank, e->lrp, lp.a,
                                                   lp.b);
  LAUNCH_CK();
  return 0;
}

int pack_resident(vz_engine *e, Err &err) {
  for (int il = 0; il < e->c.n_layer; il++)
    for (int t = 0; t < VZ_NTARGET; t++)
      if (e->layers[il].w[t]) TRY(pack_lora(e, err, il, t, e->layers[il].w[t]));
  scratch_invalidate(e);  // a quantized layer's scratch is packed again after its next dequantization
  return 0;
}

int relayout_weights(vz_engine *e, Err &err, int rp) {
  if (rp == e->lrp) return 0;
  // Matrix by matrix (peak: one extra matrix). A failure part way leaves layers of both layouts:
  // the engine refuses further work rather than compute with the wrong strides.
  e->broken = true;
  const int old = e->lrp;
  for (int t = 0; t < VZ_NTARGET; t++) {
    int in, out;
    target_shape(e, t, &in, &out);
    size_t nb = (size_t)(out + rp) * (in + rp) * 2, ob = (size_t)(out + old) * (in + old) * 2;
    for (int il = 0; il < e->c.n_layer; il++) {
      void *&w = e->layers[il].w[t];
      if (!w) continue;
      void *m;
      TRY(dalloc(e, &m, nb, err));
      CUDA_CK(cudaMemsetAsync(m, 0, nb, e->stream));
      copy_rows<<<grid_for((size_t)out * in), kBlock, 0, e->stream>>>((__nv_bfloat16 *)m, in + rp,
                                                                       (const __nv_bfloat16 *)w, in + old, out, in);
      LAUNCH_CK();
      CUDA_CK(cudaStreamSynchronize(e->stream));
      dfree(e, w, ob);
      w = m;
      e->bytes_weights += (int64_t)nb - (int64_t)ob;
    }
    for (auto &slot : e->deq) {  // scratch, refilled by the next prepare_layer
      if (!slot[t]) continue;
      void *m;
      TRY(dalloc(e, &m, nb, err));
      dfree(e, slot[t], ob);  // dfree waits for the device (cudaFree), the dequantization stream too
      slot[t] = m;
      e->bytes_weights += (int64_t)nb - (int64_t)ob;
    }
  }
  e->lrp = rp;
  scratch_invalidate(e);
  e->broken = false;
  return 0;
}
