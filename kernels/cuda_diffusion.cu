/* cuda_diffusion.cu: the diffusion schedule, mixing, (de)normalization and the Philox
 * random numbers on the GPU, with kernels/cpu_diffusion.c's float32 expressions.
 *
 * Scalars that the CPU computes once per call (acosf of the signal rates) are computed here
 * on the host with the same expressions and passed to the kernels, so both backends start
 * from the same bits; only sinf/cosf/logf inside kernels differ from glibc by an ulp or
 * two. The random numbers call src/base/rng.h with exactly the CPU's arguments. */
#include "cuda_common.h"
#include "rng.h"

/* noise_rates = sin(start + t*span), signal_rates = cos(...) */
static __global__ void diffusion_schedule_kernel(float *noise_rates, float *signal_rates,
                                                 const float *times, int n, float start, float span)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float angle = start + times[i] * span;
    noise_rates[i] = sinf(angle);
    signal_rates[i] = cosf(angle);
}

void cuda_diffusion_schedule(struct backend *be, float *noise_rates, float *signal_rates,
                             const float *times, int n, float min_signal_rate,
                             float max_signal_rate)
{
    if (n <= 0)
        return;
    float start = acosf(max_signal_rate), end = acosf(min_signal_rate);
    float span = end - start;
    diffusion_schedule_kernel<<<cuda_grid((size_t)n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        noise_rates, signal_rates, times, n, start, span);
    KERNEL_CHECK();
}

/* y[i,j] = sa[i]*a[i,j] + sb[i]*b[i,j] */
static __global__ void mix_kernel(float *y, const float *sa, const float *a, const float *sb,
                                  const float *b, int n, size_t per)
{
    CUDA_GRID_STRIDE_LOOP(k, (size_t)n * per)
    {
        size_t i = k / per;
        y[k] = sa[i] * a[k] + sb[i] * b[k];
    }
}

void cuda_mix(struct backend *be, float *y, const float *sa, const float *a, const float *sb,
              const float *b, int n, size_t per)
{
    size_t total = (size_t)(n > 0 ? n : 0) * per;
    if (!total)
        return;
    mix_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(y, sa, a, sb, b, n,
                                                                                 per);
    KERNEL_CHECK();
}

/* y[i,j] = (noisy[i,j] - noise_rates[i]*pred_noises[i,j]) / signal_rates[i] */
static __global__ void pred_images_kernel(float *y, const float *noisy, const float *pred_noises,
                                          const float *noise_rates, const float *signal_rates,
                                          int n, size_t per)
{
    CUDA_GRID_STRIDE_LOOP(k, (size_t)n * per)
    {
        size_t i = k / per;
        y[k] = (noisy[k] - noise_rates[i] * pred_noises[k]) / signal_rates[i];
    }
}

void cuda_pred_images(struct backend *be, float *y, const float *noisy, const float *pred_noises,
                      const float *noise_rates, const float *signal_rates, int n, size_t per)
{
    size_t total = (size_t)(n > 0 ? n : 0) * per;
    if (!total)
        return;
    pred_images_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        y, noisy, pred_noises, noise_rates, signal_rates, n, per);
    KERNEL_CHECK();
}

static __global__ void square_kernel(float *v, const float *x, size_t n)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        v[i] = x[i] * x[i];
    }
}

void cuda_square(struct backend *be, float *v, const float *x, size_t n)
{
    if (!n)
        return;
    square_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(v, x, n);
    KERNEL_CHECK();
}

/* y = (x - mean[c]) / max(sqrt(var[c]), 1e-7) (Keras Normalization) */
static __global__ void normalize_kernel(float *y, const float *x, const float *mean,
                                        const float *var, size_t rows, int c)
{
    CUDA_GRID_STRIDE_LOOP(i, rows * (size_t)c)
    {
        int j = (int)(i % c);
        float denom = fmaxf(sqrtf(var[j]), 1e-7f);
        y[i] = (x[i] - mean[j]) / denom;
    }
}

void cuda_normalize(struct backend *be, float *y, const float *x, const float *mean,
                    const float *var, size_t rows, int c)
{
    size_t total = rows * (size_t)(c > 0 ? c : 0);
    if (!total)
        return;
    normalize_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        y, x, mean, var, rows, c);
    KERNEL_CHECK();
}

/* y = clip(mean[c] + x*sqrt(var[c]), 0, 1) */
static __global__ void denormalize_kernel(float *y, const float *x, const float *mean,
                                          const float *var, size_t rows, int c)
{
    CUDA_GRID_STRIDE_LOOP(i, rows * (size_t)c)
    {
        int j = (int)(i % c);
        float v = mean[j] + x[i] * sqrtf(var[j]);
        y[i] = fminf(fmaxf(v, 0.0f), 1.0f);
    }
}

void cuda_denormalize(struct backend *be, float *y, const float *x, const float *mean,
                      const float *var, size_t rows, int c)
{
    size_t total = rows * (size_t)(c > 0 ? c : 0);
    if (!total)
        return;
    denormalize_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        y, x, mean, var, rows, c);
    KERNEL_CHECK();
}

/* x[i*per + j] = rng(seed, purpose, step, first + i, j): one thread per element, each
 * computing its own Philox block (4x redundant, but simple and exactly the contract). */
template <bool NORMAL>
static __global__ void fill_random_kernel(float *x, int n, size_t per, uint64_t seed, uint32_t step,
                                          uint32_t purpose, uint32_t first, const int32_t *step_add)
{
    if (step_add)
        step += (uint32_t)*step_add;
    CUDA_GRID_STRIDE_LOOP(k, (size_t)n * per)
    {
        uint32_t example = first + (uint32_t)(k / per);
        uint32_t j = (uint32_t)(k % per);
        x[k] = NORMAL ? rng_normal(seed, purpose, step, example, j)
                      : rng_uniform(seed, purpose, step, example, j);
    }
}

void cuda_fill_normal(struct backend *be, float *x, int n, size_t per, uint64_t seed, uint32_t step,
                      uint32_t purpose, uint32_t first, const int32_t *step_add)
{
    size_t total = (size_t)(n > 0 ? n : 0) * per;
    if (!total)
        return;
    fill_random_kernel<true><<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        x, n, per, seed, step, purpose, first, step_add);
    KERNEL_CHECK();
}

void cuda_fill_uniform(struct backend *be, float *x, int n, size_t per, uint64_t seed,
                       uint32_t step, uint32_t purpose, uint32_t first, const int32_t *step_add)
{
    size_t total = (size_t)(n > 0 ? n : 0) * per;
    if (!total)
        return;
    fill_random_kernel<false><<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        x, n, per, seed, step, purpose, first, step_add);
    KERNEL_CHECK();
}
