// layers.cu: one decoder block forward and backward, line for line the CPU reference's
// layerForward/layerBackward (lora/forward.go) and linear.forward/backward (lora/layers.go).
//
// Base GEMMs take their activation operand in the engine's precision (operand(): the fp32 buffer
// itself, or a bf16 copy in the shared operand slot). In fp32 mode every LoRA product is a
// separate fp32 GEMM; in bf16 mode the adapter's products with the activations run inside the
// base GEMMs (fold.cu: x A^T, and the extra K columns of [x | s x A^T] [W | B]^T, in bf16 with
// fp32 accumulation, as PEFT runs them). The gradients of A and B are fp32 GEMMs, except where
// the folded FFN (folded_ffn) has its activation only in bf16.
#include "internal.cuh"

void target_shape(const vz_engine *e, int t, int *in, int *out) {
  int E = e->c.n_embd, F = e->c.n_ff;
  switch (t) {
    case VZ_W_Q: *in = E, *out = e->qd; break;
    case VZ_W_K: case VZ_W_V: *in = E, *out = e->kvd; break;
    case VZ_W_O: *in = e->qd, *out = E; break;
    case VZ_W_GATE: case VZ_W_UP: *in = E, *out = F; break;
    default: *in = F, *out = E; break;  // VZ_W_DOWN
  }
}

