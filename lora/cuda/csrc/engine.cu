// engine.cu: the C ABI (vz_cuda.h): probe, create/destroy, weight and adapter upload; a pass over
// a batch is run.cu's.
#include "internal.cuh"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace {

// The device is per host thread in the CUDA runtime and Go moves goroutines between threads, so
// every entry point selects it again (and refuses an engine a failed relayout left inconsistent).
// ENTER_RUN is for the calls that belong to a pass in flight; every other call refuses one.
#define ENTER_RUN(e)                                                                               \
  Err err{errbuf, errlen};                                                                         \
  if ((e) == nullptr) return vz_seterr(err, VZ_ERR_ARG, "nil engine");                             \
  if ((e)->broken) return vz_seterr(err, VZ_ERR_CUDA, "engine unusable after a failed relayout; reopen");   \
  CUDA_CK(cudaSetDevice((e)->c.device))
#define ENTER(e)                                                                                   \
  ENTER_RUN(e);                                                                                    \
  if ((e)->run.on) return vz_seterr(err, VZ_ERR_ARG, "a pass is in flight (vz_run_begin without vz_run_end)")

// env_is: whether the environment variable is set and starts with v (the engine's switches).
bool env_is(const char *name, char v) {
  const char *s = getenv(name);
  return s != nullptr && s[0] == v;
}

size_t weight_elems(const vz_engine *e, int kind) {
  const vz_config &c = e->c;
  int in, out;
  switch (kind) {
    case VZ_W_ATTN_NORM: case VZ_W_FFN_NORM: case VZ_W_OUT_NORM: return c.n_embd;
    case VZ_W_BQ: return e->qd;
    case VZ_W_BK: case VZ_W_BV: return e->kvd;
    case VZ_W_OUTPUT: return (size_t)c.n_vocab * c.n_embd;
    default: target_shape(e, kind, &in, &out); return (size_t)in * out;
  }
}

// h2d copies host memory to the device on the engine's stream and waits: the stream is
// non-blocking, so a plain cudaMemcpy (legacy default stream) would not be ordered before it.
int h2d(vz_engine *e, Err &err, void *dst, const void *src, size_t bytes) {
  if (bytes == 0) return 0;
  CUDA_CK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, e->stream));
  CUDA_CK(cudaStreamSynchronize(e->stream));
  return 0;
}

bool is_matrix(int kind) { return kind < VZ_NTARGET || kind == VZ_W_OUTPUT; }

// upload_matrix copies fp32 host data into dst in the engine's precision, through a bounded
// staging buffer in bf16 mode (a 7B model's head is 2.2 GB as fp32).
int upload_matrix(vz_engine *e, Err &err, void *dst, const float *src, size_t n) {
  if (e->wtype == CUDA_R_32F) return h2d(e, err, dst, src, n * 4);
  const size_t chunk = (size_t)16 << 20;  // floats: 64 MB of staging
  size_t sz = std::min(chunk, n) * 4;
  void *stage;
  TRY(dalloc(e, &stage, sz, err));
  int rc = 0;
  for (size_t o = 0; o < n && rc == 0; o += chunk) {
    size_t m = std::min(chunk, n - o);
    cudaError_t ce = cudaMemcpyAsync(stage, src + o, m * 4, cudaMemcpyHostToDevice, e->stream);
    if (ce != cudaSuccess) {
      rc = vz_seterr(err, VZ_ERR_CUDA, "upload: cudaMemcpyAsync: %s", cudaGetErrorString(ce));
      break;
    }
    rc = k_convert_bf16(e, err, (__nv_bfloat16 *)dst + o, (const float *)stage, m);
  }
  if (rc == 0) {
    cudaError_t ce = cudaStreamSynchronize(e->stream);
    if (ce != cudaSuccess) rc = vz_seterr(err, VZ_ERR_CUDA, "upload: cudaStreamSynchronize: %s", cudaGetErrorString(ce));
  }
  dfree(e, stage, sz);
  return rc;
}

