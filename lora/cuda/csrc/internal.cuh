// internal.cuh: the engine's state and the helpers shared by its translation units.
//
// Layout follows llm.c: base weights and the adapter are a few device allocations with named
// views, the per-batch workspace is one slab carved into named buffers (workspace.cu), every layer
// is a forward/backward pair of plain kernels mirroring package lora's CPU reference (kernels.cu,
// attention.cu, layers.cu). Activations are fp32 everywhere; in bf16 mode only the operands of the
// base-weight GEMMs (and of the attention GEMMs) are rounded to bf16, accumulation stays fp32.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdarg>
#include <cstdio>
#include <string>
#include <vector>

#include "vz_cuda.h"

// Err carries the caller's message buffer through internal calls.
struct Err {
  char *buf;
  int len;
};

int vz_seterr(Err &err, int code, const char *fmt, ...);

// Every CUDA and cuBLAS call goes through one of these: the failure becomes a return code plus a
// message naming the call and the source line, never an abort.
#define CUDA_CK(call)                                                                              \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess)                                                                         \
      return vz_seterr(err, VZ_ERR_CUDA, "%s:%d: %s: %s", __FILE__, __LINE__, #call,               \
                       cudaGetErrorString(e_));                                                    \
  } while (0)

#define BLAS_CK(call)                                                                              \
  do {                                                                                             \
    cublasStatus_t s_ = (call);                                                                    \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                               \
      return vz_seterr(err, VZ_ERR_CUBLAS, "%s:%d: %s: cuBLAS status %d", __FILE__, __LINE__,      \
                       #call, (int)s_);                                                            \
  } while (0)

// LAUNCH_CK checks a kernel launch (configuration errors; faults surface at the next sync, or
// right here when VZLOCAL_CUDA_SYNC=1 makes every launch synchronous to find a faulting kernel).
// The operation profile names the launch after its launcher, or `name` with LAUNCH_CK_AS.
#define LAUNCH_CK_AS(name)                                                                         \
  do {                                                                                             \
    CUDA_CK(cudaGetLastError());                                                                   \
    if (e->debug_sync) CUDA_CK(cudaStreamSynchronize(e->stream));                                  \
    PROF_OP(name, 0, nullptr);                                                                     \
  } while (0)
#define LAUNCH_CK() LAUNCH_CK_AS(__func__)

#define TRY(call)                                                                                  \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    if (rc_ != 0) return rc_;                                                                      \
  } while (0)

// Element-wise launches: kBlock threads a block, enough blocks for n elements (grid-stride loops
// cover the rest past the grid's limit).
constexpr int kBlock = 256;
inline unsigned grid_for(size_t n) {
  size_t g = (n + kBlock - 1) / kBlock;
  return (unsigned)(g < 1 ? 1 : (g > 1u << 30 ? 1u << 30 : g));
}

// One LoRA-adapted linear layer's device pointers (A [r][in], B [out][r], fp32) and their grads.
struct LoraPair {
  float *a = nullptr, *b = nullptr, *ga = nullptr, *gb = nullptr;
};

struct LayerW {
  void *w[VZ_NTARGET] = {};  // [out][in] in the engine's precision (nullptr when raw)
  void *raw[VZ_NTARGET] = {};  // or ggml blocks, dequantized per layer into vz_engine::deq
  int rtype[VZ_NTARGET] = {};
  size_t rbytes[VZ_NTARGET] = {};
  float *attn_norm = nullptr, *ffn_norm = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr;
  LoraPair lora[VZ_NTARGET];
};

// Acts: one block's activations that its backward reads and that cost GEMMs to rebuild. The
// first Work::nkeep blocks each have their own (kept from the forward); the others share one
// set, refilled by recomputing the block just before its backward.
struct Acts {
  float *q = nullptr, *k = nullptr, *v = nullptr, *lse = nullptr, *ao = nullptr, *x2 = nullptr, *g = nullptr,
        *u = nullptr, *lu[VZ_NTARGET] = {};
  __nv_bfloat16 *qb = nullptr, *kb = nullptr, *vb = nullptr;  // bf16 mode: q, k, v as attention operands
  __nv_bfloat16 *g16 = nullptr, *u16 = nullptr;  // the folded FFN's gate and up outputs (g, u null)
};

