// workspace.cu: the per-batch device buffers, carved from one slab (llm.c's activation memory).
// workspace_layout is the single source of truth for both the allocation (run.cu) and the estimate
// (vz_workspace_bytes): with base == nullptr it only counts.
//
// With n packed rows, E = n_embd, Q = n_head*head_dim, KV = n_head_kv*head_dim, F = n_ff, r = rank,
// L = n_layer, G = n_head/n_head_kv, S = the largest segment's m*(prefix+m), R = head chunk rows:
//   forward only:  2nE (ping-pong) + one block's activations
//   backward:      (L+1)nE (every block's input: the recomputation checkpoints) + one block's
//                  activations (recomputed per layer) + one block's activation gradients
//                  + nkeep more activation sets (Acts: q, k, v, lse, ao, x2, g, u, x A^T; the
//                  first nkeep blocks keep theirs from the forward and skip the recomputation)
//   attention:     G*S scores (+ G*S their gradient in the backward), fp32; backward: G*n*head_dim
//                  per-head dK/dV of one kv group (summed over the group by attn_sum_heads);
//                  none of these with flash attention
//   head:          R*V logits + R*E rows in and out
//   bf16 mode:     bf16 copies of q, k, v (and dO) and one operand slot; with the LoRA folded,
//                  the FFN's h, dh, dg, du as bf16 operands instead of fp32 (folded_ffn)
#include "internal.cuh"

#include <algorithm>

size_t workspace_layout(const vz_engine *e, Work *w, char *base, int n, int maxseg, int nuniq, int ntarget,
                        bool backward, int nkeep) {
  const vz_config &c = e->c;
  size_t E = c.n_embd, Q = e->qd, KV = e->kvd, F = c.n_ff, H = c.n_head, L = c.n_layer, V = c.n_vocab;
  size_t r = e->rank, half = e->half, G = c.n_head / c.n_head_kv, N = n;
  size_t R = c.head_chunk;
  if ((size_t)nuniq < R) R = nuniq;
  if (R < 1) R = 1;
  size_t off = 0;
  auto take = [&](size_t bytes) -> char * {
    size_t o = off;
    off += (bytes + 255) & ~(size_t)255;
    return base ? base + o : nullptr;
  };
  auto f32 = [&](size_t count) { return (float *)take(count * 4); };
  auto bf = [&](size_t count) { return (__nv_bfloat16 *)take(count * 2); };
  auto i32 = [&](size_t count) { return (int32_t *)take(count * 4); };
  Work tmp;
  Work &k = w ? *w : tmp;
  bool bf16 = e->wtype == CUDA_R_16BF;
  // bf16 mode: fp32 q, k, v are the projections' scratch (the attention reads qb, kb, vb), one set
  // for all blocks (the shared Acts'); fp32 mode: they are the attention's operands, kept per block.
  auto acts = [&](Acts &a, bool shared) {
    if (!bf16 || shared) a.q = f32(N * Q), a.k = f32(N * KV), a.v = f32(N * KV);
    a.lse = f32(H * N), a.ao = f32(N * Q);
    a.x2 = f32(N * E);
    if (folded_ffn(e)) a.g16 = bf(N * F), a.u16 = bf(N * F);
    else a.g = f32(N * F), a.u = f32(N * F);
    for (int t = 0; t < VZ_NTARGET; t++) a.lu[t] = f32(N * r);
    if (bf16) a.qb = bf(N * Q), a.kb = bf(N * KV), a.vb = bf(N * KV);
  };
  if (!backward) nkeep = 0;
  k.n = n, k.maxseg = maxseg, k.R = (int)R, k.nuniq = nuniq, k.backward = backward, k.nkeep = nkeep;
  k.x = f32((backward ? L + 1 : 2) * N * E);
  k.cos = f32(N * half), k.sin = f32(N * half);
  acts(k.shared, true);
  k.kept.assign(w ? nkeep : 0, Acts{});
  Acts count;  // counting only: any Acts will do
  for (int i = 0; i < nkeep; i++) acts(w ? k.kept[i] : count, false);
  const bool ops = folded_ffn(e);
  k.xn1 = f32(N * E), k.rstd1 = f32(N), k.xn2 = f32(N * E), k.rstd2 = f32(N);
  k.h = ops ? nullptr : f32(N * F);
  k.hb = ops ? bf(N * (F + e->lrp)) : nullptr;
  k.xf = f32(N * E), k.rstdf = f32(N);
  size_t scores = e->flash ? 0 : G * maxseg;  // flash: scores stay in shared memory
  k.S = scores ? f32(scores) : nullptr;
  k.dP = backward && scores ? f32(scores) : nullptr;
  k.D = backward ? f32(H * N) : nullptr;
  if (bf16) {
    size_t wide = std::max(E, Q);
    if (!ops) wide = std::max(wide, F);  // the folded FFN has operands of its own
    size_t slot = N * (wide + e->lrp);   // + the folded adapter's columns
    if (scores > slot) slot = scores;
    if (R * V > slot) slot = R * V;
    k.dob = backward ? bf(N * Q) : nullptr;
    k.slot = bf(slot);
  } else {
    k.dob = k.slot = nullptr;
  }
  if (w) use_acts(k, 0);
  k.xb = f32(R * E), k.logits = f32(R * V), k.dxb = backward ? f32(R * E) : nullptr;
  k.urow = i32(nuniq), k.ustart = i32(nuniq + 1), k.t_tok = i32(ntarget);
  k.t_w = f32(ntarget), k.logp = f32(ntarget);
  if (backward) {
    k.dy = f32(N * E), k.dx = f32(N * E), k.dx2 = f32(N * E), k.dxn = f32(N * E);
    k.dq = f32(N * Q), k.dk = f32(N * KV), k.dv = f32(N * KV), k.dao = f32(N * Q);
    k.tmp = f32(N * (r > 0 ? r : 1));
    k.dxf = f32(N * E);
    k.dkv = e->flash ? nullptr : f32(G * N * c.head_dim);
    if (ops) {
      k.dg = k.du = k.dh = nullptr;
      k.dhb = bf(N * F), k.dgb = bf(N * (F + e->lrp)), k.dub = k.hb;
      k.lub = bf(N * (r > 0 ? r : 1)), k.tmpb = bf(N * (r > 0 ? r : 1));
    } else {
      k.dg = f32(N * F), k.du = f32(N * F), k.dh = f32(N * F);
      k.dhb = k.dgb = k.dub = k.lub = k.tmpb = nullptr;
    }
  } else {
    k.dy = k.dx = k.dx2 = k.dxn = k.dq = k.dk = k.dv = k.dao = k.dg = k.du = k.dh = k.tmp = k.dxf = nullptr;
    k.dhb = k.dgb = k.dub = k.lub = k.tmpb = nullptr;
    k.dkv = nullptr;
  }
  return off;
}

void use_acts(Work &w, int il) {
  const Acts &a = il < w.nkeep ? w.kept[il] : w.shared;
  w.q = a.q ? a.q : w.shared.q, w.k = a.k ? a.k : w.shared.k, w.v = a.v ? a.v : w.shared.v;  // bf16: shared scratch
  w.lse = a.lse, w.ao = a.ao, w.x2 = a.x2, w.g = a.g, w.u = a.u;
  for (int t = 0; t < VZ_NTARGET; t++) w.lu[t] = a.lu[t];
  w.qb = a.qb, w.kb = a.kb, w.vb = a.vb, w.g16 = a.g16, w.u16 = a.u16;
}
