// scratch.cu: the per-layer dequantization scratch of the quantized path (Options.GGUF): layer
// matrices stay as ggml blocks on the GPU and each block's are dequantized (and the folded
// adapter packed in, fold.cu) just before the block runs. Two slots: while the compute stream runs
// block il from one, block il's successor (il + 1 forward, il - 1 backward) is dequantized into
// the other on deq_stream, so that the dequantization (about 7% of a 7B step when it ran inline)
// overlaps the GEMMs; the price is one more layer of scratch (0.43 GiB at 7B in bf16).
//
// Ordering: the compute stream waits for deq_ready[s] before a block reads slot s; deq_stream
// waits for deq_free[s] (recorded on the compute stream once every use of slot s's previous block
// is queued) before refilling it.
#include "internal.cuh"

namespace {

bool has_raw(const vz_engine *e) {
  for (void *p : e->deq[0])
    if (p) return true;
  return false;
}

// OnStream points the engine's launchers (which launch on e->stream) at another stream for a scope.
struct OnStream {
  vz_engine *e;
  cudaStream_t saved;
  OnStream(vz_engine *e, cudaStream_t s) : e(e), saved(e->stream) { e->stream = s; }
  ~OnStream() { e->stream = saved; }
};

// fill queues block il's dequantization into the slot not being read (once the compute stream is
// done with the block it held), or finds the slot already holding it.
int fill(vz_engine *e, Err &err, int il, int *slot) {
  for (int s = 0; s < 2; s++)
    if (e->deq_layer[s] == il) {
      *slot = s;
      return 0;
    }
  const int s = 1 - e->deq_cur;
  CUDA_CK(cudaStreamWaitEvent(e->deq_stream, e->deq_free[s], 0));
  PROF_OP("idle until the slot's last use", 0, e->deq_stream);
  e->deq_layer[s] = -1;  // until every matrix is queued
  {
    OnStream on(e, e->deq_stream);
    LayerW &L = e->layers[il];
    for (int t = 0; t < VZ_NTARGET; t++) {
      if (!L.raw[t]) continue;
      int in, out;
      target_shape(e, t, &in, &out);
      TRY(k_dequant(e, err, e->deq[s][t], L.raw[t], L.rtype[t], out, in, in + e->lrp));
      TRY(pack_lora(e, err, il, t, e->deq[s][t]));
    }
  }
  CUDA_CK(cudaEventRecord(e->deq_ready[s], e->deq_stream));
  e->deq_layer[s] = il;
  *slot = s;
  return 0;
}

}  // namespace

int prepare_layer(vz_engine *e, Err &err, int il, int next) {
  if (!has_raw(e)) return 0;
  int s;
  TRY(fill(e, err, il, &s));
  if (s != e->deq_cur) {
    // Every use of the slot read until now is queued: it may be refilled after those.
    CUDA_CK(cudaEventRecord(e->deq_free[e->deq_cur], e->stream));
    e->deq_cur = s;
  }
  CUDA_CK(cudaStreamWaitEvent(e->stream, e->deq_ready[s], 0));
  PROF_OP("wait for the dequantization", 0, nullptr);
  if (e->prefetch && next >= 0 && next < e->c.n_layer) TRY(fill(e, err, next, &s));
  return 0;
}

void scratch_invalidate(vz_engine *e) { e->deq_layer[0] = e->deq_layer[1] = -1; }

int scratch_alloc(vz_engine *e, Err &err, int kind) {
  for (auto &slot : e->deq) {
    if (slot[kind]) continue;
    TRY(dalloc(e, &slot[kind], weight_bytes(e, kind), err));
    e->bytes_weights += (int64_t)weight_bytes(e, kind);
  }
  return 0;
}
