// gemm.cu: row-major GEMMs on cuBLAS, with the signature of package lora's sgemm so that the CUDA
// layers read like the CPU reference. cuBLAS is column-major: a row-major C = op(A) op(B) is the
// column-major C^T = op(B)^T op(A)^T, so the operands swap places and keep their transposes.
//
// fp32 operands use CUBLAS_COMPUTE_32F, which is true fp32 (TF32 only with an explicit opt-in,
// which we never give: the fp32 mode is the tight-parity mode). bf16 operands with the same compute
// type run on the tensor cores with fp32 accumulation and an fp32 C.
#include "internal.cuh"

namespace {
int gemm_to(vz_engine *e, Err &err, bool ta, bool tb, int M, int N, int K, float alpha, const void *A, int lda,
            const void *B, int ldb, float beta, void *C, cudaDataType ct, int ldc, cudaDataType t) {
  if (M == 0 || N == 0 || K == 0) return 0;  // callers never rely on beta scaling with K = 0
  BLAS_CK(cublasGemmEx(e->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                       &alpha, B, t, ldb, A, t, lda, &beta, C, ct, ldc, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT));
  if (e->debug_sync) CUDA_CK(cudaStreamSynchronize(e->stream));
  return 0;
}
}  // namespace

int gemm(vz_engine *e, Err &err, bool ta, bool tb, int M, int N, int K, float alpha, const void *A,
         int lda, const void *B, int ldb, float beta, float *C, int ldc, cudaDataType t) {
  return gemm_to(e, err, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, CUDA_R_32F, ldc, t);
}

int gemm_bf16_out(vz_engine *e, Err &err, bool ta, bool tb, int M, int N, int K, float alpha, const void *A, int lda,
                  const void *B, int ldb, __nv_bfloat16 *C, int ldc) {
  return gemm_to(e, err, ta, tb, M, N, K, alpha, A, lda, B, ldb, 0.f, C, CUDA_R_16BF, ldc, CUDA_R_16BF);
}

int gemm_batched(vz_engine *e, Err &err, bool ta, bool tb, int M, int N, int K, float alpha,
                 const void *A, int lda, long long sA, const void *B, int ldb, long long sB,
                 float beta, float *C, int ldc, long long sC, int batch, cudaDataType t) {
  if (M == 0 || N == 0 || K == 0 || batch == 0) return 0;
  BLAS_CK(cublasGemmStridedBatchedEx(e->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     N, M, K, &alpha, B, t, ldb, sB, A, t, lda, sA, &beta, C, CUDA_R_32F,
                                     ldc, sC, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  if (e->debug_sync) CUDA_CK(cudaStreamSynchronize(e->stream));
  return 0;
}

int to_compute(vz_engine *e, Err &err, const float *x, size_t count, __nv_bfloat16 *dst, const void **out) {
  if (e->wtype == CUDA_R_32F) {
    *out = x;
    return 0;
  }
  TRY(k_convert_bf16(e, err, dst, x, count));
  *out = dst;
  return 0;
}

int operand_ld(const vz_engine *e, int cols) { return e->wtype == CUDA_R_32F ? cols : cols + e->lrp; }

int operand(vz_engine *e, Err &err, const float *x, int rows, int cols, const void **out, int *ld) {
  *ld = operand_ld(e, cols);
  if (e->wtype == CUDA_R_32F) {
    *out = x;
    return 0;
  }
  TRY(k_convert_bf16_ld(e, err, e->w.slot, *ld, x, rows, cols));
  *out = e->w.slot;
  return 0;
}
