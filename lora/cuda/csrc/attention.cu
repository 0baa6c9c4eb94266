// attention.cu: causal GQA attention over a packed batch (lora/attention.go's layout: the shared
// prompt once, then every completion attending to the prompt and causally to itself).
//
// First version, documented in docs/cuda.md: scores are materialized per segment and kv group
// (G = n_head/n_head_kv query heads at once, through strided-batched cuBLAS GEMMs with a zero
// stride on the shared K/V), the softmax is a fused row kernel that keeps each row's log-sum-exp,
// and the backward rebuilds the probabilities from it. Memory is G * m * (prefix + m) fp32 per
// buffer for the largest segment. The flash path (flash.cu, vz_config.attention) keeps scores in
// shared memory instead.
#include "internal.cuh"

#include <cmath>

namespace {

const void *at(const vz_engine *e, const void *base, size_t elems) {
  size_t es = e->wtype == CUDA_R_16BF ? 2 : 4;
  return (const char *)base + elems * es;
}

// scores computes S[g] = scale * q_{h0+g} k_hk^T over the prompt keys then the segment's own keys.
int scores(vz_engine *e, Err &err, const void *qc, const void *kc, int r0, int m, int p, int hk, float scale) {
  const vz_config &c = e->c;
  int G = c.n_head / c.n_head_kv, hd = c.head_dim, Q = e->qd, KV = e->kvd, nk = p + m;
  int h0 = hk * G;
  const void *qh = at(e, qc, (size_t)r0 * Q + (size_t)h0 * hd);
  if (p > 0)
    TRY(gemm_batched(e, err, false, true, m, p, hd, scale, qh, Q, hd, at(e, kc, (size_t)hk * hd), KV, 0, 0.f,
                     e->w.S, nk, (long long)m * nk, G, e->wtype));
  TRY(gemm_batched(e, err, false, true, m, m, hd, scale, qh, Q, hd, at(e, kc, (size_t)r0 * KV + (size_t)hk * hd),
                   KV, 0, 0.f, e->w.S + p, nk, (long long)m * nk, G, e->wtype));
  return 0;
}

// operands returns q, k, v as GEMM operands: the bf16 copies made after RoPE, or the fp32 buffers.
void operands(const vz_engine *e, const void **qc, const void **kc, const void **vc) {
  bool bf = e->wtype == CUDA_R_16BF;
  *qc = bf ? (const void *)e->w.qb : e->w.q;
  *kc = bf ? (const void *)e->w.kb : e->w.k;
  *vc = bf ? (const void *)e->w.vb : e->w.v;
}

}  // namespace

// attention_forward: ao = softmax(q k^T / sqrt(hd)) v per head; lse [n_head][n] for the backward.
int attention_forward(vz_engine *e, Err &err) {
  if (e->flash) return flash_forward(e, err);
  const vz_config &c = e->c;
  Work &w = e->w;
  int G = c.n_head / c.n_head_kv, hd = c.head_dim, Q = e->qd, KV = e->kvd, n = w.n;
  float scale = (float)(1.0 / std::sqrt((double)hd));
  const void *qc, *kc, *vc;
  operands(e, &qc, &kc, &vc);
  for (int s = 0; s < w.nseg; s++) {
    int r0 = w.seg[3 * s], r1 = w.seg[3 * s + 1], p = w.seg[3 * s + 2], m = r1 - r0, nk = p + m;
    for (int hk = 0; hk < c.n_head_kv; hk++) {
      int h0 = hk * G;
      TRY(scores(e, err, qc, kc, r0, m, p, hk, scale));
      // bf16 mode: the softmax writes the bf16 operand directly (the fp32 P is not needed).
      bool bf = e->wtype == CUDA_R_16BF;
      TRY(k_attn_softmax(e, err, w.S, bf ? w.slot : nullptr, !bf, G * m, m, nk, p, w.lse + (size_t)h0 * n + r0, n,
                         false));
      const void *pc = bf ? (const void *)w.slot : w.S;
      float *oh = w.ao + (size_t)r0 * Q + (size_t)h0 * hd;
      float beta = 0.f;
      if (p > 0) {
        TRY(gemm_batched(e, err, false, false, m, hd, p, 1.f, pc, nk, (long long)m * nk, at(e, vc, (size_t)hk * hd),
                         KV, 0, 0.f, oh, Q, hd, G, e->wtype));
        beta = 1.f;
      }
      TRY(gemm_batched(e, err, false, false, m, hd, m, 1.f, at(e, pc, p), nk, (long long)m * nk,
                       at(e, vc, (size_t)r0 * KV + (size_t)hk * hd), KV, 0, beta, oh, Q, hd, G, e->wtype));
    }
  }
  return 0;
}