namespace {

struct Lin {
  const void *w;
  const float *bias;
  const LoraPair *lp;  // nullptr: not adapted
  int in, out;
  int ldw;    // w's row stride: in, or in + lrp in the folded layout (fold.cu)
  bool fold;  // the adapter's product runs inside the base GEMMs (fold.cu)
};

Lin lin(vz_engine *e, int il, int t) {
  LayerW &L = e->layers[il];
  Lin l{L.w[t] ? L.w[t] : e->deq[e->deq_cur][t], nullptr, nullptr, 0, 0, 0, false};  // scratch: prepare_layer
  target_shape(e, t, &l.in, &l.out);
  l.ldw = l.in + e->lrp;
  if (t == VZ_W_Q) l.bias = L.bq;
  if (t == VZ_W_K) l.bias = L.bk;
  if (t == VZ_W_V) l.bias = L.bv;
  if (e->rank > 0 && L.lora[t].a != nullptr) l.lp = &L.lora[t];
  l.fold = l.lp && e->lrp > 0;
  return l;
}

// lin_forward: y = x W^T + b + scale (x A^T) B^T; lu keeps x A^T. xc (row stride ldx) is x as a
// GEMM operand (operand()); folded, its last lrp columns are overwritten with scale x A^T.
int lin_forward(vz_engine *e, Err &err, const Lin &l, float *y, __nv_bfloat16 *yb, const float *x, const void *xc,
                int ldx, float *lu, int n) {
  int r = e->rank, K = l.in;
  if (l.fold) {  // u = x A^T from M's A block, then [x | s u] against [W | B]
    const __nv_bfloat16 *A = (const __nv_bfloat16 *)l.w + (size_t)l.out * l.ldw;
    TRY(gemm(e, err, false, true, n, r, l.in, 1.f, xc, ldx, A, l.ldw, 0.f, lu, r, e->wtype));
    TRY(k_scaled_cols(e, err, (__nv_bfloat16 *)xc, ldx, l.in, lu, n, r, e->lrp, e->scale));
    K += e->lrp;
  }
  if (yb) {  // y only as bf16, y unused (the folded FFN's gate and up); no bias there
    if (l.bias || (l.lp && !l.fold)) return vz_seterr(err, VZ_ERR_ARG, "internal: a bf16 output with a bias or an unfolded adapter");
    return gemm_bf16_out(e, err, false, true, n, l.out, K, 1.f, xc, ldx, l.w, l.ldw, yb, l.out);
  }
  TRY(gemm(e, err, false, true, n, l.out, K, 1.f, xc, ldx, l.w, l.ldw, 0.f, y, l.out, e->wtype));
  if (l.bias) TRY(k_add_bias(e, err, y, l.bias, n, l.out));
  if (l.lp && !l.fold) {
    TRY(gemm(e, err, false, true, n, r, l.in, 1.f, x, l.in, l.lp->a, l.in, 0.f, lu, r, CUDA_R_32F));
    TRY(gemm(e, err, false, true, n, l.out, r, e->scale, lu, r, l.lp->b, r, 1.f, y, l.out, CUDA_R_32F));
  }
  return 0;
}

// Act: an activation as lin_backward's GEMMs take it: fp32 (row stride = its width) and/or its bf16
// operand (row stride ld, with room for the folded adapter's columns). The folded FFN's have only
// the bf16 form (folded_ffn).
struct Act {
  const float *f = nullptr;
  __nv_bfloat16 *b = nullptr;
  int ld = 0;
};
Act f32(const float *x) { return Act{x, nullptr, 0}; }
Act ops(__nv_bfloat16 *x, int ld) { return Act{nullptr, x, ld}; }

// lin_backward: dx (+)= dy W + scale (dy B) A (dx may be null; add: accumulate into dx, else
// overwrite it, which spares the caller a memset; dxb: dx written as a bf16 operand instead),
// dB += scale dy^T lu, dA += scale (dy B)^T x. The adapter's gradient GEMMs are fp32 where dy or
// x is, bf16 (fp32 accumulation) where the activation exists only as a bf16 operand.
int lin_backward(vz_engine *e, Err &err, const Lin &l, float *dx, __nv_bfloat16 *dxb, bool add, Act dy, Act x,
                 const float *lu, int n) {
  Work &w = e->w;
  int r = e->rank;
  float s = e->scale;
  // Folded, dy B comes from M's B block in bf16 (and goes into dx through the same GEMM);
  // otherwise it is an fp32 GEMM, needed for dA.
  const bool fold_dx = (dx || dxb) && l.fold;
  if (dx || dxb) {
    const void *dyc = dy.b;
    int ld = dy.ld, K = l.out;
    if (dyc == nullptr) TRY(operand(e, err, dy.f, n, l.out, &dyc, &ld));
    if (fold_dx) {  // dy' = [dy | s dy B] against [W; A]
      const __nv_bfloat16 *B = (const __nv_bfloat16 *)l.w + l.in;
      TRY(gemm(e, err, false, false, n, r, l.out, 1.f, dyc, ld, B, l.ldw, 0.f, w.tmp, r, e->wtype));
      TRY(k_scaled_cols(e, err, (__nv_bfloat16 *)dyc, ld, l.out, w.tmp, n, r, e->lrp, s));
      K += e->lrp;
    }
    if (dxb) TRY(gemm_bf16_out(e, err, false, false, n, l.in, K, 1.f, dyc, ld, l.w, l.ldw, dxb, l.in));
    else TRY(gemm(e, err, false, false, n, l.in, K, 1.f, dyc, ld, l.w, l.ldw, add ? 1.f : 0.f, dx, l.in, e->wtype));
  }
  if (!l.lp) return 0;
  if (!fold_dx) {
    if (dy.f == nullptr) return vz_seterr(err, VZ_ERR_ARG, "internal: dy B of a bf16-only gradient outside the fold");
    TRY(gemm(e, err, false, false, n, r, l.out, 1.f, dy.f, l.out, l.lp->b, r, 0.f, w.tmp, r, CUDA_R_32F));
  }
  if (dy.f) {
    TRY(gemm(e, err, true, false, l.out, r, n, s, dy.f, l.out, lu, r, 1.f, l.lp->gb, r, CUDA_R_32F));
  } else {
    TRY(k_convert_bf16(e, err, w.lub, lu, (size_t)n * r));
    TRY(gemm(e, err, true, false, l.out, r, n, s, dy.b, dy.ld, w.lub, r, 1.f, l.lp->gb, r, CUDA_R_16BF));
  }
  if (x.f) {
    TRY(gemm(e, err, true, false, r, l.in, n, s, w.tmp, r, x.f, l.in, 1.f, l.lp->ga, l.in, CUDA_R_32F));
  } else {
    TRY(k_convert_bf16(e, err, w.tmpb, w.tmp, (size_t)n * r));
    TRY(gemm(e, err, true, false, r, l.in, n, s, w.tmpb, r, x.b, x.ld, 1.f, l.lp->ga, l.in, CUDA_R_16BF));
  }
  if (dx && !l.fold) TRY(gemm(e, err, false, false, n, l.in, r, s, w.tmp, r, l.lp->a, l.in, 1.f, dx, l.in, CUDA_R_32F));
  return 0;
}

// norm_operand: y = RMSNorm(x) with weight nw, and y as the next GEMMs' operand (operand()'s
// layout): in bf16 mode written into the slot by the norm kernel itself.
int norm_operand(vz_engine *e, Err &err, float *y, float *rstd, const float *x, const float *nw, const void **xc,
                 int *ld) {
  const int n = e->w.n, E = e->c.n_embd;
  *ld = operand_ld(e, E);
  const bool bf16 = e->wtype == CUDA_R_16BF;
  TRY(k_rmsnorm_fwd(e, err, y, rstd, x, nw, n, E, bf16 ? e->w.slot : nullptr, *ld));
  *xc = bf16 ? (const void *)e->w.slot : (const void *)y;
  return 0;
}

}  // namespace

