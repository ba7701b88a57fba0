/* cuda_bf16.h for the host emulation: __nv_bfloat16 and the two conversions the kernels use,
 * on src/base/bf16.h, whose rounding is CUDA's own (to nearest even, NaN to 0x7fff: the host
 * path of CUDA's cuda_bf16.hpp), so that kernels/cuda_*.cu compile with g++ unchanged. */
#ifndef DDIM_CUDA_EMU_BF16_H
#define DDIM_CUDA_EMU_BF16_H

#include "bf16.h"

struct __nv_bfloat16 {
    unsigned short x;
};

static inline __nv_bfloat16 __float2bfloat16_rn(float f)
{
    __nv_bfloat16 b;
    b.x = bf16_from_float(f);
    return b;
}

static inline float __bfloat162float(__nv_bfloat16 b)
{
    return bf16_to_float(b.x);
}

#endif
