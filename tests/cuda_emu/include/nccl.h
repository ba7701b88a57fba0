/* nccl.h for the host emulation: the names kernels/cuda_common.h declares with, and no
 * NCCL (the communicator, comm/nccl_comm.c, is not part of the emulated backend). */
#ifndef DDIM_CUDA_EMU_NCCL_H
#define DDIM_CUDA_EMU_NCCL_H
typedef enum { ncclSuccess = 0 } ncclResult_t;
const char *ncclGetErrorString(ncclResult_t result);
#endif