// layer_forward runs block il: y = x2 + ffn(norm(x2)), x2 = x + attn(norm(x)); the block's
// activations stay in the workspace for layer_backward.
int layer_forward(vz_engine *e, Err &err, int il, const float *x, float *y) {
  const vz_config &c = e->c;
  Work &w = e->w;
  LayerW &L = e->layers[il];
  int n = w.n, E = c.n_embd;
  const void *xc;
  int ld;
  TRY(norm_operand(e, err, w.xn1, w.rstd1, x, L.attn_norm, &xc, &ld));
  Lin lq = lin(e, il, VZ_W_Q), lk = lin(e, il, VZ_W_K), lv = lin(e, il, VZ_W_V);
  // bf16 mode: the attention reads only the bf16 operands, made from the GEMMs' fp32 outputs
  // (scratch shared by every block, workspace.cu) with the bias, RoPE and rounding in one pass.
  const bool bf16 = e->wtype == CUDA_R_16BF;
  const float *bq = lq.bias, *bk = lk.bias, *bv = lv.bias;
  if (bf16) lq.bias = lk.bias = lv.bias = nullptr;
  TRY(lin_forward(e, err, lq, w.q, nullptr, w.xn1, xc, ld, w.lu[VZ_W_Q], n));
  TRY(lin_forward(e, err, lk, w.k, nullptr, w.xn1, xc, ld, w.lu[VZ_W_K], n));
  TRY(lin_forward(e, err, lv, w.v, nullptr, w.xn1, xc, ld, w.lu[VZ_W_V], n));
  if (bf16) {
    TRY(k_attn_operand(e, err, w.qb, w.q, bq, n, c.n_head, true));
    TRY(k_attn_operand(e, err, w.kb, w.k, bk, n, c.n_head_kv, true));
    TRY(k_attn_operand(e, err, w.vb, w.v, bv, n, c.n_head_kv, false));
  } else {
    TRY(k_rope(e, err, w.q, n, c.n_head, false));
    TRY(k_rope(e, err, w.k, n, c.n_head_kv, false));
  }
  prof_mark(e, P_FWD_LIN);
  TRY(attention_forward(e, err));
  prof_mark(e, P_FWD_ATTN);
  TRY(operand(e, err, w.ao, n, e->qd, &xc, &ld));
  TRY(lin_forward(e, err, lin(e, il, VZ_W_O), w.x2, nullptr, w.ao, xc, ld, w.lu[VZ_W_O], n));
  TRY(k_add(e, err, w.x2, x, (size_t)n * E));
  TRY(norm_operand(e, err, w.xn2, w.rstd2, w.x2, L.ffn_norm, &xc, &ld));
  // SwiGLU writes the down projection's operand itself (bf16 mode), laid out as operand() would:
  // into the slot, or (folded FFN: gate and up in bf16, no fp32 h at all) into hb, kept for the
  // backward.
  const int F = c.n_ff;
  const size_t nF = (size_t)n * F;
  TRY(lin_forward(e, err, lin(e, il, VZ_W_GATE), w.g, w.g16, w.xn2, xc, ld, w.lu[VZ_W_GATE], n));
  TRY(lin_forward(e, err, lin(e, il, VZ_W_UP), w.u, w.u16, w.xn2, xc, ld, w.lu[VZ_W_UP], n));
  ld = operand_ld(e, F);
  __nv_bfloat16 *hb = folded_ffn(e) ? w.hb : bf16 ? w.slot : nullptr;
  if (folded_ffn(e)) TRY(k_swiglu_fwd(e, err, nullptr, hb, F, ld, w.g16, w.u16, nF));
  else TRY(k_swiglu_fwd(e, err, w.h, hb, F, ld, w.g, w.u, nF));
  xc = bf16 ? (const void *)hb : (const void *)w.h;
  TRY(lin_forward(e, err, lin(e, il, VZ_W_DOWN), y, nullptr, w.h, xc, ld, w.lu[VZ_W_DOWN], n));
  TRY(k_add(e, err, y, w.x2, (size_t)n * E));
  prof_mark(e, P_FWD_LIN);
  return 0;
}

int layer_restore(vz_engine *e, Err &err, int il, const float *x) {
  const vz_config &c = e->c;
  Work &w = e->w;
  LayerW &L = e->layers[il];
  int n = w.n, E = c.n_embd;
  TRY(k_rmsnorm_fwd(e, err, w.xn1, w.rstd1, x, L.attn_norm, n, E));
  TRY(k_rmsnorm_fwd(e, err, w.xn2, w.rstd2, w.x2, L.ffn_norm, n, E));
  const size_t nF = (size_t)n * c.n_ff;
  if (folded_ffn(e)) TRY(k_swiglu_fwd(e, err, nullptr, w.hb, c.n_ff, operand_ld(e, c.n_ff), w.g16, w.u16, nF));
  else TRY(k_swiglu_fwd(e, err, w.h, nullptr, c.n_ff, c.n_ff, w.g, w.u, nF));
  return 0;
}

