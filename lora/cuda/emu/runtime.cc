// runtime.cc: the CUDA runtime and cuBLAS calls of the CPU emulation (include/), on host memory.
//
// Device memory is host memory: each allocation starts as NaN bytes (0xff: an uninitialized read
// poisons the results, where a GPU would give whatever was there) between guard zones, which are
// checked at every stream synchronization and free; a broken guard becomes a sticky
// cudaErrorIllegalAddress with a message on stderr naming the allocation, as a faulting kernel
// would. Copies, memsets and GEMM operands are checked against the live allocations.
// VZ_EMU_MEM_MIB sets the emulated device's memory (default 16384).
//
// Streams are lazy: kernels, asynchronous copies and memsets, and GEMMs are checked when issued and
// queued on their stream, and a queue runs only as far as something waits for it (a stream or
// event synchronization, another stream's cudaStreamWaitEvent reaching its turn, a copy into
// pageable host memory, a free). So two streams' work interleaves only as their waits order it: a
// missing cudaStreamWaitEvent shows as a copy of data not yet computed, and host memory read
// before its copy was waited for holds stale values. As in CUDA, a copy from pageable host memory
// takes its source when issued, one from pinned memory (cudaMallocHost) when it runs.
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "include/cublas_v2.h"

namespace {

constexpr size_t kGuard = 256;
constexpr unsigned char kGuardByte = 0xA5;

struct State {
  std::mutex mu;
  std::map<uintptr_t, size_t> live;    // payload address -> bytes
  std::map<uintptr_t, size_t> pinned;  // cudaMallocHost'd host memory
  std::map<const void *, int> max_dyn_smem;
  size_t used = 0;
  cudaError_t sticky = cudaSuccess;
};
State &st() {
  static State s;
  return s;
}
thread_local cudaError_t last_error = cudaSuccess;

size_t total_memory() {
  const char *v = getenv("VZ_EMU_MEM_MIB");
  return (v != nullptr && atoll(v) > 0 ? (size_t)atoll(v) : 16384) << 20;
}

void report(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::fprintf(stderr, "cuda_emu: ");
  std::vfprintf(stderr, fmt, ap);
  std::fprintf(stderr, "\n");
  va_end(ap);
}

// guards_ok checks one allocation's guard zones (State::mu held).
bool guards_ok(uintptr_t p, size_t bytes) {
  const unsigned char *lo = (const unsigned char *)p - kGuard, *hi = (const unsigned char *)p + bytes;
  for (size_t i = 0; i < kGuard; i++)
    if (lo[i] != kGuardByte || hi[i] != kGuardByte) {
      report("device memory written out of bounds: allocation %p (%zu bytes), %s guard", (void *)p, bytes,
             lo[i] != kGuardByte ? "lower" : "upper");
      return false;
    }
  return true;
}

void run_all();  // runs every stream's queue (below)

cudaError_t check_all() {
  State &s = st();
  std::lock_guard<std::mutex> l(s.mu);
  if (s.sticky != cudaSuccess) return s.sticky;
  for (auto [p, n] : s.live)
    if (!guards_ok(p, n)) return s.sticky = cudaErrorIllegalAddress;
  return cudaSuccess;
}

// in_device: whether [p, p + bytes) lies inside one live allocation.
bool in_device(const void *p, size_t bytes) {
  State &s = st();
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.live.upper_bound((uintptr_t)p);
  if (it == s.live.begin()) return false;
  --it;
  return (uintptr_t)p + bytes <= it->first + it->second;
}

// check_range: the copy or GEMM operand [p, p + bytes) must be device memory.
bool check_range(const char *call, const char *what, const void *p, size_t bytes) {
  if (bytes == 0 || in_device(p, bytes)) return true;
  report("%s: %s [%p, +%zu bytes) is not inside one device allocation", call, what, p, bytes);
  return false;
}

}  // namespace

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
  }
  return "unknown error";
}

cudaError_t cudaGetLastError() {
  cudaError_t e = last_error;
  last_error = cudaSuccess;
  if (e == cudaSuccess) {
    std::lock_guard<std::mutex> l(st().mu);
    e = st().sticky;
  }
  return e;
}

