// run.cu: one pass over a packed batch, like lora/forward.go's run: the input rows in, every block
// (keeping each block's input as its recomputation checkpoint when a backward follows), the final
// norm, the chunked vocabulary log-softmax, then the blocks' backward from the last to the first,
// each block's activations recomputed from its checkpoint just before its backward, or kept from
// the forward for the first keep_layers blocks.
//
// A pass is split in three calls so that the host's work overlaps the GPU's: run_begin queues the
// whole pass and returns; as each block's backward finishes, its LoRA gradients go down to the
// pinned host stage on a second stream (the copy overlaps the earlier blocks' backward), and
// run_wait_layer lets the caller take a block's gradients as soon as they have landed; run_end
// waits for the rest. At 7B and 4,096 tokens the gradients are 154 MB: copied after the pass and
// then moved again on the host, they cost tens of milliseconds of a half-second step.
#include "internal.cuh"

#include <algorithm>
#include <cstring>

int plan_batch(const vz_engine *e, const vz_batch *b, Plan *pl, Err &err) {
  if (b == nullptr || b->n <= 0) return vz_seterr(err, VZ_ERR_ARG, "batch has no rows");
  if (b->n_seg <= 0 || b->seg == nullptr) return vz_seterr(err, VZ_ERR_ARG, "batch has no segments");
  long long maxseg = 0;
  for (int s = 0; s < b->n_seg; s++) {
    int r0 = b->seg[3 * s], r1 = b->seg[3 * s + 1], p = b->seg[3 * s + 2];
    if (r0 < 0 || r1 <= r0 || r1 > b->n || p < 0 || p > r0)
      return vz_seterr(err, VZ_ERR_ARG, "segment %d = {%d, %d, %d} invalid for %d rows", s, r0, r1, p, b->n);
    long long m = r1 - r0, sz = m * (p + m);
    maxseg = std::max(maxseg, sz);
  }
  if (maxseg > (1ll << 31) - 1) return vz_seterr(err, VZ_ERR_ARG, "a segment's score matrix has %lld entries (> 2^31)", maxseg);
  pl->maxseg = (int)maxseg;
  if (b->n_target < 0 || (b->n_target > 0 && (b->t_row == nullptr || b->t_tok == nullptr)))
    return vz_seterr(err, VZ_ERR_ARG, "batch targets missing");
  for (int t = 0; t < b->n_target; t++) {
    if (b->t_row[t] < 0 || b->t_row[t] >= b->n || b->t_tok[t] < 0 || b->t_tok[t] >= e->c.n_vocab)
      return vz_seterr(err, VZ_ERR_ARG, "target %d: row %d token %d out of range", t, b->t_row[t], b->t_tok[t]);
    if (t > 0 && b->t_row[t] < b->t_row[t - 1]) return vz_seterr(err, VZ_ERR_ARG, "targets are not sorted by row");
    if (t == 0 || b->t_row[t] != b->t_row[t - 1]) {
      pl->urow.push_back(b->t_row[t]);
      pl->ustart.push_back(t);
    }
  }
  pl->ustart.push_back(b->n_target);
  return 0;
}

