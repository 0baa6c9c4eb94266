// cuda_emu.h: a CPU emulation of the small CUDA subset that csrc/flash.cuh uses, so that the
// flash-attention kernels' indexing, masking, tiling and synchronization are tested on machines
// without a GPU (CI has none). Not a general CUDA emulator, and not a performance model.
//
// Each block runs as blockDim.x host threads. __syncthreads and __syncwarp are std::barriers,
// shuffles exchange through a per-warp buffer between two warp barriers, atomicAdd is an atomic
// fetch-add. WMMA fragments hold the whole 16x16 tile in every lane (the API's element layout is
// opaque, so code that only goes through load/mma/store cannot tell); store_matrix_sync writes a
// lane's share of the tile only, so a missing barrier between a store and another lane's load
// shows up as wrong results. Loads check the API's alignment rules (32-byte pointers, ldm a
// multiple of 16 bytes); dynamic shared memory starts as garbage and is fenced by canaries.
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
#include <type_traits>
#include <vector>

#define VZ_EMU 1

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(16) uint4 {
  unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

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
  std::vector<uint64_t> shfl;  // [warps][32]
  unsigned char *smem = nullptr;
};

inline thread_local dim3 tIdx, bIdx, bDim, gDim;
inline thread_local Block *blk = nullptr;

inline void fail(const char *what) {
  std::fprintf(stderr, "cuda_emu: %s\n", what);
  std::abort();
}
inline void syncwarp() { blk->warp_bar[tIdx.x / 32]->arrive_and_wait(); }

template <class T>
T shfl_xor(T v, int mask) {
  static_assert(sizeof(T) <= 8);
  uint64_t *buf = &blk->shfl[(tIdx.x / 32) * 32];
  int lane = tIdx.x % 32;
  std::memcpy(&buf[lane], &v, sizeof(T));
  syncwarp();
  T r;
  std::memcpy(&r, &buf[lane ^ mask], sizeof(T));
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
      B.shfl.assign(block.x, 0);
      mem[i].assign(smem_bytes + 2 * kCanary + 128, 0xA5);
      // 128-byte aligned start, with a canary zone on both sides.
      uintptr_t base = (uintptr_t)mem[i].data() + kCanary;
      base = (base + 127) & ~(uintptr_t)127;
      B.smem = (unsigned char *)base;
      for (unsigned t = 0; t < block.x; t++) {
        threads.emplace_back([&, i, t] {
          tIdx = dim3(t), bIdx = ids[b0 + i], bDim = block, gDim = grid;
          blk = &blocks[i];
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
#define __launch_bounds__(n)
#define __syncthreads() (emu::blk->bar->arrive_and_wait())
inline void __syncwarp(unsigned = 0xffffffffu) { emu::syncwarp(); }
template <class T>
T __shfl_xor_sync(unsigned, T v, int mask) {
  return emu::shfl_xor(v, mask);
}
inline int min(int a, int b) { return a < b ? a : b; }
inline float atomicAdd(float *p, float v) { return std::atomic_ref<float>(*p).fetch_add(v); }
#define VZ_DYN_SMEM(p) unsigned char *p = emu::blk->smem

// The WMMA API for 16x16x16 tiles of bf16 operands with fp32 accumulators.
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "the emulation has 16x16x16 tiles only");
  T v[256];  // [row][col] of the whole tile, in every lane
};

template <class T>
inline void check_ptr(const T *p, unsigned ldm) {
  if ((uintptr_t)p % 32 != 0) emu::fail("wmma: pointer not 256-bit aligned");
  if ((ldm * sizeof(T)) % 16 != 0) emu::fail("wmma: ldm not a multiple of 16 bytes");
}

template <class Use, class T, class L, class V>
void fill_fragment(fragment<Use, 16, 16, 16, T, L> &f, V x) {
  for (auto &e : f.v) e = (T)x;
}

template <class Use, class T, class L>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, L> &f, const T *p, unsigned ldm) {
  static_assert(!std::is_same_v<Use, accumulator>, "accumulator loads take a layout");
  check_ptr(p, ldm);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) f.v[r * 16 + c] = std::is_same_v<L, row_major> ? p[r * ldm + c] : p[c * ldm + r];
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float> &f, const float *p, unsigned ldm, layout_t l) {
  check_ptr(p, ldm);
  for (int r = 0; r < 16; r++)
    for (int c = 0; c < 16; c++) f.v[r * 16 + c] = l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
}

inline void store_matrix_sync(float *p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm, layout_t l) {
  check_ptr(p, ldm);
  for (int e = (int)(emu::tIdx.x % 32); e < 256; e += 32) {
    int r = e / 16, c = e % 16;
    (l == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.v[e];
  }
}

template <class LA, class LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA> &a,
              const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB> &b,
              const fragment<accumulator, 16, 16, 16, float> &c) {
  float out[256];
  for (int i = 0; i < 16; i++)
    for (int j = 0; j < 16; j++) {
      float s = c.v[i * 16 + j];
      for (int k = 0; k < 16; k++) s += __bfloat162float(a.v[i * 16 + k]) * __bfloat162float(b.v[k * 16 + j]);
      out[i * 16 + j] = s;
    }
  std::memcpy(d.v, out, sizeof out);
}

}  // namespace wmma
}  // namespace nvcuda