cudaError_t cudaGetDeviceCount(int *n) {
  *n = 1;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev) {
  if (dev != 0) return cudaErrorInvalidValue;
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof p->name, "CPU emulation of CUDA (cuda_emu)");
  p->major = 9, p->minor = 0, p->multiProcessorCount = 132;  // an H100's
  p->totalGlobalMem = total_memory();
  p->sharedMemPerBlock = 48 << 10;
  p->sharedMemPerBlockOptin = 227 << 10;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int dev) {
  if (dev != 0 || a != cudaDevAttrMaxSharedMemoryPerBlockOptin) return cudaErrorInvalidValue;
  *v = 227 << 10;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int dev) { return dev == 0 ? cudaSuccess : cudaErrorInvalidValue; }

cudaError_t cudaMemGetInfo(size_t *free, size_t *total) {
  std::lock_guard<std::mutex> l(st().mu);
  *total = total_memory();
  *free = *total - std::min(*total, st().used);
  return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes) {
  *p = nullptr;
  State &s = st();
  std::lock_guard<std::mutex> l(s.mu);
  if (s.used + bytes > total_memory()) return last_error = cudaErrorMemoryAllocation;
  auto *raw = (unsigned char *)std::aligned_alloc(kGuard, kGuard + ((bytes + kGuard - 1) / kGuard + 1) * kGuard);
  if (raw == nullptr) return last_error = cudaErrorMemoryAllocation;
  std::memset(raw, kGuardByte, kGuard);
  std::memset(raw + kGuard, 0xff, bytes);
  std::memset(raw + kGuard + bytes, kGuardByte, kGuard);
  *p = raw + kGuard;
  s.live[(uintptr_t)*p] = bytes;
  s.used += bytes;
  return cudaSuccess;
}

cudaError_t cudaFree(void *p) {
  if (p == nullptr) return cudaSuccess;
  run_all();  // an implicit device synchronization, as in CUDA
  State &s = st();
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.live.find((uintptr_t)p);
  if (it == s.live.end()) {
    report("cudaFree(%p): not a live allocation", p);
    return cudaErrorInvalidValue;
  }
  if (!guards_ok(it->first, it->second)) s.sticky = cudaErrorIllegalAddress;
  s.used -= it->second;
  s.live.erase(it);
  std::free((unsigned char *)p - kGuard);
  return s.sticky;
}

// ---- streams and events ----

struct CUstream_st {
  std::deque<std::function<void()>> q;
  uint64_t issued = 0, done = 0;  // operations queued, operations run
  bool prelude = false;           // others-first: running the other streams before this one
};
struct CUevent_st {
  cudaStream_t s = nullptr;
  uint64_t at = 0;  // the event completes once its stream has run this many operations
  std::shared_ptr<std::atomic<int64_t>> stamp = std::make_shared<std::atomic<int64_t>>(-1);  // ns when it completed
};

namespace {

// Queues: one recursive mutex (a queued wait runs another stream's queue), and the set of streams
// for the implicit device-wide synchronizations (cudaFree, cudaFreeHost).
//
// Which of two streams' independent work runs first is what a missing wait gets wrong, in one of
// two ways, so the order is a setting (VZ_EMU_STREAMS): "lazy" (default) runs a queue only as far
// as it is waited for, so work issued later on another stream runs late (a consumer that does not
// wait for its producer reads data not yet written); "others-first" runs every other stream's
// queue as far as it goes before the one waited for, so work issued later runs early (a producer
// that does not wait for the consumer of the previous contents overwrites them too soon).
struct Queues {
  std::recursive_mutex mu;
  std::set<cudaStream_t> all;
  CUstream_st legacy;  // the default stream (nullptr)
  bool others_first;
  Queues() {
    all.insert(&legacy);
    const char *v = getenv("VZ_EMU_STREAMS");
    others_first = v != nullptr && std::string(v) == "others-first";
  }
};
Queues &qs() {
  static Queues q;
  return q;
}
cudaStream_t resolve(cudaStream_t s) { return s ? s : &qs().legacy; }

// run_until runs stream s's queued operations until `upto` of them have run (others-first: after
// every other stream not already being run has run its whole queue).
void run_until(cudaStream_t s, uint64_t upto) {
  std::lock_guard<std::recursive_mutex> l(qs().mu);
  s = resolve(s);
  if (s->done >= upto) return;
  if (qs().others_first && !s->prelude) {
    s->prelude = true;  // another stream's queued wait may still run this one up to its event
    for (cudaStream_t o : qs().all)
      if (o != s && !o->prelude) run_until(o, o->issued);
    s->prelude = false;
  }
  while (s->done < upto && !s->q.empty()) {
    std::function<void()> op = std::move(s->q.front());
    s->q.pop_front();
    op();
    s->done++;
  }
}
void run_stream(cudaStream_t s) { run_until(s, resolve(s)->issued); }
void run_all() {
  std::lock_guard<std::recursive_mutex> l(qs().mu);
  for (cudaStream_t s : qs().all) run_stream(s);
}

bool pinned(const void *p, size_t bytes) {
  State &s = st();
  std::lock_guard<std::mutex> l(s.mu);
  auto it = s.pinned.upper_bound((uintptr_t)p);
  if (it == s.pinned.begin()) return false;
  --it;
  return (uintptr_t)p + bytes <= it->first + it->second;
}

}  // namespace

