// vz_cuda.h: the C ABI of libvzlocal_cuda.so, vzlocal's CUDA gradient engine.
//
// The Go package lora/cuda dlopens the library and calls these functions through function
// pointers, so the Go binary has no link-time dependency on CUDA. Every function returns 0 on
// success or a non-zero code with a message in err (errlen bytes, NUL-terminated); no function
// aborts the process. Matrices are row-major float32 on the host, as in package lora.
#ifndef VZ_CUDA_H
#define VZ_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VZ_ABI_VERSION 6

// The library is built with -fvisibility=hidden; only these functions are exported.
#if defined(__GNUC__)
#define VZ_API __attribute__((visibility("default")))
#else
#define VZ_API
#endif

// Return codes.
#define VZ_OK 0
#define VZ_ERR_CUDA 1     // a CUDA runtime call failed
#define VZ_ERR_CUBLAS 2   // a cuBLAS call failed
#define VZ_ERR_ARG 3      // bad argument (shape, index, missing weight)
#define VZ_ERR_NODEVICE 4 // no usable GPU

// Precision of the base weights on the GPU and of the base GEMMs' operands.
#define VZ_PREC_F32 0  // fp32 weights, fp32 GEMMs (no TF32): the tight-parity mode
#define VZ_PREC_BF16 1 // bf16 weights, activations rounded to bf16 at GEMM inputs, fp32 accumulation

// Attention implementations (vz_config.attention).
#define VZ_ATTN_AUTO 0  // flash where it runs (bf16, head_dim 64 or 128), the GEMM path otherwise
#define VZ_ATTN_GEMM 1  // scores materialized per segment and kv group, cuBLAS GEMMs (attention.cu)
#define VZ_ATTN_FLASH 2 // tiled kernels, scores never in device memory (flash.cuh): bf16, head_dim 64 or 128

// Rope types (lora.RopeType).
#define VZ_ROPE_NORM 0
#define VZ_ROPE_NEOX 1

// Weight kinds for vz_set_weight. 0..6 are the LoRA targets in lora.Targets order.
enum {
  VZ_W_Q = 0, VZ_W_K, VZ_W_V, VZ_W_O, VZ_W_GATE, VZ_W_UP, VZ_W_DOWN, // [out][in] matrices
  VZ_W_ATTN_NORM, VZ_W_FFN_NORM, VZ_W_BQ, VZ_W_BK, VZ_W_BV,           // per-layer vectors
  VZ_W_OUT_NORM, VZ_W_OUTPUT,                                         // layer -1: final norm, head [vocab][embd]
  VZ_W_COUNT
};
#define VZ_NTARGET 7

// ggml tensor types vz_set_weight_raw accepts (values are ggml_type).
#define VZ_GGML_F32 0
#define VZ_GGML_F16 1
#define VZ_GGML_Q8_0 8
#define VZ_GGML_Q4_K 12
#define VZ_GGML_Q6_K 14
#define VZ_GGML_BF16 30

typedef struct {
  int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_rot;
  float rms_eps;
  int rope_type;
  int has_qkv_bias;
  int precision;  // VZ_PREC_*
  int head_chunk; // rows per vocabulary-projection chunk (<= 0: 256)
  int device;     // CUDA device ordinal
  int attention;  // VZ_ATTN_*
  // Blocks whose activations the forward keeps for the backward (the first keep_layers blocks;
  // the others are recomputed from their input): 0 recomputes every block, -1 keeps as many as
  // fit in the device memory free at the time (leaving max(1 GiB, 1/16 of the device) free).
  int keep_layers;
} vz_config;

// A packed batch, laid out by the Go side exactly as lora's CPU engine packs it: the shared prompt
// once, then each sequence's remainder; seg[i] = {r0, r1, prefix}.
typedef struct {
  int n;                // packed rows
  const float *x0;      // [n][n_embd] input rows (token embeddings gathered on the host, or mmproj rows)
  const float *rope_cos; // [n][n_rot/2]
  const float *rope_sin; // [n][n_rot/2]
  int n_seg;
  const int32_t *seg;   // [n_seg][3]
  int n_target;
  const int32_t *t_row; // [n_target] packed row whose logits score the token, sorted ascending
  const int32_t *t_tok; // [n_target] token id
  const float *t_w;     // [n_target] loss weight w_t (NULL for log-probs only)
  float inv_temp;       // logits are scaled by this before the log-softmax
} vz_batch;

typedef struct vz_engine vz_engine;

VZ_API int vz_abi_version(void);

// vz_probe reports the device count and the first device's name, compute capability and memory.
VZ_API int vz_probe(int *n_dev, char *name, int name_len, int *cc_major, int *cc_minor, size_t *mem_free,
             size_t *mem_total, char *err, int errlen);

