// cuda_emu.h: a CPU emulation of the CUDA subset that the engine's kernels (csrc/) use, so that
// their indexing, masking, tiling, fragment layouts and synchronization are tested on machines
// without a GPU (CI has none). Not a general CUDA emulator, and not a performance model. With
// include/ (stand-ins for the toolkit headers) and runtime.cc (the runtime and cuBLAS calls on
// host memory) it builds the whole engine as a CPU library (build.sh emu, docs/cuda.md).
//
// Each block runs on one host thread as blockDim.x fibers (user-space threads), blocks of a grid
// on several host threads at once (so the atomics race as on a GPU). A fiber runs until it waits
// at a barrier: __syncthreads waits for every thread of the block, the warp-level operations
// (shuffles, ldmatrix, mma) for the 32 lanes of the warp, and a barrier that some thread never
// reaches (a thread returned, or diverged around it) is reported as a deadlock instead of hanging.
// mma.cuh's warp primitives are emulated lane by lane with the PTX register layouts: a lane's
// registers hold only its own share of a fragment, so a wrong address or fragment index gives
// wrong numbers. ldmatrix and cp.async check that their shared-memory addresses are inside the
// block's allocation and 16-byte aligned; cp.async destinations read as NaN from the copy's start
// until the wait that retires its group; shared memory starts as garbage and the dynamic part is
// fenced by canaries.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define VZ_EMU 1

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

