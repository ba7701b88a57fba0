/* cpu_diffusion.c: the diffusion schedule, mixing, (de)normalization and Philox random
 * numbers on the CPU, in float32 in the order Keras computes them (the CUDA pair:
 * cuda_diffusion.cu). */
#include "cpu_ops.h"
#include "rng.h"

#include <math.h>

void cpu_diffusion_schedule(struct backend *be, float *noise_rates, float *signal_rates,
                            const float *times, int n, float min_signal_rate, float max_signal_rate)
{
    float start = acosf(max_signal_rate), end = acosf(min_signal_rate);
    float span = end - start;
    for (int i = 0; i < n; i++) {
        float angle = start + times[i] * span;
        noise_rates[i] = sinf(angle);
        signal_rates[i] = cosf(angle);
    }
}

void cpu_mix(struct backend *be, float *y, const float *sa, const float *a, const float *sb,
             const float *b, int n, size_t per)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < per; j++) {
            size_t k = (size_t)i * per + j;
            y[k] = sa[i] * a[k] + sb[i] * b[k];
        }
}

void cpu_pred_images(struct backend *be, float *y, const float *noisy, const float *pred_noises,
                     const float *noise_rates, const float *signal_rates, int n, size_t per)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < per; j++) {
            size_t k = (size_t)i * per + j;
            y[k] = (noisy[k] - noise_rates[i] * pred_noises[k]) / signal_rates[i];
        }
}

void cpu_square(struct backend *be, float *v, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = x[i] * x[i];
}

void cpu_normalize(struct backend *be, float *y, const float *x, const float *mean,
                   const float *var, size_t rows, int c)
{
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++)
        for (int j = 0; j < c; j++)
            y[(size_t)r * c + j] = (x[(size_t)r * c + j] - mean[j]) / fmaxf(sqrtf(var[j]), 1e-7f);
}

void cpu_denormalize(struct backend *be, float *y, const float *x, const float *mean,
                     const float *var, size_t rows, int c)
{
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++)
        for (int j = 0; j < c; j++) {
            float v = mean[j] + x[(size_t)r * c + j] * sqrtf(var[j]);
            y[(size_t)r * c + j] = fminf(fmaxf(v, 0.0f), 1.0f);
        }
}

/* x[i*per + j] = rng(seed, purpose, step, first + i, j), normal or uniform */
static void fill_random(float *x, int n, size_t per, uint64_t seed, uint32_t step, uint32_t purpose,
                        uint32_t first, int normal)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < per; j++)
            x[(size_t)i * per + j] = normal
                                         ? rng_normal(seed, purpose, step, first + i, (uint32_t)j)
                                         : rng_uniform(seed, purpose, step, first + i, (uint32_t)j);
}

/* the step: step + *step_add where a counter is given (backend.h) */
void cpu_fill_normal(struct backend *be, float *x, int n, size_t per, uint64_t seed, uint32_t step,
                     uint32_t purpose, uint32_t first, const int32_t *step_add)
{
    fill_random(x, n, per, seed, step + (step_add ? (uint32_t)*step_add : 0), purpose, first, 1);
}

void cpu_fill_uniform(struct backend *be, float *x, int n, size_t per, uint64_t seed, uint32_t step,
                      uint32_t purpose, uint32_t first, const int32_t *step_add)
{
    fill_random(x, n, per, seed, step + (step_add ? (uint32_t)*step_add : 0), purpose, first, 0);
}