void **weight_slot(vz_engine *e, int layer, int kind) {
  if (layer < 0) return kind == VZ_W_OUT_NORM ? (void **)&e->out_norm : &e->output;
  LayerW &L = e->layers[layer];
  switch (kind) {
    case VZ_W_ATTN_NORM: return (void **)&L.attn_norm;
    case VZ_W_FFN_NORM: return (void **)&L.ffn_norm;
    case VZ_W_BQ: return (void **)&L.bq;
    case VZ_W_BK: return (void **)&L.bk;
    case VZ_W_BV: return (void **)&L.bv;
    default: return &L.w[kind];
  }
}

}  // namespace

// weight_bytes: a target matrix in the folded layout (fold.cu) has lrp more rows and columns.
size_t weight_bytes(const vz_engine *e, int kind) {
  if (kind < VZ_NTARGET && e->lrp > 0) {
    int in, out;
    target_shape(e, kind, &in, &out);
    return (size_t)(out + e->lrp) * (in + e->lrp) * 2;
  }
  return weight_elems(e, kind) * (is_matrix(kind) && e->wtype == CUDA_R_16BF ? 2 : 4);
}

namespace {

void free_adapter(vz_engine *e) {
  dfree(e, e->lora_slab, (size_t)e->n_flat * 4);
  dfree(e, e->grad_slab, (size_t)e->n_flat * 4);
  if (e->host_stage) cudaFreeHost(e->host_stage);
  e->host_stage = nullptr;
  e->bytes_adapter = 0;
  e->lora_slab = e->grad_slab = nullptr;
  e->n_flat = 0;
  e->rank = e->slab_rank = 0;
  e->present.clear();
  for (auto &L : e->layers)
    for (auto &p : L.lora) p = LoraPair{};
}

// set_output_raw dequantizes a raw head once into the engine's precision.
int set_output_raw(vz_engine *e, Err &err, int ggml_type, const void *data, int64_t nbytes, int qk, int qb) {
  const vz_config &c = e->c;
  if (c.n_embd % qk != 0 || nbytes != (int64_t)c.n_vocab * (c.n_embd / qk) * qb)
    return vz_seterr(err, VZ_ERR_ARG, "raw head: %lld bytes of type %d, want %lld", (long long)nbytes, ggml_type,
                     (long long)c.n_vocab * (c.n_embd / qk) * qb);
  if (!e->output) {
    TRY(dalloc(e, &e->output, weight_bytes(e, VZ_W_OUTPUT), err));
    e->bytes_weights += (int64_t)weight_bytes(e, VZ_W_OUTPUT);
  }
  void *tmp;
  TRY(dalloc(e, &tmp, (size_t)nbytes, err));
  int rc = h2d(e, err, tmp, data, (size_t)nbytes);
  if (rc == 0) rc = k_dequant(e, err, e->output, tmp, ggml_type, c.n_vocab, c.n_embd, c.n_embd);
  if (rc == 0) {
    cudaError_t ce = cudaStreamSynchronize(e->stream);
    if (ce != cudaSuccess) rc = vz_seterr(err, VZ_ERR_CUDA, "raw head: %s", cudaGetErrorString(ce));
  }
  dfree(e, tmp, (size_t)nbytes);
  return rc;
}

}  // namespace

extern "C" {

int vz_abi_version(void) { return VZ_ABI_VERSION; }

int vz_probe(int *n_dev, char *name, int name_len, int *cc_major, int *cc_minor, size_t *mem_free,
             size_t *mem_total, char *errbuf, int errlen) {
  Err err{errbuf, errlen};
  *n_dev = 0;
  int n = 0;
  cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    cudaGetLastError();
    return vz_seterr(err, VZ_ERR_NODEVICE, "no usable CUDA device: cudaGetDeviceCount: %s", cudaGetErrorString(rc));
  }
  if (n == 0) return vz_seterr(err, VZ_ERR_NODEVICE, "no CUDA device");
  *n_dev = n;
  cudaDeviceProp p;
  CUDA_CK(cudaGetDeviceProperties(&p, 0));
  snprintf(name, (size_t)name_len, "%s", p.name);
  *cc_major = p.major;
  *cc_minor = p.minor;
  CUDA_CK(cudaSetDevice(0));
  CUDA_CK(cudaMemGetInfo(mem_free, mem_total));
  return 0;
}

