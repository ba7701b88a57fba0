/* cuda_optim.cu: Keras AdamW and the EMA update on the GPU, over flat parameter buffers.
 * The per-step scalars are computed on the host (a table in device memory, indexed by a
 * counter) and the per-element arithmetic is src/base/optim_math.h's, the same code the CPU
 * backend runs, so both give the same bits. */
#include "cuda_common.h"
#include "optim_math.h"

/* Keras AdamW per element: src/base/optim_math.h, shared with the CPU backend; the step's
 * scalars read from the table at the counter (one broadcast load per thread) */
static __global__ void adamw_kernel(float *w, const float *g, float *m, float *v, size_t n,
                                    const struct adamw_scalars *table, const int32_t *index)
{
    struct adamw_scalars s = table[*index];
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        adamw_element(&w[i], g[i], &m[i], &v[i], s);
    }
}

void cuda_adamw_update(struct backend *be, float *w, const float *g, float *m, float *v, size_t n,
                       const struct adamw_scalars *table, const int32_t *index)
{
    if (!n)
        return;
    adamw_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(w, g, m, v, n, table,
                                                                               index);
    KERNEL_CHECK();
}

/* ema = decay*ema + (1-decay)*w */
static __global__ void ema_kernel(float *ema, const float *w, size_t n, float decay, float keep)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        ema[i] = decay * ema[i] + keep * w[i];
    }
}

void cuda_ema_update(struct backend *be, float *ema, const float *w, size_t n, float decay)
{
    if (!n)
        return;
    float keep = 1.0f - decay;
    ema_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(ema, w, n, decay,
                                                                             keep);
    KERNEL_CHECK();
}