namespace emu {
void enqueue(cudaStream_t s, std::function<void()> op) {
  std::lock_guard<std::recursive_mutex> l(qs().mu);
  s = resolve(s);
  s->q.push_back(std::move(op));
  s->issued++;
}
}  // namespace emu

cudaError_t cudaStreamCreate(cudaStream_t *s) {
  std::lock_guard<std::recursive_mutex> l(qs().mu);
  *s = new CUstream_st;
  qs().all.insert(*s);
  return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { return cudaStreamCreate(s); }
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (s == nullptr) return cudaErrorInvalidValue;
  run_stream(s);  // CUDA finishes the work queued before the destruction
  std::lock_guard<std::recursive_mutex> l(qs().mu);
  qs().all.erase(s);
  delete s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  run_stream(s);
  return check_all();
}
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t ev, unsigned) {
  if (ev == nullptr) return cudaErrorInvalidValue;
  // The wait is for the event's latest record at the time of this call.
  if (ev->s != nullptr) emu::enqueue(s, [es = ev->s, at = ev->at] { run_until(es, at); });
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned) {
  *ev = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t ev) {
  delete ev;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t s) {
  if (ev == nullptr) return cudaErrorInvalidValue;
  std::lock_guard<std::recursive_mutex> l(qs().mu);
  ev->s = resolve(s);
  // The latest record's time stamp: a fresh cell, so that a queued stamp of an earlier record
  // cannot overwrite it.
  ev->stamp = std::make_shared<std::atomic<int64_t>>(-1);
  emu::enqueue(ev->s, [stamp = ev->stamp] {
    stamp->store(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
  });
  ev->at = ev->s->issued;
  return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  if (a == nullptr || b == nullptr || a->s == nullptr || b->s == nullptr) return cudaErrorInvalidValue;
  run_until(a->s, a->at);
  run_until(b->s, b->at);
  *ms = (float)((double)(b->stamp->load() - a->stamp->load()) / 1e6);
  return check_all();
}
cudaError_t cudaEventSynchronize(cudaEvent_t ev) {
  if (ev == nullptr) return cudaErrorInvalidValue;
  if (ev->s != nullptr) run_until(ev->s, ev->at);  // never recorded: complete, as in CUDA
  return check_all();
}

// ---- memory ----

cudaError_t cudaMallocHost(void **p, size_t bytes) {
  *p = std::malloc(bytes == 0 ? 1 : bytes);
  if (*p == nullptr) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> l(st().mu);
  st().pinned[(uintptr_t)*p] = bytes == 0 ? 1 : bytes;
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
  run_all();  // an implicit device synchronization, as in CUDA
  {
    std::lock_guard<std::mutex> l(st().mu);
    if (p != nullptr && st().pinned.erase((uintptr_t)p) == 0) {
      report("cudaFreeHost(%p): not pinned host memory", p);
      return cudaErrorInvalidValue;
    }
  }
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s) {
  bool ok = true;
  if (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice) ok &= check_range("cudaMemcpy", "destination", dst, bytes);
  if (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice) ok &= check_range("cudaMemcpy", "source", src, bytes);
  if (kind == cudaMemcpyHostToHost || kind == cudaMemcpyDefault) {
    report("cudaMemcpy: only host-to-device, device-to-host and device-to-device copies are emulated");
    ok = false;
  }
  if (!ok) return last_error = cudaErrorInvalidValue;
  if (bytes == 0) return cudaSuccess;
  if (kind == cudaMemcpyHostToDevice && !pinned(src, bytes)) {
    // Pageable source: CUDA stages it before returning, so the caller may reuse it at once.
    auto staged = std::make_shared<std::vector<unsigned char>>((const unsigned char *)src,
                                                               (const unsigned char *)src + bytes);
    emu::enqueue(s, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
    return cudaSuccess;
  }
  emu::enqueue(s, [dst, src, bytes] { std::memmove(dst, src, bytes); });
  // Into pageable memory CUDA returns only once the copy is done.
  if (kind == cudaMemcpyDeviceToHost && !pinned(dst, bytes)) run_stream(s);
  return cudaSuccess;
}
// cudaMemcpy runs on the legacy default stream, which is not ordered with the engine's
// non-blocking streams: it does not wait for their queued work.
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
  cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
  if (e != cudaSuccess) return e;
  run_stream(nullptr);
  return check_all();
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s) {
  if (!check_range("cudaMemset", "destination", p, bytes)) return last_error = cudaErrorInvalidValue;
  if (bytes) emu::enqueue(s, [p, value, bytes] { std::memset(p, value, bytes); });
  return cudaSuccess;
}

namespace emu {

cudaError_t func_get_attributes(cudaFuncAttributes *a, const void *fn) {
  if (fn == nullptr) return cudaErrorInvalidValue;
  *a = cudaFuncAttributes{0, 1024, 32, 48 << 10};
  return cudaSuccess;
}

cudaError_t func_set_max_dyn_smem(const void *fn, int bytes) {
  if (bytes < 0 || bytes > (227 << 10)) return cudaErrorInvalidValue;
  std::lock_guard<std::mutex> l(st().mu);
  st().max_dyn_smem[fn] = bytes;
  return cudaSuccess;
}

const char *launch_check(const void *fn, size_t smem) {
  int limit = 48 << 10;  // without cudaFuncSetAttribute, as on the GPU
  {
    std::lock_guard<std::mutex> l(st().mu);
    auto it = st().max_dyn_smem.find(fn);
    if (it != st().max_dyn_smem.end()) limit = it->second;
  }
  return smem > (size_t)limit ? "dynamic shared memory above the kernel's limit (cudaFuncSetAttribute)" : nullptr;
}

void set_launch_error(const char *what) {
  if (what == nullptr) return;
  report("kernel launch: %s", what);
  last_error = cudaErrorInvalidConfiguration;
}

}  // namespace emu

// ---- cuBLAS ----

struct cublasContext {
  cudaStream_t stream = nullptr;
  const void *ws = nullptr;  // the user workspace (cublasSetWorkspace), nullptr: cuBLAS's own pool
  size_t ws_bytes = 0;
};

cublasStatus_t cublasCreate(cublasHandle_t *h) {
  *h = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy(cublasHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = s;
  h->ws = nullptr;  // as cuBLAS documents: setting the stream resets the workspace to the default pool
  h->ws_bytes = 0;
  return CUBLAS_STATUS_SUCCESS;
}
// cublasSetWorkspace: device memory, 256-byte aligned, as cuBLAS requires; every GEMM checks that
// it is still allocated (a workspace freed before its handle's last GEMM would be overwritten).
cublasStatus_t cublasSetWorkspace(cublasHandle_t h, void *ws, size_t bytes) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes > 0 && ((uintptr_t)ws % 256 != 0 || !check_range("cublasSetWorkspace", "workspace", ws, bytes)))
    return CUBLAS_STATUS_INVALID_VALUE;
  h->ws = bytes > 0 ? ws : nullptr;
  h->ws_bytes = bytes;
  return CUBLAS_STATUS_SUCCESS;
}