// blas_workspace gives cuBLAS a workspace of its own, after cublasSetStream (which resets a
// handle to the default pool): the size cuBLAS's documentation recommends, 32 MiB on Hopper and
// later, 4 MiB before (PyTorch, so PEFT, sets the same). VZLOCAL_CUDA_BLAS_WS_MIB overrides it
// for timing; 0 leaves cuBLAS its default pool.
int blas_workspace(vz_engine *e, int cc_major, Err &err) {
  size_t mib = cc_major >= 9 ? 32 : 4;
  if (const char *v = getenv("VZLOCAL_CUDA_BLAS_WS_MIB")) {
    char *end = nullptr;
    long n = strtol(v, &end, 10);
    if (end == v || *end != 0 || n < 0 || n > 1024)
      return vz_seterr(err, VZ_ERR_ARG, "VZLOCAL_CUDA_BLAS_WS_MIB=%s: want a number of MiB from 0 to 1024", v);
    mib = (size_t)n;
  }
  if (mib == 0) return 0;
  TRY(dalloc(e, &e->blas_ws, mib << 20, err));
  e->blas_ws_bytes = mib << 20;
  BLAS_CK(cublasSetWorkspace(e->blas, e->blas_ws, e->blas_ws_bytes));
  return 0;
}

int vz_create(const vz_config *cfg, vz_engine **out, char *errbuf, int errlen) {
  Err err{errbuf, errlen};
  *out = nullptr;
  const vz_config &c = *cfg;
  if (c.n_layer <= 0 || c.n_embd <= 0 || c.n_head <= 0 || c.n_head_kv <= 0 || c.head_dim <= 0 || c.n_ff <= 0 ||
      c.n_vocab <= 0 || c.n_head % c.n_head_kv != 0 || c.n_rot <= 0 || c.n_rot % 2 != 0 || c.n_rot > c.head_dim)
    return vz_seterr(err, VZ_ERR_ARG, "invalid model dimensions");
  if (c.precision != VZ_PREC_F32 && c.precision != VZ_PREC_BF16)
    return vz_seterr(err, VZ_ERR_ARG, "unknown precision %d", c.precision);
  if (c.rope_type != VZ_ROPE_NORM && c.rope_type != VZ_ROPE_NEOX)
    return vz_seterr(err, VZ_ERR_ARG, "unknown rope type %d", c.rope_type);
  CUDA_CK(cudaSetDevice(c.device));
  cudaDeviceProp p;
  CUDA_CK(cudaGetDeviceProperties(&p, c.device));
  if (c.precision == VZ_PREC_BF16 && p.major < 8)
    return vz_seterr(err, VZ_ERR_NODEVICE, "%s (sm_%d%d) has no bf16 tensor cores; use the fp32 precision", p.name,
                     p.major, p.minor);
  if (c.keep_layers < -1) return vz_seterr(err, VZ_ERR_ARG, "keep_layers %d: want -1 (as many as fit) or >= 0", c.keep_layers);
  if (c.attention < VZ_ATTN_AUTO || c.attention > VZ_ATTN_FLASH)
    return vz_seterr(err, VZ_ERR_ARG, "unknown attention implementation %d", c.attention);
  cudaDataType wtype = c.precision == VZ_PREC_BF16 ? CUDA_R_16BF : CUDA_R_32F;
  // Auto: flash where its kernels exist (measured faster than the GEMM path at every size,
  // docs/cuda.md), the GEMM path otherwise (fp32, other head sizes).
  bool flash = c.attention == VZ_ATTN_FLASH || (c.attention == VZ_ATTN_AUTO && flash_supports(c, wtype));
  if (flash && !flash_supports(c, wtype))
    return vz_seterr(err, VZ_ERR_ARG, "flash attention needs the bf16 precision and head_dim 64 or 128 (have %s, %d)",
                     c.precision == VZ_PREC_BF16 ? "bf16" : "f32", c.head_dim);
  // A kernel of this library must exist for the device's architecture (we build for one arch).
  cudaFuncAttributes fa;
  cudaError_t ke = cudaFuncGetAttributes(&fa, vz_probe_kernel_ptr());
  if (ke != cudaSuccess) {
    cudaGetLastError();
    return vz_seterr(err, VZ_ERR_NODEVICE, "libvzlocal_cuda.so has no kernels for %s (sm_%d%d): %s; rebuild with CUDA_ARCH=%d%d",
                     p.name, p.major, p.minor, cudaGetErrorString(ke), p.major, p.minor);
  }
  if (flash) TRY(flash_init(c, err));
  vz_engine *e = new vz_engine();
  e->c = c;
  e->flash = flash;
  e->keep = c.keep_layers;
  e->fold = wtype == CUDA_R_16BF && !env_is("VZLOCAL_CUDA_FOLD", '0');
  e->prefetch = !env_is("VZLOCAL_CUDA_PREFETCH", '0');
  e->flash_prefetch = env_is("VZLOCAL_CUDA_FLASH_PREFETCH", '1');
  if (e->c.head_chunk <= 0) e->c.head_chunk = 256;
  e->qd = c.n_head * c.head_dim;
  e->kvd = c.n_head_kv * c.head_dim;
  e->half = c.n_rot / 2;
  e->wtype = wtype;
  e->layers.resize(c.n_layer);
  e->debug_sync = env_is("VZLOCAL_CUDA_SYNC", '1');
  e->prof.level = env_is("VZLOCAL_CUDA_PROFILE", '1') ? 1 : env_is("VZLOCAL_CUDA_PROFILE", '2') ? 2 : 0;
  int rc = 0;
  cudaError_t ce = cudaStreamCreateWithFlags(&e->stream, cudaStreamNonBlocking);
  if (ce != cudaSuccess) {
    e->stream = nullptr;
    rc = vz_seterr(err, VZ_ERR_CUDA, "cudaStreamCreate: %s", cudaGetErrorString(ce));
  }
  if (rc == 0) {
    cublasStatus_t bs = cublasCreate(&e->blas);
    if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetStream(e->blas, e->stream);
    if (bs != CUBLAS_STATUS_SUCCESS) rc = vz_seterr(err, VZ_ERR_CUBLAS, "cublasCreate/SetStream: status %d", (int)bs);
  }
  if (rc == 0) rc = blas_workspace(e, p.major, err);
  if (rc == 0) rc = create_streams(e, err);
  if (rc != 0) {
    vz_destroy(e);
    return rc;
  }
  *out = e;
  return 0;
}

