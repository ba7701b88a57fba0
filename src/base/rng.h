/* rng.h: counter-based random numbers (Random123's Philox4x32-10), the same in C and CUDA.
 *
 * Why Philox: a counter-based generator has no state to carry, so element j of example i
 * can be drawn directly from (seed, step, purpose, i, j) on any backend, in any order, on
 * any rank. That is what makes the training trajectory independent of the number of
 * ranks and identical (to rounding of logf/cosf) on CPU and GPU.
 *
 * Counter layout: {j / 4, example, step, purpose}; key: the 64-bit seed. One call yields
 * four 32-bit words; element j takes word j % 4 (uniform), or the Box-Muller pair that
 * word belongs to (normal).
 */
#ifndef DDIM_RNG_H
#define DDIM_RNG_H

#include <Random123/philox.h>
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define RNG_FN static __host__ __device__ inline
#else
#define RNG_FN static inline
#endif

RNG_FN philox4x32_ctr_t rng_block(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t example,
                                  uint32_t block)
{
    philox4x32_ctr_t ctr = {{block, example, step, purpose}};
    philox4x32_key_t key = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    return philox4x32(ctr, key);
}

/* A raw 32-bit word: element j of the stream (for shuffles). */
RNG_FN uint32_t rng_u32(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t example,
                        uint32_t j)
{
    return rng_block(seed, purpose, step, example, j / 4).v[j % 4];
}

/* A 32-bit word to a float in (0, 1): never 0, so logf is finite. */
RNG_FN float rng_u01(uint32_t x)
{
    return ((float)(x >> 8) + 0.5f) * (1.0f / 16777216.0f);
}

RNG_FN float rng_uniform(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t example,
                         uint32_t j)
{
    philox4x32_ctr_t r = rng_block(seed, purpose, step, example, j / 4);
    return rng_u01(r.v[j % 4]);
}

/* Standard normal by Box-Muller on the word pair (0,1) or (2,3) that holds element j. */
RNG_FN float rng_normal(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t example,
                        uint32_t j)
{
    philox4x32_ctr_t r = rng_block(seed, purpose, step, example, j / 4);
    uint32_t pair = (j % 4) / 2;
    float u1 = rng_u01(r.v[2 * pair]);
    float u2 = rng_u01(r.v[2 * pair + 1]);
    float radius = sqrtf(-2.0f * logf(u1));
    float angle = 6.2831853071795864f * u2;
    return (j % 2 == 0) ? radius * cosf(angle) : radius * sinf(angle);
}

#endif
