// Stand-in for the CUDA toolkit's cuda_runtime.h in the CPU emulation (../cuda_emu.h): the
// runtime calls the engine makes, on host memory (../runtime.cc). Device memory is host memory
// with guard bytes. Kernels, copies, memsets and GEMMs are queued on their stream and run only
// when something waits for them (../runtime.cc), so a stream synchronization is where a
// corrupted guard is reported, as a real fault would be, and work on two streams runs in the
// order their waits allow rather than the order it was issued.
#pragma once

#include <cstddef>
#include <functional>
#include <tuple>

#include "../cuda_emu.h"

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
};
using cudaError = cudaError_t;

enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 };
using cudaDataType = cudaDataType_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4
};

struct CUstream_st;
using cudaStream_t = CUstream_st *;
constexpr unsigned cudaStreamNonBlocking = 1;
struct CUevent_st;
using cudaEvent_t = CUevent_st *;
constexpr unsigned cudaEventDefault = 0;
constexpr unsigned cudaEventDisableTiming = 2;

struct cudaDeviceProp {
  char name[256];
  int major, minor, multiProcessorCount;
  size_t totalGlobalMem, sharedMemPerBlock, sharedMemPerBlockOptin;
};
struct cudaFuncAttributes {
  size_t sharedSizeBytes;
  int maxThreadsPerBlock, numRegs, maxDynamicSharedSizeBytes;
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };
enum cudaDeviceAttr { cudaDevAttrMaxSharedMemoryPerBlockOptin = 97 };

const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int dev);
cudaError_t cudaDeviceGetAttribute(int *v, cudaDeviceAttr a, int dev);
cudaError_t cudaSetDevice(int dev);
cudaError_t cudaMemGetInfo(size_t *free, size_t *total);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s = nullptr);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t *s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t ev, unsigned flags = 0);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t ev);
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t s = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t ev);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);

namespace emu {
cudaError_t func_get_attributes(cudaFuncAttributes *a, const void *fn);
cudaError_t func_set_max_dyn_smem(const void *fn, int bytes);
// launch_check: what a GPU would refuse in a launch of fn beyond emu::launch's own checks (the
// dynamic shared memory limit), or nullptr; set_launch_error records it for cudaGetLastError.
const char *launch_check(const void *fn, size_t smem);
void set_launch_error(const char *what);
// enqueue appends work to a stream's queue (nullptr: the legacy default stream).
void enqueue(cudaStream_t s, std::function<void()> op);

// The <<<grid, block, smem, stream>>> syntax, which a host compiler cannot parse: build.sh emu
// rewrites `kernel<<<cfg>>>(args)` as `kernel * emu::Launch(cfg)(args)`.
template <class... A>
struct Pending;
struct Launch {
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  Launch(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = nullptr) : grid(g), block(b), smem(s), stream(st) {}
  template <class... A>
  Pending<A...> operator()(A... a) const {
    return Pending<A...>{*this, std::tuple<A...>(a...)};
  }
};
template <class... A>
struct Pending {
  Launch cfg;
  std::tuple<A...> args;
};
// A launch is checked when issued (what cudaGetLastError reports right after it) and queued on its
// stream with its arguments by value, as a GPU captures them.
template <class... KA, class... A>
void operator*(void (*kernel)(KA...), const Pending<A...> &p) {
  const char *bad = launch_check((const void *)kernel, p.cfg.smem);
  if (bad == nullptr) bad = launch_config_error(p.cfg.grid, p.cfg.block);
  if (bad != nullptr) return set_launch_error(bad);
  enqueue(p.cfg.stream, [kernel, cfg = p.cfg, args = p.args] {
    std::apply([&](A... a) { launch(cfg.grid, cfg.block, cfg.smem, kernel, a...); }, args);
  });
}
}  // namespace emu

template <class T>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, T *fn) {
  return emu::func_get_attributes(a, (const void *)fn);
}
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, const void *fn) { return emu::func_get_attributes(a, fn); }
template <class T>
cudaError_t cudaFuncSetAttribute(T *fn, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaErrorInvalidValue;
  return emu::func_set_max_dyn_smem((const void *)fn, value);
}
