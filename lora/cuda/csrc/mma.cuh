// mma.cuh: the warp-level tensor-core primitives flash.cuh is written with (sm_80 and later):
// ldmatrix (8x8 bf16 matrices from shared memory into the mma operand layout, plain or
// transposed), mma.sync m16n8k16 (bf16 operands, fp32 accumulators) and cp.async (16-byte
// global-to-shared copies that do not hold registers while in flight).
//
// Register layouts (PTX ISA, "Matrix fragments for mma.m16n8k16"; g = lane / 4, t = lane % 4):
//   A 16x16, four .b32 of two bf16 each: a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..),
//     a3 = (g+8, 2t+8..)
//   B 16x8 (k x n), two .b32: b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g)
//   C/D 16x8 fp32, four floats: c0, c1 = (g, 2t..2t+1), c2, c3 = (g+8, 2t..2t+1)
//   ldmatrix .x4: lanes 8i..8i+7 give the row addresses of matrix i; register i of every lane gets
//     (row g, columns 2t..2t+1) of matrix i, or with .trans (rows 2t and 2t+1, column g).
// The lower-addressed (lower-indexed) bf16 of a pair is the register's low half.
//
// emu/cuda_emu.h implements the same functions on the CPU (VZ_EMU), exchanging the operands of
// the 32 lanes as the hardware does, so a wrong address or fragment index shows in the CPU test.
#pragma once

#ifndef VZ_EMU
#include <cuda_bf16.h>
#include <cstdint>

namespace mma {

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}

// ldsm_x4 loads four 8x8 bf16 matrices (row addresses from lanes 8i..8i+7, 16-byte aligned).
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void *row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row)));
}

// ldsm_x4_t is ldsm_x4 with each matrix transposed.
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void *row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row)));
}

// mma16816: d += a b for a 16x16 A, a 16x8 B (b0, b1) and a 16x8 fp32 D.
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// pack_bf16 rounds two floats to bf16 (nearest even) into one register, lo in the low half.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t *>(&v);
}

// cp_async16 copies 16 bytes from global to shared memory in the background; with valid false it
// writes 16 zero bytes and reads nothing. commit closes a group of copies, wait<N> waits until at
// most N groups are still in flight (the copies are then visible to this thread; other threads
// see them after a barrier).
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

}  // namespace mma
#endif
