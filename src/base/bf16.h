/* bf16.h: bfloat16 on the host: float32 to bf16 rounded to nearest, ties to even, as CUDA's
 * __float2bfloat16_rn (cvt.rn.bf16.f32) rounds, and back (exact: a bf16 is the top half of
 * a float32). A NaN becomes the canonical NaN 0x7fff, as CUDA's does; infinities stay,
 * finite values beyond the largest bf16 round to infinity, subnormals round like the rest.
 *
 * The CPU backend emulates bf16 activations with it (backend.h's PRECISION_BF16: float32
 * values rounded to bf16), the tests read and write bf16 device memory with it, and the
 * CUDA host emulation builds its __nv_bfloat16 on it (tests/cuda_emu/include/cuda_bf16.h). */
#ifndef DDIM_BF16_H
#define DDIM_BF16_H

#include <stdint.h>
#include <string.h>

static inline uint16_t bf16_from_float(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return 0x7fffu;
    u += 0x7fffu + ((u >> 16) & 1u); /* below half: down; above: up; a tie: to the even one */
    return (uint16_t)(u >> 16);
}

static inline float bf16_to_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* f rounded to the nearest bf16, as a float32 */
static inline float bf16_round(float f)
{
    return bf16_to_float(bf16_from_float(f));
}

#endif
