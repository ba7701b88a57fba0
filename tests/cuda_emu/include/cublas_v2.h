/* cublas_v2.h for the host emulation: the names kernels/cuda_common.h declares with, and
 * no cuBLAS (no emulated file calls it). */
#ifndef DDIM_CUDA_EMU_CUBLAS_H
#define DDIM_CUDA_EMU_CUBLAS_H
typedef struct cublasContext *cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;
const char *cublasGetStatusString(cublasStatus_t status);
#endif