// layer_backward takes dy = d(loss)/d(block output) and writes dx = d(loss)/d(block input) (when
// dx is not null), accumulating the block's LoRA gradients. The block's activations must be those
// of layer_forward(il, x): kept from the forward (and layer_restore'd) or recomputed just before.
int layer_backward(vz_engine *e, Err &err, int il, const float *x, const float *dy, float *dx) {
  const vz_config &c = e->c;
  Work &w = e->w;
  LayerW &L = e->layers[il];
  int n = w.n, E = c.n_embd;
  size_t nF = (size_t)n * c.n_ff, nQ = (size_t)n * e->qd, nKV = (size_t)n * e->kvd;
  cudaStream_t st = e->stream;
  if (folded_ffn(e)) {  // h, dh, dg, du as bf16 operands only
    const int ldF = operand_ld(e, c.n_ff);
    TRY(lin_backward(e, err, lin(e, il, VZ_W_DOWN), nullptr, w.dhb, false, f32(dy), ops(w.hb, ldF), w.lu[VZ_W_DOWN], n));
    TRY(k_swiglu_bwd(e, err, w.dgb, w.dub, c.n_ff, ldF, w.dhb, w.g16, w.u16, nF));
    TRY(lin_backward(e, err, lin(e, il, VZ_W_GATE), w.dxn, nullptr, false, ops(w.dgb, ldF), f32(w.xn2), w.lu[VZ_W_GATE], n));
    TRY(lin_backward(e, err, lin(e, il, VZ_W_UP), w.dxn, nullptr, true, ops(w.dub, ldF), f32(w.xn2), w.lu[VZ_W_UP], n));
  } else {
    TRY(lin_backward(e, err, lin(e, il, VZ_W_DOWN), w.dh, nullptr, false, f32(dy), f32(w.h), w.lu[VZ_W_DOWN], n));
    TRY(k_swiglu_bwd(e, err, w.dg, w.du, c.n_ff, c.n_ff, w.dh, w.g, w.u, nF));
    TRY(lin_backward(e, err, lin(e, il, VZ_W_GATE), w.dxn, nullptr, false, f32(w.dg), f32(w.xn2), w.lu[VZ_W_GATE], n));
    TRY(lin_backward(e, err, lin(e, il, VZ_W_UP), w.dxn, nullptr, true, f32(w.du), f32(w.xn2), w.lu[VZ_W_UP], n));
  }
  TRY(k_rmsnorm_bwd(e, err, w.dx2, dy, w.dxn, w.x2, L.ffn_norm, w.rstd2, n, E));  // dx2 = dy + the FFN's
  TRY(lin_backward(e, err, lin(e, il, VZ_W_O), w.dao, nullptr, false, f32(w.dx2), f32(w.ao), w.lu[VZ_W_O], n));
  CUDA_CK(cudaMemsetAsync(w.dq, 0, nQ * 4, st));
  CUDA_CK(cudaMemsetAsync(w.dk, 0, nKV * 4, st));
  CUDA_CK(cudaMemsetAsync(w.dv, 0, nKV * 4, st));
  PROF_OP("zero dq dk dv", 0, nullptr);
  prof_mark(e, P_BWD_LIN);
  TRY(attention_backward(e, err));
  prof_mark(e, P_BWD_ATTN);
  TRY(k_rope(e, err, w.dq, n, c.n_head, true));
  TRY(k_rope(e, err, w.dk, n, c.n_head_kv, true));
  float *dxn = dx ? w.dxn : nullptr;
  TRY(lin_backward(e, err, lin(e, il, VZ_W_Q), dxn, nullptr, false, f32(w.dq), f32(w.xn1), w.lu[VZ_W_Q], n));
  TRY(lin_backward(e, err, lin(e, il, VZ_W_K), dxn, nullptr, true, f32(w.dk), f32(w.xn1), w.lu[VZ_W_K], n));
  TRY(lin_backward(e, err, lin(e, il, VZ_W_V), dxn, nullptr, true, f32(w.dv), f32(w.xn1), w.lu[VZ_W_V], n));
  if (dx) TRY(k_rmsnorm_bwd(e, err, dx, w.dx2, dxn, x, L.attn_norm, w.rstd1, n, E));  // dx = dx2 + attention's
  prof_mark(e, P_BWD_LIN);
  return 0;
}
