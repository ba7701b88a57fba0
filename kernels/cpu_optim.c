/* cpu_optim.c: Keras AdamW and the EMA update on the CPU, over flat parameter buffers (the
 * CUDA pair: cuda_optim.cu). The per-step scalars (a table computed on the host, indexed by
 * a counter) and the per-element arithmetic are src/base/optim_math.h's, the code the CUDA
 * backend runs too, so both give the same bits. */
#include "cpu_ops.h"
#include "optim_math.h"

void cpu_adamw_update(struct backend *be, float *w, const float *g, float *m, float *v, size_t n,
                      const struct adamw_scalars *table, const int32_t *index)
{
    struct adamw_scalars s = table[*index];
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++)
        adamw_element(&w[i], g[i], &m[i], &v[i], s);
}

void cpu_ema_update(struct backend *be, float *ema, const float *w, size_t n, float decay)
{
    float keep = 1.0f - decay;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++)
        ema[i] = decay * ema[i] + keep * w[i];
}
