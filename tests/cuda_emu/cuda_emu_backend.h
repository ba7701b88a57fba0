/* cuda_emu_backend.h: the CUDA backend built from kernels/cuda_*.cu for the host emulation
 * (cuda_emu.h): the same op table as cuda_backend_create's, computed on the CPU by the
 * same kernels, without the cuDNN convolutions (conv2d_forward and conv2d_backward are NULL,
 * so backend_missing_ops names them). For tests only: test_cuda_emu runs
 * tests/test_cuda_ops.c on it. */
#ifndef DDIM_CUDA_EMU_BACKEND_H
#define DDIM_CUDA_EMU_BACKEND_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct backend;

/* The emulated device 0; NULL with the reason in err if the backend's creation fails. */
struct backend *backend_cuda_emu_create(char *err, size_t errlen);

/* The same with plain direct convolutions (tests/cuda_emu/emu_conv.cu) in place of cuDNN's,
 * U-Net shapes only: for tests of whole training steps on the emulated backend (named
 * "cuda-emu-conv"). */
struct backend *backend_cuda_emu_create_with_conv(char *err, size_t errlen);

/* Stream work (kernel launches, async copies and fills, event records) the emulated device
 * has run at once, outside stream capture and graph launches, since the program started: a
 * training step replayed as one graph must add none. */
long backend_cuda_emu_eager_work(void);

#ifdef __cplusplus
}
#endif

#endif
