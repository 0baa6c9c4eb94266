// memory.cu: device allocations with accounting, so that vz_memory can report weights, adapter,
// workspace and the high-water mark of everything this engine allocated.
#include "internal.cuh"

int vz_seterr(Err &err, int code, const char *fmt, ...) {
  if (err.buf != nullptr && err.len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.buf, (size_t)err.len, fmt, ap);
    va_end(ap);
  }
  return code;
}

int dalloc(vz_engine *e, void **p, size_t bytes, Err &err) {
  *p = nullptr;
  if (bytes == 0) return 0;
  cudaError_t rc = cudaMalloc(p, bytes);
  if (rc != cudaSuccess) {
    size_t fr = 0, tot = 0;
    cudaGetLastError();  // clear the (non-sticky) out-of-memory error
    cudaMemGetInfo(&fr, &tot);
    *p = nullptr;
    return vz_seterr(err, VZ_ERR_CUDA, "cudaMalloc(%zu bytes): %s (device has %zu of %zu bytes free; engine holds %lld)",
                     bytes, cudaGetErrorString(rc), fr, tot, (long long)e->bytes_cur);
  }
  e->bytes_cur += (int64_t)bytes;
  if (e->bytes_cur > e->bytes_peak) e->bytes_peak = e->bytes_cur;
  return 0;
}

void dfree(vz_engine *e, void *p, size_t bytes) {
  if (p == nullptr) return;
  cudaFree(p);  // errors here would come from an earlier fault that is already reported
  e->bytes_cur -= (int64_t)bytes;
}