// Workspace: the per-batch buffers, carved from one slab (workspace.cu).
struct Work {
  int n = 0, maxseg = 0, R = 0, nuniq = 0;
  bool backward = false;
  const int32_t *seg = nullptr;  // host copy of the batch's segments {r0, r1, prefix}
  int nseg = 0;
  float *x = nullptr;      // backward: [L+1][n][E] every block's input and the last output; else [2][n][E]
  float *cos = nullptr, *sin = nullptr;  // [n][half]
  Acts shared;              // the recomputed blocks' activations
  std::vector<Acts> kept;   // [nkeep]: blocks 0..nkeep-1, kept from the forward
  int nkeep = 0;
  // The current block's activations: use_acts points the Acts fields at its set; xn1, rstd1,
  // xn2, rstd2 and h are always rebuilt (element-wise, from x, x2, g and u).
  float *xn1, *rstd1, *q, *k, *v, *lse, *ao, *x2, *xn2, *rstd2, *g, *u, *h, *lu[VZ_NTARGET];
  __nv_bfloat16 *g16, *u16;
  float *xf, *rstdf;
  float *S, *dP, *D;       // attention scores/probabilities, their gradient (not with flash), rowsum(dO*O)
  __nv_bfloat16 *qb, *kb, *vb, *dob, *slot;  // bf16 mode: GEMM operand copies (qb, kb, vb: of the current block)
  float *xb, *logits, *dxb;                  // head chunk
  int32_t *urow, *ustart, *t_tok;            // unique scored rows, their target ranges, target tokens
  float *t_w, *logp;
  // Backward scratch (llm.c's grads_acts): residual gradients and one block's activation grads.
  float *dy, *dx, *dx2, *dxn, *dq, *dk, *dv, *dao, *dg, *du, *dh, *tmp, *dxf;
  // The folded FFN (folded_ffn): g, u in bf16, h, dh, dg, du only as bf16 GEMM operands (dub shares hb's memory:
  // h is read for the last time before du is written), x A^T and dy B as bf16 for the adapter's
  // gradient GEMMs.
  __nv_bfloat16 *hb, *dhb, *dgb, *dub, *lub, *tmpb;
  float *dkv;  // [G][keys][head_dim]: one kv group's per-head dK or dV before attn_sum_heads
};

// Profile: VZLOCAL_CUDA_PROFILE=1 times the phases of a pass (run.cu): each mark synchronizes the
// stream and charges the wall time since the previous mark to a phase (a diagnostic: the
// synchronizations cost a little). VZLOCAL_CUDA_PROFILE=2 times every kernel, GEMM, copy and
// cross-stream wait instead, with no synchronization: an event is recorded after each (prof_op),
// an operation's time is the gap to the previous event on its stream, and the phase marks become
// events that tell which phase the operations before them belong to. vz_run_end prints the totals
// to stderr (level 2: a table by phase and operation, GEMMs by shape with their TFLOP/s). It
// needs no hardware counters, so it works where ncu cannot read them.
enum ProfPhase { P_UPLOAD, P_FWD_ATTN, P_FWD_LIN, P_FWD_OTHER, P_HEAD, P_BWD_ATTN, P_BWD_LIN, P_BWD_OTHER,
                 P_DOWNLOAD, P_NPHASE };
struct ProfOp {
  cudaStream_t stream;
  int name;      // index into Profile::names; -1: a phase mark
  ProfPhase phase;  // a phase mark's phase
  double flops;
};
struct Profile {
  int level = 0;
  bool active = false;  // level 2: between prof_start and prof_report
  double ms[P_NPHASE] = {};
  double last = 0;  // host clock at the previous mark, ms
  // Level 2: the pass's operations in issue order, ops[i] recorded events[i] (a pool kept between
  // passes), and the operations' names.
  std::vector<ProfOp> ops;
  std::vector<cudaEvent_t> events;
  std::vector<std::string> names;
};
struct vz_engine;
void prof_start(vz_engine *e);
void prof_mark(vz_engine *e, ProfPhase p);
void prof_report(vz_engine *e, int n_rows);
// prof_op (level 2) marks the end of the operation just queued on stream (nullptr: the engine's
// current stream); flops count GEMMs' work.
void prof_op_at(vz_engine *e, const char *name, double flops, cudaStream_t stream);
void prof_release(vz_engine *e);  // the event pool (engine destruction)
#define PROF_OP(...)                                                                               \
  do {                                                                                             \
    if (e->prof.level >= 2) prof_op_at(e, __VA_ARGS__);                                            \
  } while (0)

