// dequant.cu: ggml block formats dequantized on the GPU, so that a layer's base matrices can stay
// quantized in device memory and be expanded into a bf16 (or fp32) scratch just before the layer
// runs (docs/cuda.md, memory plan). One thread per output element, the formulas of ggml's
// dequantize_row_* (ggml-quants.c) as lora/dequant_ref.go writes them, in the same float32
// operation order, so the fp32 output is bit-identical to ggml's to_float.
#include "internal.cuh"

#include <cuda_fp16.h>

namespace {

__device__ float f16_at(const uint8_t *p) {
  unsigned short u = (unsigned short)(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(u));
}

// get_scale_min_k4: the j-th 6-bit (scale, min) pair of a K-quant block.
__device__ void scale_min_k4(int j, const uint8_t *q, int *d, int *m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

__device__ float dequant_one(int type, const uint8_t *src, size_t i) {
  switch (type) {
    case VZ_GGML_F32: return ((const float *)src)[i];
    case VZ_GGML_F16: return f16_at(src + 2 * i);
    case VZ_GGML_BF16: {
      unsigned int u = (unsigned int)(src[2 * i] | (src[2 * i + 1] << 8)) << 16;
      return __uint_as_float(u);
    }
    case VZ_GGML_Q8_0: {  // f16 d, int8 qs[32]
      const uint8_t *b = src + (i / 32) * 34;
      return __fmul_rn((float)(int8_t)b[2 + i % 32], f16_at(b));
    }
    case VZ_GGML_Q4_K: {  // f16 d, f16 dmin, u8 scales[12], u8 qs[128]
      const uint8_t *b = src + (i / 256) * 144;
      int j = (int)(i % 256), c = j / 64, l = j % 32, upper = (j % 64) >= 32;
      int sc, mn;
      scale_min_k4(2 * c + upper, b + 4, &sc, &mn);
      uint8_t q = b[16 + 32 * c + l];
      float d1 = __fmul_rn(f16_at(b), (float)sc), m1 = __fmul_rn(f16_at(b + 2), (float)mn);
      // _rn intrinsics: never contracted into an FMA, so the rounding is ggml's.
      return __fsub_rn(__fmul_rn(d1, (float)(upper ? q >> 4 : q & 0xF)), m1);
    }
    case VZ_GGML_Q6_K: {  // u8 ql[128], u8 qh[64], i8 scales[16], f16 d
      const uint8_t *b = src + (i / 256) * 210;
      int j = (int)(i % 256), n = j / 128, k = (j % 128) / 32, l = j % 32, is = l / 16;
      const uint8_t *ql = b + 64 * n, *qh = b + 128 + 32 * n;
      const int8_t *sc = (const int8_t *)(b + 192 + 8 * n);
      int lo = (k & 1) ? ql[l + 32] : ql[l];
      lo = (k >= 2) ? lo >> 4 : lo & 0xF;
      int q = (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
      return __fmul_rn(__fmul_rn(f16_at(b + 208), (float)sc[is + 2 * k]), (float)q);
    }
  }
  return 0.f;
}

template <typename T> __device__ void store(T *dst, size_t i, float v);
template <> __device__ void store<float>(float *dst, size_t i, float v) { dst[i] = v; }
template <> __device__ void store<__nv_bfloat16>(__nv_bfloat16 *dst, size_t i, float v) { dst[i] = __float2bfloat16(v); }

// dequant: element i of the [n / cols][cols] matrix goes to row i / cols, column i % cols of a
// destination with row stride ld.
template <typename T> __global__ void dequant(T *dst, const uint8_t *src, int type, size_t n, int cols, int ld) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    store(dst, i / cols * ld + i % cols, dequant_one(type, src, i));
}

}  // namespace

int ggml_block(int type, int *elems, int *bytes) {
  switch (type) {
    case VZ_GGML_F32: *elems = 1, *bytes = 4; return 0;
    case VZ_GGML_F16: case VZ_GGML_BF16: *elems = 1, *bytes = 2; return 0;
    case VZ_GGML_Q8_0: *elems = 32, *bytes = 34; return 0;
    case VZ_GGML_Q4_K: *elems = 256, *bytes = 144; return 0;
    case VZ_GGML_Q6_K: *elems = 256, *bytes = 210; return 0;
  }
  return -1;
}

int k_dequant(vz_engine *e, Err &err, void *dst, const void *src, int type, int rows, int cols, int ld) {
  size_t n = (size_t)rows * cols;
  if (n == 0) return 0;
  unsigned grid = grid_for(n);
  if (e->wtype == CUDA_R_16BF)
    dequant<__nv_bfloat16><<<grid, kBlock, 0, e->stream>>>((__nv_bfloat16 *)dst, (const uint8_t *)src, type, n, cols, ld);
  else
    dequant<float><<<grid, kBlock, 0, e->stream>>>((float *)dst, (const uint8_t *)src, type, n, cols, ld);
  LAUNCH_CK();
  return 0;
}

int k_dequant_f32(vz_engine *e, Err &err, float *dst, const void *src, int type, size_t n) {
  if (n == 0) return 0;
  unsigned grid = grid_for(n);
  dequant<float><<<grid, kBlock, 0, e->stream>>>(dst, (const uint8_t *)src, type, n, 1, 1);
  LAUNCH_CK();
  return 0;
}