// attention_backward accumulates dq, dk, dv from dao (lora.attentionBackward): with P rebuilt from
// lse, dV += P^T dO, dP = dO V^T, dS = P (dP - rowsum(dO O)), dQ += scale dS K, dK += scale dS^T Q.
// dV and dK sum over the G query heads of a kv group: one batched GEMM writes the G per-head
// products over all of the segment's keys (prompt and own) into dkv, and attn_sum_heads adds them
// up into the packed rows (one GEMM and one kernel instead of 2G small GEMMs: the GRPO shape has
// many short segments, where launches dominated).
int attention_backward(vz_engine *e, Err &err) {
  if (e->flash) return flash_backward(e, err);
  const vz_config &c = e->c;
  Work &w = e->w;
  int G = c.n_head / c.n_head_kv, hd = c.head_dim, Q = e->qd, KV = e->kvd, n = w.n;
  float scale = (float)(1.0 / std::sqrt((double)hd));
  bool bf = e->wtype == CUDA_R_16BF;
  const void *qc, *kc, *vc, *doc;
  operands(e, &qc, &kc, &vc);
  TRY(k_attn_rowdot(e, err, w.D, w.dao, w.ao, n, c.n_head, hd));
  TRY(to_compute(e, err, w.dao, (size_t)n * Q, w.dob, &doc));
  for (int s = 0; s < w.nseg; s++) {
    int r0 = w.seg[3 * s], r1 = w.seg[3 * s + 1], p = w.seg[3 * s + 2], m = r1 - r0, nk = p + m;
    long long sS = (long long)m * nk, sT = (long long)nk * hd;
    for (int hk = 0; hk < c.n_head_kv; hk++) {
      int h0 = hk * G;
      TRY(scores(e, err, qc, kc, r0, m, p, hk, scale));
      // P in place (fp32, for dS) and, in bf16 mode, its bf16 copy for the dV GEMM in one pass.
      TRY(k_attn_softmax(e, err, w.S, bf ? w.slot : nullptr, true, G * m, m, nk, p, w.lse + (size_t)h0 * n + r0, n,
                         true));
      const void *pc = bf ? (const void *)w.slot : w.S;
      const void *do0 = at(e, doc, (size_t)r0 * Q + (size_t)h0 * hd);
      // dkv[g] = P_g^T dO_g over all nk keys, then dV (prompt rows and the segment's rows) += sum_g.
      TRY(gemm_batched(e, err, true, false, nk, hd, m, 1.f, pc, nk, sS, do0, Q, hd, 0.f, w.dkv, hd, sT, G,
                       e->wtype));
      TRY(k_attn_sum_heads(e, err, w.dv + (size_t)hk * hd, w.dkv, G, nk, hd, p, r0, KV));
      if (p > 0)
        TRY(gemm_batched(e, err, false, true, m, p, hd, 1.f, do0, Q, hd, at(e, vc, (size_t)hk * hd), KV, 0, 0.f,
                         w.dP, nk, sS, G, e->wtype));
      TRY(gemm_batched(e, err, false, true, m, m, hd, 1.f, do0, Q, hd, at(e, vc, (size_t)r0 * KV + (size_t)hk * hd),
                       KV, 0, 0.f, w.dP + p, nk, sS, G, e->wtype));
      // dS: in place (fp32 mode) or straight into the bf16 operand slot (P's copy is no longer needed).
      TRY(k_attn_dsoftmax(e, err, w.S, bf ? w.slot : nullptr, w.dP, w.D + (size_t)h0 * n + r0, G * m, m, nk, p, n));
      const void *dsc = bf ? (const void *)w.slot : w.S;
      float *dqh = w.dq + (size_t)r0 * Q + (size_t)h0 * hd;
      if (p > 0)
        TRY(gemm_batched(e, err, false, false, m, hd, p, scale, dsc, nk, sS, at(e, kc, (size_t)hk * hd), KV, 0, 1.f,
                         dqh, Q, hd, G, e->wtype));
      TRY(gemm_batched(e, err, false, false, m, hd, m, scale, at(e, dsc, p), nk, sS,
                       at(e, kc, (size_t)r0 * KV + (size_t)hk * hd), KV, 0, 1.f, dqh, Q, hd, G, e->wtype));
      const void *q0 = at(e, qc, (size_t)r0 * Q + (size_t)h0 * hd);
      TRY(gemm_batched(e, err, true, false, nk, hd, m, scale, dsc, nk, sS, q0, Q, hd, 0.f, w.dkv, hd, sT, G,
                       e->wtype));
      TRY(k_attn_sum_heads(e, err, w.dk + (size_t)hk * hd, w.dkv, G, nk, hd, p, r0, KV));
    }
  }
  return 0;
}