struct vz_engine {
  vz_config c;
  int qd = 0, kvd = 0, half = 0;  // n_head*head_dim, n_head_kv*head_dim, n_rot/2
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  void *blas_ws = nullptr;  // cuBLAS's workspace (blas_workspace in engine.cu)
  size_t blas_ws_bytes = 0;
  cudaDataType wtype = CUDA_R_32F;  // type of the base matrices and GEMM operands
  bool debug_sync = false;          // VZLOCAL_CUDA_SYNC=1: synchronize after every kernel and GEMM
  bool flash = false;               // attention through flash.cuh's kernels (vz_config.attention)
  bool flash_prefetch = false;      // VZLOCAL_CUDA_FLASH_PREFETCH=1: the flash backward loads the next query tile ahead (untimed)
  int keep = 0;                     // vz_config.keep_layers
  bool fold = false;                // bf16 mode: LoRA folded into the base GEMMs (fold.cu); VZLOCAL_CUDA_FOLD=0 turns it off
  int lrp = 0;                      // the target matrices' folded layout: rank rounded up to 8 (0: plain [out][in])
  bool broken = false;              // a relayout failed part way (out of memory): no more work
  Profile prof;                     // VZLOCAL_CUDA_PROFILE=1|2: time a pass's phases or operations (profile.cu)
  std::vector<LayerW> layers;
  float *out_norm = nullptr;
  void *output = nullptr;  // [vocab][embd]
  // Per-layer dequantization scratch for raw (quantized) matrices, two slots so that the next
  // block's dequantization (on deq_stream) overlaps this block's work (scratch.cu): deq_layer[s]
  // is the block slot s holds (-1: none), deq_cur the slot the running block reads; deq_ready[s]
  // marks slot s filled (on deq_stream), deq_free[s] the last use of its previous block (on stream).
  void *deq[2][VZ_NTARGET] = {};
  int deq_layer[2] = {-1, -1}, deq_cur = 0;
  cudaStream_t deq_stream = nullptr;
  cudaEvent_t deq_ready[2] = {}, deq_free[2] = {};
  bool prefetch = true;  // VZLOCAL_CUDA_PREFETCH=0: no dequantization ahead (for timing the overlap)
  // Adapter: values and gradients are each one slab in vz_set_adapter's flat layout. rank is the
  // installed adapter's (0: none); slab_rank the shapes the slabs were made for, kept while the
  // adapter is removed (the trainer alternates reference and policy passes).
  int rank = 0, slab_rank = 0;
  float scale = 0;
  std::vector<uint8_t> present;
  float *lora_slab = nullptr, *grad_slab = nullptr;
  // Page-locked host copy of one slab: the adapter's values go up and its gradients come down
  // through it. Copies between the device and pageable (Go) memory ran at 1-2 GB/s on the H100
  // machine (135-230 ms for a 7B rank-16 adapter's 161 MB of gradients); pinned, a few ms.
  float *host_stage = nullptr;
  int64_t n_flat = 0;
  // Block il's gradients are flat [layer_off[il], layer_off[il + 1]). During a backward each
  // block's go down to host_stage on copy_stream once bwd_done[il] (on stream) is reached;
  // copied[il] marks their arrival (run.cu).
  std::vector<int64_t> layer_off;
  cudaStream_t copy_stream = nullptr;
  std::vector<cudaEvent_t> bwd_done, copied;
  // Page-locked input rows (vz_input_rows) and log-probs of the pass in flight.
  float *host_rows = nullptr, *host_logp = nullptr;
  size_t host_rows_cap = 0, host_logp_cap = 0;
  struct {
    bool on = false, backward = false;  // between run_begin and run_end
    int rows = 0, n_target = 0;
    std::vector<int32_t> seg;  // the batch's segments (Work::seg points here)
  } run;
  // Workspace slab, grown on demand and kept between calls.
  char *ws = nullptr;
  size_t ws_bytes = 0;
  Work w;
  // Device memory accounting (our allocations only; cuBLAS's own workspace is not counted).
  int64_t bytes_weights = 0, bytes_adapter = 0, bytes_cur = 0, bytes_peak = 0;
};

// folded_ffn: bf16 mode with the LoRA folded (fold.cu): the FFN's F-wide intermediates (g, u, h and
// the gradients dh, dg, du) exist only in bf16, h and the gradients as the operands of the GEMMs
// that read them (layers.cu).
inline bool folded_ffn(const vz_engine *e) { return e->wtype == CUDA_R_16BF && e->fold; }

// Allocation with accounting (memory.cu).
int dalloc(vz_engine *e, void **p, size_t bytes, Err &err);
void dfree(vz_engine *e, void *p, size_t bytes);

// GEMMs (gemm.cu): row-major C[M][N] = alpha op(A) op(B) + beta C with the signature of package
// lora's sgemm; A and B of type t (fp32 or bf16), C fp32, fp32 accumulation.
int gemm(vz_engine *e, Err &err, bool ta, bool tb, int M, int N, int K, float alpha, const void *A,
         int lda, const void *B, int ldb, float beta, float *C, int ldc, cudaDataType t);