void vz_destroy(vz_engine *e) {
  if (e == nullptr) return;
  cudaSetDevice(e->c.device);
  if (e->stream) cudaStreamSynchronize(e->stream);
  destroy_streams(e);  // after their queued work
  free_adapter(e);
  dfree(e, e->ws, e->ws_bytes);
  for (int il = 0; il < e->c.n_layer; il++) {
    for (int k = 0; k < VZ_W_OUT_NORM; k++) dfree(e, *weight_slot(e, il, k), weight_bytes(e, k));
    for (int t = 0; t < VZ_NTARGET; t++) dfree(e, e->layers[il].raw[t], e->layers[il].rbytes[t]);
  }
  for (auto &slot : e->deq)
    for (int t = 0; t < VZ_NTARGET; t++) dfree(e, slot[t], weight_bytes(e, t));
  dfree(e, e->out_norm, weight_bytes(e, VZ_W_OUT_NORM));
  dfree(e, e->output, weight_bytes(e, VZ_W_OUTPUT));
  if (e->blas) cublasDestroy(e->blas);
  dfree(e, e->blas_ws, e->blas_ws_bytes);  // after the handle that uses it
  prof_release(e);
  if (e->stream) cudaStreamDestroy(e->stream);
  delete e;
}

int vz_set_weight(vz_engine *e, int layer, int kind, const float *data, int64_t n, char *errbuf, int errlen) {
  ENTER(e);
  bool global = kind == VZ_W_OUT_NORM || kind == VZ_W_OUTPUT;
  if (kind < 0 || kind >= VZ_W_COUNT || (global != (layer == -1)) || layer >= e->c.n_layer || layer < -1)
    return vz_seterr(err, VZ_ERR_ARG, "weight kind %d for layer %d is invalid", kind, layer);
  if ((size_t)n != weight_elems(e, kind))
    return vz_seterr(err, VZ_ERR_ARG, "weight kind %d of layer %d: %lld values, want %zu", kind, layer, (long long)n,
                     weight_elems(e, kind));
  if (kind < VZ_NTARGET && e->layers[layer].raw[kind])
    return vz_seterr(err, VZ_ERR_ARG, "weight kind %d of layer %d was uploaded raw", kind, layer);
  if (kind < VZ_NTARGET && e->lrp > 0)
    return vz_seterr(err, VZ_ERR_ARG, "weight kind %d of layer %d: layer matrices are uploaded before the first adapter",
                     kind, layer);
  void **slot = weight_slot(e, layer, kind);
  size_t bytes = weight_bytes(e, kind);
  if (*slot == nullptr) {
    TRY(dalloc(e, slot, bytes, err));
    e->bytes_weights += (int64_t)bytes;
  }
  if (is_matrix(kind)) return upload_matrix(e, err, *slot, data, (size_t)n);
  return h2d(e, err, *slot, data, bytes);
}

