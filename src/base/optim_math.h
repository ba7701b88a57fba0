/* optim_math.h: Keras AdamW's arithmetic, written once for both backends (a plain C
 * function on the CPU, a device function in CUDA), so that they compute the same bits.
 * Order as Keras applies it: the decoupled decay w -= w*wd*lr first, with the weight
 * before the update; then m += (g-m)(1-b1), v += (g^2-v)(1-b2) and
 * w -= m*alpha / (sqrt(v) + eps), with alpha = lr*sqrt(1-b2^t)/(1-b1^t) (epsilon outside
 * the bias correction). */
#ifndef DDIM_OPTIM_MATH_H
#define DDIM_OPTIM_MATH_H

#include <math.h>

#if defined(__CUDACC__)
#define OPTIM_FN static __host__ __device__ inline
#else
#define OPTIM_FN static inline
#endif

struct adamw_scalars {
    float lr, wd, eps;
    float alpha;                      /* bias-corrected step size of step t */
    float one_minus_b1, one_minus_b2; /* float32(1 - beta) */
};

/* The per-call scalars of step t (1-based), computed on the host in float32. */
OPTIM_FN struct adamw_scalars adamw_scalars_for_step(float lr, float beta1, float beta2, float eps,
                                                     float wd, int step)
{
    float t = (float)step;
    struct adamw_scalars s;
    s.lr = lr;
    s.wd = wd;
    s.eps = eps;
    s.alpha = lr * sqrtf(1.0f - powf(beta2, t)) / (1.0f - powf(beta1, t));
    s.one_minus_b1 = 1.0f - beta1;
    s.one_minus_b2 = 1.0f - beta2;
    return s;
}

/* One weight's update; w, m, v in place. */
OPTIM_FN void adamw_element(float *w, float g, float *m, float *v, struct adamw_scalars s)
{
    float wi = *w - *w * s.wd * s.lr;
    float mi = *m + (g - *m) * s.one_minus_b1;
    float vi = *v + (g * g - *v) * s.one_minus_b2;
    *m = mi;
    *v = vi;
    *w = wi - (mi * s.alpha) / (sqrtf(vi) + s.eps);
}

#endif
