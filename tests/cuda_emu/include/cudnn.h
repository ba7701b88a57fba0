/* cudnn.h for the host emulation: the names kernels/cuda_common.h declares with, and no
 * cuDNN. The emulated backend has no convolutions (cuda_conv.cu and cuda_conv_plan.cu are
 * not emulated; the ops are left NULL, see emu_backend.cc). */
#ifndef DDIM_CUDA_EMU_CUDNN_H
#define DDIM_CUDA_EMU_CUDNN_H
typedef struct cudnnContext *cudnnHandle_t;
typedef enum { CUDNN_STATUS_SUCCESS = 0 } cudnnStatus_t;
const char *cudnnGetErrorString(cudnnStatus_t status);
#endif
