/* cuda_optim.cu: Keras AdamW and the EMA update on the GPU, over flat parameter buffers.
 * The per-call scalars (the bias-corrected step size, 1 - beta, 1 - decay) are computed on
 * the host with kernels/cpu_diffusion.c's float32 expressions and the kernels repeat its
 * per-element arithmetic in the same order, so both backends give the same bits. */
#include "cuda_common.h"

/* w -= w*wd*lr; m += (g-m)(1-b1); v += (g^2-v)(1-b2); w -= m*alpha / (sqrt(v) + eps) */
static __global__ void adamw_kernel(float *w, const float *g, float *m, float *v, size_t n,
                                    float lr, float wd, float alpha, float one_minus_b1,
                                    float one_minus_b2, float eps)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        float wi = w[i] - w[i] * wd * lr; /* decoupled decay first, as Keras applies it */
        float gi = g[i];
        float mi = m[i] + (gi - m[i]) * one_minus_b1;
        float vi = v[i] + (gi * gi - v[i]) * one_minus_b2;
        m[i] = mi;
        v[i] = vi;
        w[i] = wi - (mi * alpha) / (sqrtf(vi) + eps);
    }
}

void cuda_adamw_update(struct backend *be, float *w, const float *g, float *m, float *v, size_t n,
                       float lr, float beta1, float beta2, float eps, float wd, int step)
{
    if (!n)
        return;
    float t = (float)step;
    float alpha = lr * sqrtf(1.0f - powf(beta2, t)) / (1.0f - powf(beta1, t));
    float one_minus_b1 = 1.0f - beta1, one_minus_b2 = 1.0f - beta2;
    adamw_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        w, g, m, v, n, lr, wd, alpha, one_minus_b1, one_minus_b2, eps);
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