// bf16 with round-to-nearest-even, as __float2bfloat16 does.
struct __nv_bfloat16 {
  uint16_t bits;
};
inline __nv_bfloat16 __float2bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{(uint16_t)((u >> 16) | 0x40)};  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return __nv_bfloat16{(uint16_t)(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 b) {
  uint32_t u = (uint32_t)b.bits << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE half, for the f16 scales of ggml blocks (dequant.cu).
struct __half {
  uint16_t bits;
};
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
inline float __half2float(__half h) {
  uint32_t sign = (uint32_t)(h.bits >> 15) << 31, exp = (h.bits >> 10) & 31, man = h.bits & 1023, u;
  if (exp == 31) u = sign | 0x7f800000u | man << 13;  // inf, NaN
  else if (exp != 0) u = sign | (exp + 112) << 23 | man << 13;
  else if (man == 0) u = sign;
  else {  // subnormal: normalize
    exp = 113;
    while (!(man & 1024)) man <<= 1, exp--;
    u = sign | exp << 23 | (man & 1023) << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// The emulation is compiled with -ffp-contract=off, so plain operations round as the _rn
// intrinsics do (never fused into an FMA).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fsub_rn(float a, float b) { return a - b; }

namespace emu {

[[noreturn]] inline void fail(const char *what) {
  std::fprintf(stderr, "cuda_emu: %s\n", what);
  std::abort();
}

// A barrier among fibers of one block: the last to arrive opens it (a new generation) and goes on,
// the others wait in the scheduler until it opens.
struct Barrier {
  int arrived = 0;
  unsigned gen = 0;
};

// A cp.async copy in flight: done at the wait that retires its group.
struct Copy {
  void *dst;
  const void *src;  // nullptr: zero fill
};

// Context: a fiber's saved machine state. On x86-64 a switch saves and restores only the
// callee-saved registers and the stack pointer (a few nanoseconds, where swapcontext also makes a
// signal-mask system call: the emulated kernels switch millions of times); elsewhere it is a
// ucontext.
#if defined(__x86_64__)
struct Context {
  void *sp = nullptr;
};
// vz_emu_switch(from, to): saves the callee-saved registers on this stack and its stack pointer
// in *from, then continues from to's saved stack pointer. Weak and hidden: every translation unit
// that includes this header defines it, the linker keeps one.
extern "C" void vz_emu_switch(void **from, void *to);
asm(R"(
  .text
  .weak vz_emu_switch
  .hidden vz_emu_switch
  .type vz_emu_switch, @function
vz_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size vz_emu_switch, .-vz_emu_switch
)");
inline void ctx_switch(Context &from, Context &to) { vz_emu_switch(&from.sp, to.sp); }
// ctx_make prepares a context that starts entry() on the given stack (entry must never return).
inline void ctx_make(Context &c, char *stack, size_t size, void (*entry)()) {
  auto *top = (void **)(((uintptr_t)stack + size) & ~(uintptr_t)15);
  *--top = nullptr;           // entry's return address slot: rsp % 16 == 8 at its first instruction
  *--top = (void *)entry;     // where vz_emu_switch's ret goes
  for (int i = 0; i < 6; i++) *--top = nullptr;  // rbp rbx r12 r13 r14 r15
  c.sp = top;
}
#else
#include <ucontext.h>
struct Context {
  ucontext_t uc;
};
inline void ctx_switch(Context &from, Context &to) { swapcontext(&from.uc, &to.uc); }
inline void ctx_make(Context &c, char *stack, size_t size, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
#endif

struct Fiber {
  Context ctx;
  dim3 tid;
  bool done = false;
  const Barrier *waiting = nullptr;
  unsigned wait_gen = 0;
  std::vector<Copy> open_group;                // cp.async copies not yet committed
  std::vector<std::vector<Copy>> in_flight;    // committed groups, oldest first
};

constexpr int kXch = 6;  // what a lane posts to its warp: an mma's a0..a3, b0, b1
constexpr size_t kCanary = 256;
constexpr size_t kStack = 64 << 10;

struct Block {
  Context sched;
  std::vector<Fiber> fibers;
  Fiber *cur = nullptr;
  Barrier bar;
  std::vector<Barrier> warp_bar;
  std::vector<uint64_t> xch;  // [warps][32][kXch]
  unsigned char *smem = nullptr;
  size_t smem_bytes = 0;
  const std::function<void()> *body = nullptr;
};

inline thread_local dim3 tIdx, bIdx, bDim, gDim;
inline thread_local Block *blk = nullptr;

inline Fiber *cur() { return blk->cur; }

inline void arrive(Barrier &b, int expected) {
  if (++b.arrived == expected) {
    b.arrived = 0, b.gen++;
    return;
  }
  Fiber *f = blk->cur;
  f->waiting = &b, f->wait_gen = b.gen;
  ctx_switch(f->ctx, blk->sched);
}
inline void syncthreads() { arrive(blk->bar, (int)bDim.x); }
inline void syncwarp() { arrive(blk->warp_bar[tIdx.x / 32], 32); }
inline uint64_t *xch(int lane) { return &blk->xch[((tIdx.x / 32) * 32 + lane) * kXch]; }
inline void check_smem(const void *p, size_t bytes, size_t align, const char *what) {
  auto a = (uintptr_t)p, s = (uintptr_t)blk->smem;
  if (a < s || a + bytes > s + blk->smem_bytes) fail(what);
  if (a % align != 0) fail(what);
}

template <class T>
T shfl_xor(T v, int mask) {
  static_assert(sizeof(T) <= 8);
  int lane = tIdx.x % 32;
  std::memcpy(xch(lane), &v, sizeof(T));
  syncwarp();
  T r;
  std::memcpy(&r, xch(lane ^ mask), sizeof(T));
  syncwarp();
  return r;
}

// fiber_main runs the kernel as the current fiber, then hands control back for good.
inline void fiber_main() {
  (*blk->body)();
  blk->cur->done = true;
  ctx_switch(blk->cur->ctx, blk->sched);
  fail("a finished fiber was resumed");
}

// run_block runs one block's threads as fibers until all return; stacks are this host thread's.
inline void run_block(Block &B, dim3 block) {
  thread_local std::vector<std::unique_ptr<char[]>> stacks;
  while (stacks.size() < block.x) stacks.emplace_back(new char[kStack]);
  B.fibers.assign(block.x, Fiber{});
  for (unsigned t = 0; t < block.x; t++) {
    Fiber &f = B.fibers[t];
    f.tid = dim3(t);
    ctx_make(f.ctx, stacks[t].get(), kStack, fiber_main);
  }
  blk = &B;
  // Warps run one at a time, each as far as it can (to the next __syncthreads): nothing orders
  // two warps between block barriers, so they are kept as far apart as possible, in an order that
  // differs between blocks (ascending, descending, from the middle), so that a missing barrier
  // shows as a read of data not yet written, or an overwrite of data not yet read.
  const unsigned nw = block.x / 32, id = bIdx.x + 7 * bIdx.y + 13 * bIdx.z;
  std::vector<unsigned> order(nw);
  for (unsigned i = 0; i < nw; i++) order[i] = (id % 2 ? nw - 1 - i : i);
  if (id % 4 >= 2) std::rotate(order.begin(), order.begin() + nw / 2, order.end());
  auto runnable = [](const Fiber &f) { return !f.done && !(f.waiting && f.waiting->gen == f.wait_gen); };
  for (;;) {
    bool ran = false, left = false;
    for (unsigned w : order) {
      for (bool again = true; again;) {
        again = false;
        for (unsigned l = 0; l < 32; l++) {
          Fiber &f = B.fibers[w * 32 + l];
          if (!f.done) left = true;
          if (!runnable(f)) continue;
          f.waiting = nullptr;
          B.cur = &f, tIdx = f.tid;
          ctx_switch(B.sched, f.ctx);
          ran = again = true;
        }
      }
    }
    if (!left) break;
    if (!ran) fail("deadlock: a barrier (__syncthreads or a warp operation) that not every thread reaches");
  }
  for (Fiber &f : B.fibers)
    if (!f.open_group.empty() || !f.in_flight.empty()) fail("a thread returned with cp.async copies not waited for");
  blk = nullptr;
}

// max_host_threads: how many blocks run at once (at least 2, so that atomics always race).
inline unsigned max_host_threads() { return std::max(2u, std::thread::hardware_concurrency()); }

// launch_config_error describes a launch configuration a GPU would refuse (nullptr when fine).
inline const char *launch_config_error(dim3 grid, dim3 block) {
  if (block.y != 1 || block.z != 1 || block.x % 32 != 0 || block.x == 0 || block.x > 1024)
    return "blocks must be 1-D, a whole number of warps, at most 1024 threads";
  if (grid.x == 0 || grid.x > 0x7fffffffu || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535)
    return "invalid grid";
  return nullptr;
}

// launch runs every block of the grid, several at a time on host threads, each as block.x fibers.
// It returns a description of a bad launch configuration instead of running (nullptr when fine).
template <class... KArgs, class... Args>
const char *launch(dim3 grid, dim3 block, size_t smem_bytes, void (*kernel)(KArgs...), Args... args) {
  if (const char *bad = launch_config_error(grid, block)) return bad;
  const size_t n = (size_t)grid.x * grid.y * grid.z;
  std::function<void()> body = [&] { kernel(args...); };
  std::atomic<size_t> next{0};
  auto worker = [&] {
    std::vector<unsigned char> mem(smem_bytes + 2 * kCanary + 128);
    for (size_t id; (id = next.fetch_add(1)) < n;) {
      Block B;
      B.warp_bar.assign(block.x / 32, Barrier{});
      B.xch.assign((size_t)block.x * kXch, 0);
      B.smem_bytes = smem_bytes;
      B.body = &body;
      std::fill(mem.begin(), mem.end(), 0xA5);  // garbage, and the canaries
      uintptr_t base = ((uintptr_t)mem.data() + kCanary + 127) & ~(uintptr_t)127;  // 128-byte aligned
      B.smem = (unsigned char *)base;
      bIdx = dim3((unsigned)(id % grid.x), (unsigned)(id / grid.x % grid.y), (unsigned)(id / grid.x / grid.y));
      bDim = block, gDim = grid;
      run_block(B, block);
      for (size_t c = 0; c < kCanary; c++)
        if (B.smem[smem_bytes + c] != 0xA5 || B.smem[-(ptrdiff_t)c - 1] != 0xA5) fail("shared memory written out of bounds");
    }
  };
  const size_t nt = std::min<size_t>(n, max_host_threads());
  std::vector<std::thread> threads;
  for (size_t i = 1; i < nt; i++) threads.emplace_back(worker);
  worker();
  for (auto &t : threads) t.join();
  return nullptr;
}

}  // namespace emu

#define threadIdx (emu::tIdx)
#define blockIdx (emu::bIdx)
#define blockDim (emu::bDim)
#define gridDim (emu::gDim)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
// Static shared memory: one copy per host thread, and a host thread runs one block at a time.
#define __shared__ static thread_local
#define __syncthreads() (emu::syncthreads())
template <class T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  return emu::shfl_xor(v, mask);
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline float atomicAdd(float *p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
#define VZ_DYN_SMEM(p) unsigned char *p = emu::blk->smem

// mma.cuh's primitives, lane by lane as the PTX ISA lays them out (see mma.cuh): each lane posts
// its operands to the warp's exchange area, and after a warp barrier computes its own outputs
// from the other lanes' posts, as the hardware moves data between lanes.
namespace mma {

inline uint16_t bits(__nv_bfloat16 b) { return b.bits; }

inline uint32_t pack_bf16(float lo, float hi) {
  return (uint32_t)bits(__float2bfloat16(lo)) | (uint32_t)bits(__float2bfloat16(hi)) << 16;
}

inline void ldsm(uint32_t (&r)[4], const void *row, bool trans) {
  emu::check_smem(row, 16, 16, "ldmatrix: row address outside shared memory or not 16-byte aligned");
  const int lane = emu::tIdx.x % 32, g = lane / 4, t = lane % 4;
  emu::xch(lane)[0] = (uintptr_t)row;
  emu::syncwarp();
  auto at = [&](int matrix, int rr, int col) {  // element (rr, col) of 8x8 matrix `matrix`
    const uint16_t *rowp = (const uint16_t *)emu::xch(8 * matrix + rr)[0];
    return (uint32_t)rowp[col];
  };
  for (int i = 0; i < 4; i++)
    r[i] = trans ? at(i, 2 * t, g) | at(i, 2 * t + 1, g) << 16 : at(i, g, 2 * t) | at(i, g, 2 * t + 1) << 16;
  emu::syncwarp();
}
inline void ldsm_x4(uint32_t (&r)[4], const void *row) { ldsm(r, row, false); }
inline void ldsm_x4_t(uint32_t (&r)[4], const void *row) { ldsm(r, row, true); }

inline void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  const int lane = emu::tIdx.x % 32, g = lane / 4, t = lane % 4;
  uint64_t *x = emu::xch(lane);
  for (int i = 0; i < 4; i++) x[i] = a[i];
  x[4] = b0, x[5] = b1;
  emu::syncwarp();
  auto half = [](uint64_t reg, int hi) {
    __nv_bfloat16 b{(uint16_t)(hi ? reg >> 16 : reg & 0xffff)};
    return __bfloat162float(b);
  };
  auto A = [&](int r, int k) {  // a0 (g, 2t..), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..)
    return half(emu::xch(r % 8 * 4 + k % 8 / 2)[(r >= 8) + 2 * (k >= 8)], k % 2);
  };
  auto B = [&](int k, int c) {  // b0 (k 2t.., n g), b1 (k 2t+8.., n g)
    return half(emu::xch(c * 4 + k % 8 / 2)[4 + (k >= 8)], k % 2);
  };
  float out[4];
  for (int e = 0; e < 4; e++) {
    const int r = g + (e >> 1) * 8, c = 2 * t + (e & 1);
    float s = d[e];
    for (int k = 0; k < 16; k++) s += A(r, k) * B(k, c);
    out[e] = s;
  }
  emu::syncwarp();
  for (int e = 0; e < 4; e++) d[e] = out[e];
}

inline void cp_async16(void *dst, const void *src, bool valid) {
  emu::check_smem(dst, 16, 16, "cp.async: destination outside shared memory or not 16-byte aligned");
  if (valid && (uintptr_t)src % 16 != 0) emu::fail("cp.async: source not 16-byte aligned");
  // Until its wait, the destination holds whatever a real copy in flight may have left there:
  // NaN here, so that reading it too early (no wait) or overwriting a tile another warp is still
  // reading (no barrier before the next copy) poisons the results.
  std::memset(dst, 0xff, 16);
  emu::cur()->open_group.push_back(emu::Copy{dst, valid ? src : nullptr});
}
inline void cp_async_commit() {
  emu::cur()->in_flight.push_back(std::move(emu::cur()->open_group));
  emu::cur()->open_group.clear();
}
// cp_async_wait<N> completes the oldest groups until N remain: a wait too few leaves the tile's
// shared memory as it was (garbage), which the test sees.
template <int N>
void cp_async_wait() {
  while (emu::cur()->in_flight.size() > (size_t)N) {
    for (const emu::Copy &c : emu::cur()->in_flight.front()) {
      if (c.src) std::memcpy(c.dst, c.src, 16);
      else std::memset(c.dst, 0, 16);
    }
    emu::cur()->in_flight.erase(emu::cur()->in_flight.begin());
  }
}

}  // namespace mma
