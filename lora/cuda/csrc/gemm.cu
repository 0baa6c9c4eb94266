// gemm.cu: row-major GEMMs on cuBLAS, with the signature of package lora's sgemm so that the CUDA
// layers read like the CPU reference. cuBLAS is column-major: a row-major C = op(A) op(B) is the
// column-major C^T = op(B)^T op(A)^T, so the operands swap places and keep their transposes.
//
// fp32 operands use CUBLAS_COMPUTE_32F, which is true fp32 (TF32 only with an explicit opt-in,
// which we never give: the fp32 mode is the tight-parity mode). bf16 operands with the same compute
// type run on the tensor cores with fp32 accumulation and an fp32 C.
#include "internal.cuh"

namespace {
// gemm_op names a GEMM for the operation profile (VZLOCAL_CUDA_PROFILE=2) by its shape, transposes
// and types, so that each projection's GEMMs are one row with their rate.
void gemm_op(vz_engine *e, bool ta, bool tb, int M, int N, int K, int batch, cudaDataType t, cudaDataType ct) {
  if (e->prof.level < 2) return;
  char name[96];
  snprintf(name, sizeof name, "gemm %c%c %dx%dx%d%s%s %s", ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K,
           batch > 1 ? " batched x" : "", batch > 1 ? std::to_string(batch).c_str() : "",
           t == CUDA_R_16BF ? (ct == CUDA_R_16BF ? "bf16->bf16" : "bf16->f32") : "f32");
  prof_op_at(e, name, 2.0 * M * N * K * batch, nullptr);
}

int gemm_to(vz_engine *e, Err &err, bool ta, bool tb, int M, int N, int K, float alpha, const void *A, int lda,
            const void *B, int ldb, float beta, void *C, cudaDataType ct, int ldc, cudaDataType t) {
  if (M == 0 || N == 0 || K == 0) return 0;  // callers never rely on beta scaling with K = 0
  BLAS_CK(cublasGemmEx(e->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                       &alpha, B, t, ldb, A, t, lda, &beta, C, ct, ldc, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT));
  if (e->debug_sync) CUDA_CK(cudaStreamSynchronize(e->stream));
  gemm_op(e, ta, tb, M, N, K, 1, t, ct);
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
  gemm_op(e, ta, tb, M, N, K, batch, t, CUDA_R_32F);
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