// gemm_bf16_out: a bf16 GEMM whose output (fp32 accumulation) is written as bf16, beta 0: for an
// output that is only ever the next GEMM's operand.
int gemm_bf16_out(vz_engine *e, Err &err, bool ta, bool tb, int M, int N, int K, float alpha, const void *A, int lda,
                  const void *B, int ldb, __nv_bfloat16 *C, int ldc);
int gemm_batched(vz_engine *e, Err &err, bool ta, bool tb, int M, int N, int K, float alpha,
                 const void *A, int lda, long long sA, const void *B, int ldb, long long sB,
                 float beta, float *C, int ldc, long long sC, int batch, cudaDataType t);
// to_compute returns x itself in fp32 mode, or x rounded to bf16 in dst (count values).
int to_compute(vz_engine *e, Err &err, const float *x, size_t count, __nv_bfloat16 *dst,
               const void **out);
// operand returns a layer activation x [rows][cols] as a base-GEMM operand with its row stride
// operand_ld: x itself in fp32 mode, else a bf16 copy in the operand slot, lrp columns wider
// than x (room for the folded adapter's columns, fold.cu).
int operand_ld(const vz_engine *e, int cols);
int operand(vz_engine *e, Err &err, const float *x, int rows, int cols, const void **out, int *ld);

// Kernels (kernels.cu); each launcher checks its launch.
int k_convert_bf16(vz_engine *e, Err &err, __nv_bfloat16 *dst, const float *src, size_t n);
// k_convert_bf16_ld: a contiguous [rows][cols] into a bf16 destination of row stride ldd.
int k_convert_bf16_ld(vz_engine *e, Err &err, __nv_bfloat16 *dst, int ldd, const float *src, int rows, int cols);
// k_rmsnorm_fwd: yb (may be null) also gets y in bf16 with row stride ldb (a GEMM operand).
int k_rmsnorm_fwd(vz_engine *e, Err &err, float *y, float *rstd, const float *x, const float *w, int n, int d,
                  __nv_bfloat16 *yb = nullptr, int ldb = 0);
// k_rmsnorm_bwd: dx = res + the norm's input gradient for output gradient dy (res may be dx, or
// nullptr for none): the residual stream's sum without a copy.
int k_rmsnorm_bwd(vz_engine *e, Err &err, float *dx, const float *res, const float *dy, const float *x, const float *w,
                  const float *rstd, int n, int d);
int k_rope(vz_engine *e, Err &err, float *x, int n, int heads, bool inverse);
// k_attn_operand: dst = bf16(rope(x + bias)) (rope only if asked; bias may be null) for [n][heads*head_dim].
int k_attn_operand(vz_engine *e, Err &err, __nv_bfloat16 *dst, const float *x, const float *bias, int n, int heads,
                   bool rope);
// k_swiglu_fwd: h = silu(g) u over n = rows x cols values into h (fp32, may be null) and/or hb (bf16,
// row stride ldb); k_swiglu_bwd: dg, du (row stride ld) from dh, g, u. T is float, or __nv_bfloat16
// for the folded FFN (folded_ffn), whose outputs are then bf16 operands too.
template <class T>
int k_swiglu_fwd(vz_engine *e, Err &err, float *h, __nv_bfloat16 *hb, int cols, int ldb, const T *g, const T *u,
                 size_t n);
template <class T, class O>
int k_swiglu_bwd(vz_engine *e, Err &err, O *dg, O *du, int cols, int ld, const T *dh, const T *g, const T *u,
                 size_t n);
int k_add_bias(vz_engine *e, Err &err, float *y, const float *b, int n, int d);
int k_add(vz_engine *e, Err &err, float *y, const float *x, size_t n);
int k_gather_rows(vz_engine *e, Err &err, float *dst, const float *src, const int32_t *rows, int m, int d);
int k_scatter_add_rows(vz_engine *e, Err &err, float *dst, const float *src, const int32_t *rows, int m, int d);
// k_head: log p of each target; with grad, d loss/d logits in place of the logits, or (gout set) as
// the bf16 operand gout [m][V] of the head's backward GEMM.
int k_head(vz_engine *e, Err &err, float *logits, int m, int V, const int32_t *ustart, int u0,
           const int32_t *t_tok, const float *t_w, float *logp, bool grad, __nv_bfloat16 *gout);
// k_attn_softmax writes the probabilities in place (keep_f32) and/or as bf16 into pb (the GEMM
// operand, saving a conversion pass); with use_lse it rebuilds them from the stored lse.
int k_attn_softmax(vz_engine *e, Err &err, float *S, __nv_bfloat16 *pb, bool keep_f32, int rows, int m, int nk, int p,
                   float *lse, int lse_head_stride, bool use_lse);