namespace {

size_t type_size(cudaDataType t) { return t == CUDA_R_32F ? 4 : 2; }

double load(const void *p, cudaDataType t, size_t i) {
  return t == CUDA_R_32F ? (double)((const float *)p)[i] : (double)__bfloat162float(((const __nv_bfloat16 *)p)[i]);
}
void store(void *p, cudaDataType t, size_t i, double v) {
  if (t == CUDA_R_32F) ((float *)p)[i] = (float)v;
  else ((__nv_bfloat16 *)p)[i] = __float2bfloat16((float)v);
}

// parallel_for runs f(j) for j in [0, n) on the host's cores.
template <class F>
void parallel_for(int n, F f) {
  const int nt = (int)std::min<unsigned>(std::max(1u, std::thread::hardware_concurrency()), (unsigned)n);
  std::vector<std::thread> th;
  std::atomic<int> next{0};
  auto work = [&] {
    for (int j; (j = next.fetch_add(1)) < n;) f(j);
  };
  for (int i = 1; i < nt; i++) th.emplace_back(work);
  work();
  for (auto &t : th) t.join();
}

// gemm: column-major C = alpha op(A) op(B) + beta C (C not read when beta is 0), batch times.
cublasStatus_t gemm(const char *call, cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                    int k, const void *alpha, const void *A, cudaDataType at, int lda, long long sA, const void *B,
                    cudaDataType bt, int ldb, long long sB, const void *beta, void *C, cudaDataType ct, int ldc,
                    long long sC, int batch, cublasComputeType_t compute) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  // cuBLAS's own argument checks.
  const int arows = ta == CUBLAS_OP_N ? m : k, brows = tb == CUBLAS_OP_N ? k : n;
  if (m < 0 || n < 0 || k < 0 || batch < 0 || lda < std::max(1, arows) || ldb < std::max(1, brows) ||
      ldc < std::max(1, m)) {
    report("%s: invalid value (m %d n %d k %d lda %d ldb %d ldc %d)", call, m, n, k, lda, ldb, ldc);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (compute != CUBLAS_COMPUTE_32F || at != bt || (at != CUDA_R_32F && at != CUDA_R_16BF) ||
      (ct != CUDA_R_32F && ct != CUDA_R_16BF)) {
    report("%s: type combination not supported by the emulation", call);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (h->ws != nullptr && !check_range(call, "the handle's workspace", h->ws, h->ws_bytes))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  const double al = *(const float *)alpha, be = *(const float *)beta;
  // Every operand's extent must be device memory (what a GPU would fault on, or silently read).
  const int acols = ta == CUBLAS_OP_N ? k : m, bcols = tb == CUBLAS_OP_N ? n : k;
  auto extent = [&](int rows, int cols, int ld, long long stride, cudaDataType t) {
    if (rows == 0 || cols == 0) return (size_t)0;
    return ((size_t)(batch - 1) * (size_t)stride + (size_t)(cols - 1) * ld + rows) * type_size(t);
  };
  if (!check_range(call, "A", A, k ? extent(arows, acols, lda, sA, at) : 0) ||
      !check_range(call, "B", B, k ? extent(brows, bcols, ldb, sB, bt) : 0) ||
      !check_range(call, "C", C, extent(m, n, ldc, sC, ct)))
    return CUBLAS_STATUS_EXECUTION_FAILED;
  // Queued on the handle's stream; alpha and beta are read now (host pointer mode).
  emu::enqueue(h->stream, [=] {
    // op(A) as rows and op(B) as columns, contiguous in k, so the dot products run down memory.
    std::vector<float> Ap((size_t)m * k), Bp((size_t)n * k);
    for (int b = 0; b < batch; b++) {
      const size_t a0 = (size_t)b * sA, b0 = (size_t)b * sB, c0 = (size_t)b * sC;
      for (int i = 0; i < m; i++)
        for (int l = 0; l < k; l++)
          Ap[(size_t)i * k + l] = (float)load(A, at, a0 + (ta == CUBLAS_OP_N ? (size_t)i + (size_t)l * lda : (size_t)l + (size_t)i * lda));
      for (int j = 0; j < n; j++)
        for (int l = 0; l < k; l++)
          Bp[(size_t)j * k + l] = (float)load(B, bt, b0 + (tb == CUBLAS_OP_N ? (size_t)l + (size_t)j * ldb : (size_t)j + (size_t)l * ldb));
      parallel_for(n, [&](int j) {
        const float *bj = &Bp[(size_t)j * k];
        for (int i = 0; i < m; i++) {
          const float *ai = &Ap[(size_t)i * k];
          double s = 0;
          for (int l = 0; l < k; l++) s += (double)ai[l] * (double)bj[l];
          const size_t ci = c0 + (size_t)i + (size_t)j * ldc;
          store(C, ct, ci, al * s + (be == 0 ? 0 : be * load(C, ct, ci)));
        }
      });
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                            cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType ct, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t) {
  return gemm("cublasGemmEx", h, ta, tb, m, n, k, alpha, A, at, lda, 0, B, bt, ldb, 0, beta, C, ct, ldc, 0, 1,
              compute);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *A, cudaDataType at, int lda,
                                          long long sA, const void *B, cudaDataType bt, int ldb, long long sB,
                                          const void *beta, void *C, cudaDataType ct, int ldc, long long sC,
                                          int batch, cublasComputeType_t compute, cublasGemmAlgo_t) {
  return gemm("cublasGemmStridedBatchedEx", h, ta, tb, m, n, k, alpha, A, at, lda, sA, B, bt, ldb, sB, beta, C, ct,
              ldc, sC, batch, compute);
}