namespace {

int check_weights(const vz_engine *e, Err &err) {
  for (int il = 0; il < e->c.n_layer; il++) {
    const LayerW &L = e->layers[il];
    for (int t = 0; t < VZ_NTARGET; t++)
      if (!L.w[t] && !L.raw[t]) return vz_seterr(err, VZ_ERR_ARG, "weight kind %d of layer %d was never uploaded", t, il);
    if (!L.attn_norm || !L.ffn_norm) return vz_seterr(err, VZ_ERR_ARG, "norms of layer %d were never uploaded", il);
    if (e->c.has_qkv_bias && (!L.bq || !L.bk || !L.bv))
      return vz_seterr(err, VZ_ERR_ARG, "q/k/v biases of layer %d were never uploaded", il);
  }
  if (!e->out_norm || !e->output) return vz_seterr(err, VZ_ERR_ARG, "output norm or head was never uploaded");
  return 0;
}

// keep_count is how many blocks keep their activations for this batch: the configured number, or
// with keep = -1 as many as fit in the device memory free now (the current slab counted as free,
// since a bigger one replaces it), leaving max(1 GiB, 1/16 of the device) for cuBLAS, other
// engines and llama.cpp.
int keep_count(vz_engine *e, Err &err, const vz_batch *b, const Plan &pl, bool backward, int *nkeep) {
  int L = e->c.n_layer;
  *nkeep = 0;
  if (!backward || e->keep == 0) return 0;
  if (e->keep > 0) {
    *nkeep = std::min(e->keep, L);
    return 0;
  }
  size_t base = workspace_layout(e, nullptr, nullptr, b->n, pl.maxseg, (int)pl.urow.size(), b->n_target, true, 0);
  size_t one = workspace_layout(e, nullptr, nullptr, b->n, pl.maxseg, (int)pl.urow.size(), b->n_target, true, 1) - base;
  size_t fr = 0, tot = 0;
  CUDA_CK(cudaMemGetInfo(&fr, &tot));
  size_t reserve = std::max((size_t)1 << 30, tot / 16), avail = fr + e->ws_bytes;
  if (avail > base + reserve && one > 0) *nkeep = (int)std::min((avail - base - reserve) / one, (size_t)L);
  return 0;
}

int ensure_workspace(vz_engine *e, Err &err, const vz_batch *b, const Plan &pl, bool backward) {
  int nkeep;
  TRY(keep_count(e, err, b, pl, backward, &nkeep));
  size_t need = workspace_layout(e, nullptr, nullptr, b->n, pl.maxseg, (int)pl.urow.size(), b->n_target, backward, nkeep);
  if (need > e->ws_bytes) {
    dfree(e, e->ws, e->ws_bytes);
    e->ws = nullptr;
    e->ws_bytes = 0;
    void *p;
    TRY(dalloc(e, &p, need, err));
    e->ws = (char *)p;
    e->ws_bytes = need;
  }
  workspace_layout(e, &e->w, e->ws, b->n, pl.maxseg, (int)pl.urow.size(), b->n_target, backward, nkeep);
  e->run.seg.assign(b->seg, b->seg + 3 * b->n_seg);  // the caller's array lives only as long as vz_run_begin
  e->w.seg = e->run.seg.data();
  e->w.nseg = b->n_seg;
  return 0;
}

// grads_down sends block il's finished gradients to the host stage on the copy stream.
int grads_down(vz_engine *e, Err &err, int il) {
  CUDA_CK(cudaEventRecord(e->bwd_done[il], e->stream));
  CUDA_CK(cudaStreamWaitEvent(e->copy_stream, e->bwd_done[il], 0));
  int64_t o = e->layer_off[il], m = e->layer_off[il + 1] - o;
  PROF_OP("idle until the layer's backward", 0, e->copy_stream);
  if (m > 0) CUDA_CK(cudaMemcpyAsync(e->host_stage + o, e->grad_slab + o, (size_t)m * 4, cudaMemcpyDeviceToHost, e->copy_stream));
  PROF_OP("gradients down", 0, e->copy_stream);
  CUDA_CK(cudaEventRecord(e->copied[il], e->copy_stream));
  return 0;
}

// pinned_buffer grows a page-locked host buffer to hold n floats.
int pinned_buffer(Err &err, float **buf, size_t *cap, size_t n) {
  if (n <= *cap) return 0;
  if (*buf) CUDA_CK(cudaFreeHost(*buf));
  *buf = nullptr;
  *cap = 0;
  CUDA_CK(cudaMallocHost((void **)buf, std::max<size_t>(n, 1) * 4));
  *cap = n;
  return 0;
}

// enqueue queues the whole pass on the engine's streams.
int enqueue(vz_engine *e, Err &err, const vz_batch *b, const Plan &pl, bool backward) {
  const vz_config &c = e->c;
  Work &w = e->w;
  cudaStream_t st = e->stream;
  int n = b->n, E = c.n_embd, V = c.n_vocab, L = c.n_layer, nu = (int)pl.urow.size();
  size_t nE = (size_t)n * E;
  prof_start(e);
  // Copies from pageable memory (the caller's) are staged before the call returns; x0 is usually
  // the pinned buffer of vz_input_rows, which the caller leaves alone until run_end.
  CUDA_CK(cudaMemcpyAsync(w.x, b->x0, nE * 4, cudaMemcpyHostToDevice, st));
  CUDA_CK(cudaMemcpyAsync(w.cos, b->rope_cos, (size_t)n * e->half * 4, cudaMemcpyHostToDevice, st));
  CUDA_CK(cudaMemcpyAsync(w.sin, b->rope_sin, (size_t)n * e->half * 4, cudaMemcpyHostToDevice, st));
  if (nu > 0) CUDA_CK(cudaMemcpyAsync(w.urow, pl.urow.data(), (size_t)nu * 4, cudaMemcpyHostToDevice, st));
  CUDA_CK(cudaMemcpyAsync(w.ustart, pl.ustart.data(), (size_t)(nu + 1) * 4, cudaMemcpyHostToDevice, st));
  if (b->n_target > 0) {
    CUDA_CK(cudaMemcpyAsync(w.t_tok, b->t_tok, (size_t)b->n_target * 4, cudaMemcpyHostToDevice, st));
    if (b->t_w) CUDA_CK(cudaMemcpyAsync(w.t_w, b->t_w, (size_t)b->n_target * 4, cudaMemcpyHostToDevice, st));
  }
  // Forward. Backward keeps block il's input at x + il*nE (its recomputation checkpoint);
  // log-probs alone ping-pong between two buffers.
  auto xin = [&](int il) { return w.x + (backward ? (size_t)il : (size_t)(il % 2)) * nE; };
  prof_mark(e, P_UPLOAD);
  for (int il = 0; il < L; il++) {
    use_acts(w, il);
    // The next block's weights are dequantized meanwhile (quantized path): the next in this
    // pass, or after the last the first the backward needs.
    TRY(prepare_layer(e, err, il, il + 1 < L ? il + 1 : backward ? il - 1 : -1));
    TRY(layer_forward(e, err, il, xin(il), xin(il + 1)));
  }
  float *xlast = xin(L);
  TRY(k_rmsnorm_fwd(e, err, w.xf, w.rstdf, xlast, e->out_norm, n, E));
  prof_mark(e, P_FWD_OTHER);
  // Head: chunks of R unique scored rows; logits never exist for more rows than that.
  if (backward) {
    CUDA_CK(cudaMemsetAsync(w.dxf, 0, nE * 4, st));
    PROF_OP("zero the head's input gradient", 0, nullptr);
  }
  float it = b->inv_temp > 0 ? b->inv_temp : 1.f;
  // The gradient of the logits is the backward GEMM's operand: fp32 in place, or bf16 in the slot.
  const bool bf16 = e->wtype == CUDA_R_16BF;
  for (int c0 = 0; c0 < nu; c0 += w.R) {
    int m = std::min(w.R, nu - c0);
    const void *xc;
    TRY(k_gather_rows(e, err, w.xb, w.xf, w.urow + c0, m, E));
    TRY(to_compute(e, err, w.xb, (size_t)m * E, w.slot, &xc));
    TRY(gemm(e, err, false, true, m, V, E, it, xc, E, e->output, E, 0.f, w.logits, V, e->wtype));
    TRY(k_head(e, err, w.logits, m, V, w.ustart, c0, w.t_tok, w.t_w, w.logp, backward, bf16 ? w.slot : nullptr));
    if (backward) {
      const void *gc = bf16 ? (const void *)w.slot : (const void *)w.logits;
      TRY(gemm(e, err, false, false, m, E, V, it, gc, V, e->output, E, 0.f, w.dxb, E, e->wtype));
      TRY(k_scatter_add_rows(e, err, w.dxf, w.dxb, w.urow + c0, m, E));
    }
  }
  if (b->n_target > 0) CUDA_CK(cudaMemcpyAsync(e->host_logp, w.logp, (size_t)b->n_target * 4, cudaMemcpyDeviceToHost, st));
  PROF_OP("log-probs down", 0, nullptr);
  prof_mark(e, P_HEAD);
  if (!backward) return 0;
  CUDA_CK(cudaMemsetAsync(e->grad_slab, 0, (size_t)e->n_flat * 4, st));
  PROF_OP("zero the LoRA gradients", 0, nullptr);
  float *dy = w.dy, *dx = w.dx;
  TRY(k_rmsnorm_bwd(e, err, dy, nullptr, w.dxf, xlast, e->out_norm, w.rstdf, n, E));
  for (int il = L - 1; il >= 0; il--) {
    use_acts(w, il);
    TRY(prepare_layer(e, err, il, il - 1));
    if (il < w.nkeep) {
      TRY(layer_restore(e, err, il, xin(il)));  // kept from the forward
    } else if (il < L - 1) {
      // Recompute the block's activations; its output overwrites the next checkpoint, which
      // the backward no longer needs (and gets the same values). The last block's are still
      // in the shared set from the forward (the head uses none of its buffers).
      TRY(layer_forward(e, err, il, xin(il), xin(il + 1)));
    }
    TRY(layer_backward(e, err, il, xin(il), dy, il == 0 ? nullptr : dx));
    TRY(grads_down(e, err, il));
    std::swap(dy, dx);
  }
  prof_mark(e, P_BWD_OTHER);
  return 0;
}

// drain waits for every stream, returning the first error.
int drain(vz_engine *e, Err &err) {
  cudaError_t ce = cudaSuccess;
  for (cudaStream_t s : {e->stream, e->copy_stream, e->deq_stream}) {
    cudaError_t c = cudaStreamSynchronize(s);
    if (ce == cudaSuccess) ce = c;
  }
  e->run.on = false;
  if (ce != cudaSuccess) return vz_seterr(err, VZ_ERR_CUDA, "the pass failed on the GPU: %s", cudaGetErrorString(ce));
  return 0;
}

}  // namespace

