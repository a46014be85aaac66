// CPU emulation of the cuBLAS calls trine's CUDA backend makes (column-major SGEMM, plain loops
// in double; in CUBLAS_TF32_TENSOR_OP_MATH the inputs are rounded to TF32 first). Test tool only:
// see scripts/cuda_emu/run.sh.
#pragma once

#include <cstdint>

#include "cuda_runtime.h"

enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_INVALID_VALUE = 7,
};
enum cublasOperation_t { CUBLAS_OP_N, CUBLAS_OP_T };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 };
using cublasHandle_t = struct emu_cublas*;

cublasStatus_t cublasCreate(cublasHandle_t* h);
cublasStatus_t cublasDestroy(cublasHandle_t h);
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m);
cublasStatus_t cublasGetVersion(cublasHandle_t h, int* v);
const char* cublasGetStatusName(cublasStatus_t s);
const char* cublasGetStatusString(cublasStatus_t s);
cublasStatus_t cublasSgemm_64(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
                              int64_t m, int64_t n, int64_t k, const float* alpha, const float* A,
                              int64_t lda, const float* B, int64_t ldb, const float* beta, float* C,
                              int64_t ldc);
cublasStatus_t cublasSgemmStridedBatched_64(cublasHandle_t h, cublasOperation_t ta,
                                            cublasOperation_t tb, int64_t m, int64_t n, int64_t k,
                                            const float* alpha, const float* A, int64_t lda,
                                            int64_t sa, const float* B, int64_t ldb, int64_t sb,
                                            const float* beta, float* C, int64_t ldc, int64_t sc,
                                            int64_t batch);
