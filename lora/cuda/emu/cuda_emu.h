// cuda_emu.h: a CPU emulation of the small CUDA subset that csrc/flash.cuh uses, so that the
// flash-attention kernels' indexing, masking, tiling, fragment layouts and synchronization are
// tested on machines without a GPU (CI has none). Not a general CUDA emulator, and not a
// performance model.
//
// Each block runs as blockDim.x host threads. __syncthreads and the warp barriers are std::barriers,
// shuffles exchange through a per-warp buffer between two warp barriers, atomicAdd is an atomic
// fetch-add. mma.cuh's warp primitives (ldmatrix, mma.sync m16n8k16, cp.async) are emulated lane
// by lane with the PTX register layouts: a lane's registers hold only its own share of a
// fragment, so a wrong address or fragment index gives wrong numbers. ldmatrix and cp.async check
// that their shared-memory addresses are inside the block's allocation and 16-byte aligned;
// cp.async destinations read as NaN from the copy's start until the wait that retires its group; dynamic shared memory
// starts as garbage and is fenced by canaries.
#pragma once

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

namespace emu {

struct Block {
  std::unique_ptr<std::barrier<>> bar;
  std::vector<std::unique_ptr<std::barrier<>>> warp_bar;
  std::vector<uint64_t> xch;  // [warps][32][kXch]: what the lanes of a warp exchange (shuffles, ldmatrix, mma)
  unsigned char *smem = nullptr;
  size_t smem_bytes = 0;
};
constexpr int kXch = 6;  // an mma's a0..a3, b0, b1

// A cp.async copy in flight: done at the wait that retires its group.
struct Copy {
  void *dst;
  const void *src;  // nullptr: zero fill
};
inline thread_local std::vector<Copy> open_group;
inline thread_local std::vector<std::vector<Copy>> in_flight;

inline thread_local dim3 tIdx, bIdx, bDim, gDim;
inline thread_local Block *blk = nullptr;

inline void fail(const char *what) {
  std::fprintf(stderr, "cuda_emu: %s\n", what);
  std::abort();
}
inline void syncwarp() { blk->warp_bar[tIdx.x / 32]->arrive_and_wait(); }
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

constexpr size_t kCanary = 256;

// launch runs every block of the grid, `par` blocks at a time (concurrent blocks exercise the
// atomics), each as block.x threads.
template <class... KArgs, class... Args>
void launch(dim3 grid, dim3 block, size_t smem_bytes, void (*kernel)(KArgs...), Args... args) {
  if (block.y != 1 || block.z != 1 || block.x % 32 != 0) fail("blocks must be 1-D and a whole number of warps");
  std::vector<dim3> ids;
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) ids.push_back(dim3(x, y, z));
  const size_t par = 3;
  for (size_t b0 = 0; b0 < ids.size(); b0 += par) {
    size_t nb = std::min(par, ids.size() - b0);
    std::vector<Block> blocks(nb);
    std::vector<std::vector<unsigned char>> mem(nb);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < nb; i++) {
      Block &B = blocks[i];
      B.bar = std::make_unique<std::barrier<>>((std::ptrdiff_t)block.x);
      for (unsigned w = 0; w < block.x / 32; w++) B.warp_bar.push_back(std::make_unique<std::barrier<>>(32));
      B.xch.assign((size_t)block.x * kXch, 0);
      B.smem_bytes = smem_bytes;
      mem[i].assign(smem_bytes + 2 * kCanary + 128, 0xA5);
      // 128-byte aligned start, with a canary zone on both sides.
      uintptr_t base = (uintptr_t)mem[i].data() + kCanary;
      base = (base + 127) & ~(uintptr_t)127;
      B.smem = (unsigned char *)base;
      for (unsigned t = 0; t < block.x; t++) {
        threads.emplace_back([&, i, t] {
          tIdx = dim3(t), bIdx = ids[b0 + i], bDim = block, gDim = grid;
          blk = &blocks[i];
          open_group.clear(), in_flight.clear();
          kernel(args...);
        });
      }
    }
    for (auto &th : threads) th.join();
    for (size_t i = 0; i < nb; i++) {
      unsigned char *s = blocks[i].smem;
      for (size_t c = 0; c < kCanary; c++)
        if (s[smem_bytes + c] != 0xA5 || s[-(ptrdiff_t)c - 1] != 0xA5) fail("shared memory written out of bounds");
    }
  }
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
#define __syncthreads() (emu::blk->bar->arrive_and_wait())
template <class T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  return emu::shfl_xor(v, mask);
}
inline int min(int a, int b) { return a < b ? a : b; }
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
  emu::open_group.push_back(emu::Copy{dst, valid ? src : nullptr});
}
inline void cp_async_commit() {
  emu::in_flight.push_back(std::move(emu::open_group));
  emu::open_group.clear();
}
// cp_async_wait<N> completes the oldest groups until N remain: a wait too few leaves the tile's
// shared memory as it was (garbage), which the test sees.
template <int N>
void cp_async_wait() {
  while (emu::in_flight.size() > (size_t)N) {
    for (const emu::Copy &c : emu::in_flight.front()) {
      if (c.src) std::memcpy(c.dst, c.src, 16);
      else std::memset(c.dst, 0, 16);
    }
    emu::in_flight.erase(emu::in_flight.begin());
  }
}

}  // namespace mma