int vz_set_weight_raw(vz_engine *e, int layer, int kind, int ggml_type, const void *data, int64_t nbytes,
                      char *errbuf, int errlen) {
  ENTER(e);
  int qk, qb;
  if (ggml_block(ggml_type, &qk, &qb) != 0)
    return vz_seterr(err, VZ_ERR_ARG, "raw weight kind %d of layer %d: ggml type %d is not supported on the GPU", kind,
                     layer, ggml_type);
  if (layer == -1 && kind == VZ_W_OUTPUT) return set_output_raw(e, err, ggml_type, data, nbytes, qk, qb);
  if (layer < 0 || layer >= e->c.n_layer || kind < 0 || kind >= VZ_NTARGET)
    return vz_seterr(err, VZ_ERR_ARG, "raw weight kind %d for layer %d is invalid", kind, layer);
  int in, out;
  target_shape(e, kind, &in, &out);
  if (in % qk != 0 || nbytes != (int64_t)out * (in / qk) * qb)
    return vz_seterr(err, VZ_ERR_ARG, "raw weight kind %d of layer %d: %lld bytes of type %d, want %lld for [%d][%d]",
                     kind, layer, (long long)nbytes, ggml_type, (long long)out * (in / qk) * qb, out, in);
  LayerW &L = e->layers[layer];
  if (L.w[kind]) return vz_seterr(err, VZ_ERR_ARG, "weight kind %d of layer %d was uploaded dequantized", kind, layer);
  if (L.raw[kind] && (L.rbytes[kind] != (size_t)nbytes)) {
    dfree(e, L.raw[kind], L.rbytes[kind]);
    e->bytes_weights -= (int64_t)L.rbytes[kind];
    L.raw[kind] = nullptr;
  }
  if (!L.raw[kind]) {
    TRY(dalloc(e, &L.raw[kind], (size_t)nbytes, err));
    L.rbytes[kind] = (size_t)nbytes;
    e->bytes_weights += nbytes;
  }
  L.rtype[kind] = ggml_type;
  TRY(scratch_alloc(e, err, kind));
  scratch_invalidate(e);
  return h2d(e, err, L.raw[kind], data, (size_t)nbytes);
}