int create_streams(vz_engine *e, Err &err) {
  CUDA_CK(cudaStreamCreateWithFlags(&e->copy_stream, cudaStreamNonBlocking));
  CUDA_CK(cudaStreamCreateWithFlags(&e->deq_stream, cudaStreamNonBlocking));
  for (int s = 0; s < 2; s++) {
    CUDA_CK(cudaEventCreateWithFlags(&e->deq_ready[s], cudaEventDisableTiming));
    CUDA_CK(cudaEventCreateWithFlags(&e->deq_free[s], cudaEventDisableTiming));
  }
  e->bwd_done.assign(e->c.n_layer, nullptr);
  e->copied.assign(e->c.n_layer, nullptr);
  for (int il = 0; il < e->c.n_layer; il++) {
    CUDA_CK(cudaEventCreateWithFlags(&e->bwd_done[il], cudaEventDisableTiming));
    CUDA_CK(cudaEventCreateWithFlags(&e->copied[il], cudaEventDisableTiming));
  }
  return 0;
}

void destroy_streams(vz_engine *e) {
  for (cudaEvent_t ev : e->bwd_done)
    if (ev) cudaEventDestroy(ev);
  for (cudaEvent_t ev : e->copied)
    if (ev) cudaEventDestroy(ev);
  e->bwd_done.clear();
  e->copied.clear();
  for (int s = 0; s < 2; s++) {
    if (e->deq_ready[s]) cudaEventDestroy(e->deq_ready[s]);
    if (e->deq_free[s]) cudaEventDestroy(e->deq_free[s]);
    e->deq_ready[s] = e->deq_free[s] = nullptr;
  }
  for (cudaStream_t *s : {&e->copy_stream, &e->deq_stream}) {
    if (*s) cudaStreamDestroy(*s);
    *s = nullptr;
  }
  if (e->host_rows) cudaFreeHost(e->host_rows);
  if (e->host_logp) cudaFreeHost(e->host_logp);
  e->host_rows = e->host_logp = nullptr;
  e->host_rows_cap = e->host_logp_cap = 0;
}