int k_attn_rowdot(vz_engine *e, Err &err, float *D, const float *dO, const float *O, int n, int nh, int hd);
// k_attn_dsoftmax writes dS in place, or only as bf16 into pb when pb is set.
int k_attn_dsoftmax(vz_engine *e, Err &err, float *S, __nv_bfloat16 *pb, const float *dP, const float *D, int rows,
                    int m, int nk, int p, int d_head_stride);
int k_attn_sum_heads(vz_engine *e, Err &err, float *dst, const float *tmp, int G, int nk, int hd, int p, int r0,
                     int ld);

// vz_probe_kernel_ptr names one of this library's kernels (kernels.cu).
void *vz_probe_kernel_ptr();

// Dequantization (dequant.cu): ggml_block gives a type's block shape; k_dequant writes a
// [rows][cols] matrix in the engine's precision with row stride ld.
int ggml_block(int type, int *elems, int *bytes);
int k_dequant(vz_engine *e, Err &err, void *dst, const void *src, int type, int rows, int cols, int ld);
int k_dequant_f32(vz_engine *e, Err &err, float *dst, const void *src, int type, size_t n);

// LoRA folded into the base GEMMs (fold.cu). relayout_weights gives the target matrices room for
// a padded rank rp; pack_lora writes layer il's adapter into target t's matrix M (resident or the
// dequantized scratch), pack_resident into every resident one. k_scaled_cols writes
// bf16(scale src) [rows][r] into columns col0.. of dst, zero up to rp columns.
int relayout_weights(vz_engine *e, Err &err, int rp);
int pack_lora(vz_engine *e, Err &err, int il, int t, void *M);
int pack_resident(vz_engine *e, Err &err);
int k_scaled_cols(vz_engine *e, Err &err, __nv_bfloat16 *dst, int ldd, int col0, const float *src, int rows, int r,
                  int rp, float scale);

// The dequantization scratch (scratch.cu). prepare_layer readies block il's raw matrices for the
// work queued next on the compute stream (their dequantization queued if no slot holds them) and
// starts block next's (-1: none) into the other slot. scratch_invalidate forgets what the slots
// hold (new weights, a new adapter to pack in, a new layout).
int prepare_layer(vz_engine *e, Err &err, int il, int next);
void scratch_invalidate(vz_engine *e);
int scratch_alloc(vz_engine *e, Err &err, int kind);  // both slots of a target kind, once
size_t weight_bytes(const vz_engine *e, int kind);

// Layers (layers.cu) and attention (attention.cu).
int layer_forward(vz_engine *e, Err &err, int il, const float *x, float *y);
int layer_backward(vz_engine *e, Err &err, int il, const float *x, const float *dy, float *dx);
// layer_restore readies a kept block for its backward without GEMMs: its weights (dequantized)
// and the element-wise activations rebuilt from its input x and its kept x2, g, u.
int layer_restore(vz_engine *e, Err &err, int il, const float *x);
// use_acts points the Work's current-block fields at block il's activation set.
void use_acts(Work &w, int il);
int attention_forward(vz_engine *e, Err &err);
int attention_backward(vz_engine *e, Err &err);
// The flash path (flash.cu); flash_supports says whether it runs this engine's shapes.
bool flash_supports(const vz_config &c, cudaDataType wtype);
int flash_init(const vz_config &c, Err &err);
int flash_forward(vz_engine *e, Err &err);
int flash_backward(vz_engine *e, Err &err);

// A pass over a batch (run.cu): the host's checks and bookkeeping (the largest segment, the
// unique scored rows), then begin (queue it all), wait for a layer's gradients, end.
struct Plan {
  int maxseg = 0;
  std::vector<int32_t> urow, ustart;
};
int plan_batch(const vz_engine *e, const vz_batch *b, Plan *pl, Err &err);
int create_streams(vz_engine *e, Err &err);  // the copy and dequantization streams and their events
void destroy_streams(vz_engine *e);
int input_rows(vz_engine *e, Err &err, int n, float **rows);
int run_begin(vz_engine *e, Err &err, const vz_batch *b, bool backward);
int run_wait_layer(vz_engine *e, Err &err, int layer);
int run_end(vz_engine *e, Err &err, float *logp);

// Workspace (workspace.cu).
size_t workspace_layout(const vz_engine *e, Work *w, char *base, int n, int maxseg, int nuniq,
                        int ntarget, bool backward, int nkeep);

// linear shape of target t: in and out.
void target_shape(const vz_engine *e, int t, int *in, int *out);