int vz_dequantize(vz_engine *e, int ggml_type, const void *data, int64_t nbytes, int64_t n, float *out, char *errbuf,
                  int errlen) {
  ENTER(e);
  int qk, qb;
  if (ggml_block(ggml_type, &qk, &qb) != 0)
    return vz_seterr(err, VZ_ERR_ARG, "dequantize: ggml type %d is not supported on the GPU", ggml_type);
  if (n <= 0 || n % qk != 0 || nbytes != n / qk * qb)
    return vz_seterr(err, VZ_ERR_ARG, "dequantize: %lld bytes of type %d for %lld values", (long long)nbytes, ggml_type,
                     (long long)n);
  // In chunks of whole blocks, so that a 7B token embedding needs no 2 GB device buffer.
  const int64_t chunk = (int64_t)qk * ((16ll << 20) / qk);
  int64_t m0 = std::min(chunk, n);
  void *src, *dst;
  TRY(dalloc(e, &src, (size_t)(m0 / qk * qb), err));
  int rc = dalloc(e, &dst, (size_t)m0 * 4, err);
  for (int64_t o = 0; rc == 0 && o < n; o += chunk) {
    int64_t m = std::min(chunk, n - o);
    rc = h2d(e, err, src, (const char *)data + o / qk * qb, (size_t)(m / qk * qb));
    if (rc == 0) rc = k_dequant_f32(e, err, (float *)dst, src, ggml_type, (size_t)m);
    if (rc == 0) {
      cudaError_t ce = cudaMemcpyAsync(out + o, dst, (size_t)m * 4, cudaMemcpyDeviceToHost, e->stream);
      if (ce == cudaSuccess) ce = cudaStreamSynchronize(e->stream);
      if (ce != cudaSuccess) rc = vz_seterr(err, VZ_ERR_CUDA, "dequantize: %s", cudaGetErrorString(ce));
    }
  }
  dfree(e, dst, (size_t)m0 * 4);  // dfree ignores a null pointer (a failed allocation)
  dfree(e, src, (size_t)(m0 / qk * qb));
  return rc;
}