VZ_API int vz_create(const vz_config *cfg, vz_engine **out, char *err, int errlen);
VZ_API void vz_destroy(vz_engine *e);

// vz_set_weight uploads one base tensor (converted to the engine's precision for matrices;
// vectors stay fp32). layer = -1 for VZ_W_OUT_NORM and VZ_W_OUTPUT.
VZ_API int vz_set_weight(vz_engine *e, int layer, int kind, const float *data, int64_t n, char *err, int errlen);

// vz_set_weight_raw uploads one layer matrix (kind 0..6) as the GGUF stores it: ggml blocks of
// ggml_type, rows of `in` values, nbytes in all. It stays in that form on the GPU and is
// dequantized into a per-layer scratch (in the engine's precision) just before the layer runs:
// the memory plan for large models in small GPUs (docs/cuda.md). With layer = -1 and
// VZ_W_OUTPUT, the head is dequantized once on the GPU into the engine's precision (no fp32 copy
// on the host).
VZ_API int vz_set_weight_raw(vz_engine *e, int layer, int kind, int ggml_type, const void *data, int64_t nbytes,
                             char *err, int errlen);

// vz_dequantize expands n values of ggml_type (nbytes of blocks) to fp32 in host memory out,
// on the GPU (for the token-embedding rows the host gathers, without ggml on the host).
VZ_API int vz_dequantize(vz_engine *e, int ggml_type, const void *data, int64_t nbytes, int64_t n, float *out,
                         char *err, int errlen);

// vz_set_adapter installs LoRA pairs: present[l*7+t] says whether target t of layer l is adapted;
// flat holds, in (layer, target) order over present pairs, A [rank][in] then B [out][rank].
// rank = 0 removes the adapter.
VZ_API int vz_set_adapter(vz_engine *e, int rank, float scale, const uint8_t *present, const float *flat,
                   int64_t n_flat, char *err, int errlen);

// vz_input_rows returns a page-locked host buffer of n rows of n_embd floats for vz_batch.x0: filled
// in place by the caller, it goes to the GPU at the bus's full speed while the caller waits for
// nothing (pageable memory is staged by the driver at a few GB/s). Valid until the next
// vz_input_rows or vz_destroy; the caller leaves it alone from vz_run_begin to vz_run_end.
VZ_API int vz_input_rows(vz_engine *e, int n, float **rows, char *err, int errlen);

// A pass over a batch, in three calls so that the caller's work overlaps the GPU's.
// vz_run_begin checks the batch and queues the forward and the chunked log-softmax and, with
// backward != 0 (an adapter installed and b->t_w set), the backward; it returns without waiting
// (b's arrays are read before it returns, except x0 when it is vz_input_rows's buffer). In a
// backward each layer's gradients come down to the host as soon as that layer's backward is done,
// the last layer's first: vz_run_wait_layer(l) returns once layer l's are there. vz_run_end waits
// for the rest and writes log p of every target to logp; it must follow every vz_run_begin that
// succeeded (one that failed has already waited for what it queued), and no other call may come
// in between. The gradients, d(loss)/d(A, B) in vz_set_adapter's flat layout with loss = sum_t w_t
// logp_t, are read in place through vz_gradients: a page-locked buffer valid until the next
// vz_run_begin, vz_set_adapter or vz_destroy.
VZ_API int vz_run_begin(vz_engine *e, const vz_batch *b, int backward, char *err, int errlen);
VZ_API int vz_run_wait_layer(vz_engine *e, int layer, char *err, int errlen);
VZ_API int vz_run_end(vz_engine *e, float *logp, char *err, int errlen);
VZ_API int vz_gradients(const vz_engine *e, const float **grads, int64_t *n);

// vz_release_workspace frees the pass workspace (the next pass allocates it again): between
// training steps the GPU's memory goes back to its other user, llama.cpp's rollouts, which is what
// lets keep_layers = -1 keep as many blocks as fit at each backward.
VZ_API int vz_release_workspace(vz_engine *e, char *err, int errlen);

// vz_workspace_bytes is the device memory a pass (vz_run_begin) allocates for a batch (weights and adapter excluded).
VZ_API int64_t vz_workspace_bytes(const vz_engine *e, const vz_batch *b, int backward);

// vz_memory reports the bytes of weights, adapter (values and gradients), the current workspace,
// and the high-water mark of all of this engine's device allocations.
VZ_API int vz_memory(const vz_engine *e, int64_t *weights, int64_t *adapter, int64_t *workspace, int64_t *peak);

#ifdef __cplusplus
}
#endif
#endif
