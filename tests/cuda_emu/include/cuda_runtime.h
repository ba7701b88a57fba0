/* cuda_runtime.h for the host emulation: the emulator (tests/cuda_emu/cuda_emu.h) in place
 * of the CUDA runtime, so that kernels/cuda_common.h compiles with g++ unchanged. */
#include "cuda_emu.h"