int vz_set_adapter(vz_engine *e, int rank, float scale, const uint8_t *present, const float *flat, int64_t n_flat,
                   char *errbuf, int errlen) {
  ENTER(e);
  CUDA_CK(cudaStreamSynchronize(e->stream));
  if (rank == 0) {
    // Keep the slabs (and the pinned stage, whose allocation page-locks 161 MB at 7B rank 16):
    // the same adapter usually comes back for the next pass. The layers read rank, not the slabs.
    e->rank = 0;
    return 0;
  }
  int L = e->c.n_layer;
  int64_t want = 0;
  for (int i = 0; i < L * VZ_NTARGET; i++) {
    if (!present[i]) continue;
    int in, out;
    target_shape(e, i % VZ_NTARGET, &in, &out);
    want += (int64_t)rank * (in + out);
  }
  if (rank < 0 || want != n_flat)
    return vz_seterr(err, VZ_ERR_ARG, "adapter: %lld values for rank %d, want %lld", (long long)n_flat, rank, (long long)want);
  bool same = rank == e->slab_rank && n_flat == e->n_flat &&
              std::equal(e->present.begin(), e->present.end(), present) && (int)e->present.size() == L * VZ_NTARGET;
  if (!same) {  // new shapes: reallocate; an optimizer step of the same adapter is only a copy
    free_adapter(e);
    void *a, *g;
    TRY(dalloc(e, &a, (size_t)n_flat * 4, err));
    e->lora_slab = (float *)a;
    e->n_flat = n_flat;
    TRY(dalloc(e, &g, (size_t)n_flat * 4, err));
    e->grad_slab = (float *)g;
    CUDA_CK(cudaMallocHost((void **)&e->host_stage, (size_t)n_flat * 4));
    e->bytes_adapter = 2 * n_flat * 4;
    e->slab_rank = rank;
    e->present.assign(present, present + L * VZ_NTARGET);
    int64_t off = 0;
    e->layer_off.assign(L + 1, 0);
    for (int i = 0; i < L * VZ_NTARGET; i++) {
      if (present[i]) {
        int in, out;
        target_shape(e, i % VZ_NTARGET, &in, &out);
        LoraPair &lp = e->layers[i / VZ_NTARGET].lora[i % VZ_NTARGET];
        lp.a = e->lora_slab + off, lp.ga = e->grad_slab + off;
        off += (int64_t)rank * in;
        lp.b = e->lora_slab + off, lp.gb = e->grad_slab + off;
        off += (int64_t)rank * out;
      }
      e->layer_off[i / VZ_NTARGET + 1] = off;  // the flat layout is layer by layer
    }
  }
  e->rank = rank;
  e->scale = scale;
  memcpy(e->host_stage, flat, (size_t)n_flat * 4);
  TRY(h2d(e, err, e->lora_slab, e->host_stage, (size_t)n_flat * 4));
  if (!e->fold) return 0;
  TRY(relayout_weights(e, err, (rank + 7) / 8 * 8));
  return pack_resident(e, err);  // stream-ordered before the next pass
}

int vz_input_rows(vz_engine *e, int n, float **rows, char *errbuf, int errlen) {
  ENTER(e);
  return input_rows(e, err, n, rows);
}

int vz_run_begin(vz_engine *e, const vz_batch *b, int backward, char *errbuf, int errlen) {
  ENTER(e);
  if (b == nullptr) return vz_seterr(err, VZ_ERR_ARG, "nil batch");
  return run_begin(e, err, b, backward != 0);
}

int vz_run_wait_layer(vz_engine *e, int layer, char *errbuf, int errlen) {
  ENTER_RUN(e);
  return run_wait_layer(e, err, layer);
}

int vz_run_end(vz_engine *e, float *logp, char *errbuf, int errlen) {
  ENTER_RUN(e);
  return run_end(e, err, logp);
}

int vz_release_workspace(vz_engine *e, char *errbuf, int errlen) {
  ENTER(e);
  dfree(e, e->ws, e->ws_bytes);
  e->ws = nullptr;
  e->ws_bytes = 0;
  return 0;
}

int vz_gradients(const vz_engine *e, const float **grads, int64_t *n) {
  if (e == nullptr) return VZ_ERR_ARG;
  *grads = e->host_stage;
  *n = e->n_flat;
  return 0;
}

int64_t vz_workspace_bytes(const vz_engine *e, const vz_batch *b, int backward) {
  Plan pl;
  Err err{nullptr, 0};
  if (e == nullptr || plan_batch(e, b, &pl, err) != 0) return -1;
  // With keep = -1 the kept blocks adapt to the free memory: the estimate is the minimum (none kept).
  int nkeep = backward && e->keep > 0 ? std::min(e->keep, e->c.n_layer) : 0;
  return (int64_t)workspace_layout(e, nullptr, nullptr, b->n, pl.maxseg, (int)pl.urow.size(), b->n_target, backward != 0,
                                   nkeep);
}

int vz_memory(const vz_engine *e, int64_t *weights, int64_t *adapter, int64_t *workspace, int64_t *peak) {
  if (e == nullptr) return VZ_ERR_ARG;
  *weights = e->bytes_weights;
  *adapter = e->bytes_adapter;
  *workspace = (int64_t)e->ws_bytes;
  *peak = e->bytes_peak;
  return 0;
}

}  // extern "C"