int input_rows(vz_engine *e, Err &err, int n, float **rows) {
  *rows = nullptr;
  if (n <= 0) return vz_seterr(err, VZ_ERR_ARG, "input rows: %d rows", n);
  TRY(pinned_buffer(err, &e->host_rows, &e->host_rows_cap, (size_t)n * e->c.n_embd));
  *rows = e->host_rows;
  return 0;
}

int run_begin(vz_engine *e, Err &err, const vz_batch *b, bool backward) {
  if (backward && e->rank == 0) return vz_seterr(err, VZ_ERR_ARG, "backward without an adapter");
  if (backward && b->t_w == nullptr && b->n_target > 0)
    return vz_seterr(err, VZ_ERR_ARG, "backward without per-token weights");
  if (b->x0 == nullptr || b->rope_cos == nullptr || b->rope_sin == nullptr)
    return vz_seterr(err, VZ_ERR_ARG, "batch has no input rows or no RoPE table");
  TRY(check_weights(e, err));
  Plan pl;
  TRY(plan_batch(e, b, &pl, err));
  TRY(ensure_workspace(e, err, b, pl, backward));
  TRY(pinned_buffer(err, &e->host_logp, &e->host_logp_cap, (size_t)b->n_target));
  e->run.on = true;
  e->run.backward = backward;
  e->run.rows = b->n;
  e->run.n_target = b->n_target;
  int rc = enqueue(e, err, b, pl, backward);
  if (rc != 0) {
    Err quiet{nullptr, 0};  // keep the first error's message
    drain(e, quiet);
  }
  return rc;
}

int run_wait_layer(vz_engine *e, Err &err, int layer) {
  if (!e->run.on || !e->run.backward) return vz_seterr(err, VZ_ERR_ARG, "wait for layer %d: no backward pass in flight", layer);
  if (layer < 0 || layer >= e->c.n_layer) return vz_seterr(err, VZ_ERR_ARG, "wait for layer %d of %d", layer, e->c.n_layer);
  cudaError_t ce = cudaEventSynchronize(e->copied[layer]);
  if (ce != cudaSuccess) return vz_seterr(err, VZ_ERR_CUDA, "layer %d's gradients: %s", layer, cudaGetErrorString(ce));
  return 0;
}

int run_end(vz_engine *e, Err &err, float *logp) {
  if (!e->run.on) return vz_seterr(err, VZ_ERR_ARG, "end of a pass: no pass in flight");
  TRY(drain(e, err));  // kernel faults surface here
  if (e->run.n_target > 0 && logp == nullptr) return vz_seterr(err, VZ_ERR_ARG, "end of a pass: nowhere to write %d log-probs", e->run.n_target);
  if (e->run.n_target > 0) memcpy(logp, e->host_logp, (size_t)e->run.n_target * 4);
  prof_mark(e, P_DOWNLOAD);
  prof_report(e, e->run.rows);
  return 0;
}
