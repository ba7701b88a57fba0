/* cpu_norm.c: BatchNormalization without center/scale, split into per-channel sums and an
 * apply step so that the sums can be all-reduced across ranks in between (synchronized
 * BatchNorm). Sums accumulate in double per thread, then combine in a fixed order, so the
 * result does not depend on scheduling. */
#include "cpu_ops.h"
#include "util.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

/* out (2c): [sum_r a[r,c], sum_r a[r,c]*b[r,c]] with b = a when b is NULL (sum of
 * squares), or b = (x - mean) * invstd when saved is given (backward: sum dy*xhat). */
static void channel_sums(float *out, const float *a, const float *x, const float *saved,
                         size_t rows, int c)
{
    int nt = omp_get_max_threads();
    double *part = util_xcalloc((size_t)nt * 2 * c, sizeof(double));
#pragma omp parallel num_threads(nt)
    {
        double *s1 = part + (size_t)omp_get_thread_num() * 2 * c, *s2 = s1 + c;
#pragma omp for schedule(static)
        for (long r = 0; r < (long)rows; r++) {
            const float *ar = a + (size_t)r * c;
            const float *xr = x ? x + (size_t)r * c : NULL;
            for (int j = 0; j < c; j++) {
                double v = ar[j];
                double other = xr ? ((double)xr[j] - saved[j]) * saved[c + j] : v;
                s1[j] += v;
                s2[j] += v * other;
            }
        }
    }
    for (int j = 0; j < 2 * c; j++) {
        double acc = 0;
        for (int t = 0; t < nt; t++)
            acc += part[(size_t)t * 2 * c + j];
        out[j] = (float)acc;
    }
    free(part);
}

void cpu_bn_stats(struct backend *be, float *stats, const float *x, size_t rows, int c)
{
    channel_sums(stats, x, NULL, NULL, rows, c);
}

void cpu_bn_forward_train(struct backend *be, float *y, float *saved, float *moving_mean,
                          float *moving_var, const float *x, const float *stats, double count,
                          size_t rows, int c, float momentum, float eps)
{
    float *mean = saved, *invstd = saved + c;
    double bessel = count > 1 ? count / (count - 1) : 1.0;
    for (int j = 0; j < c; j++) {
        double m = stats[j] / count;
        double var = stats[c + j] / count - m * m;
        if (var < 0)
            var = 0; /* rounding in E[x^2] - E[x]^2 */
        mean[j] = (float)m;
        invstd[j] = (float)(1.0 / sqrt(var + eps));
        moving_mean[j] = momentum * moving_mean[j] + (1.0f - momentum) * (float)m;
        moving_var[j] = momentum * moving_var[j] + (1.0f - momentum) * (float)(var * bessel);
    }
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++)
        for (int j = 0; j < c; j++)
            y[(size_t)r * c + j] = (x[(size_t)r * c + j] - mean[j]) * invstd[j];
}

void cpu_bn_forward_infer(struct backend *be, float *y, const float *x, const float *moving_mean,
                          const float *moving_var, size_t rows, int c, float eps)
{
    float *invstd = util_xmalloc((size_t)c * sizeof(float));
    for (int j = 0; j < c; j++)
        invstd[j] = 1.0f / sqrtf(moving_var[j] + eps);
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++)
        for (int j = 0; j < c; j++)
            y[(size_t)r * c + j] = (x[(size_t)r * c + j] - moving_mean[j]) * invstd[j];
    free(invstd);
}

void cpu_bn_backward_stats(struct backend *be, float *bstats, const float *dy, const float *x,
                           const float *saved, size_t rows, int c)
{
    channel_sums(bstats, dy, x, saved, rows, c);
}

void cpu_bn_backward_apply(struct backend *be, float *dx, const float *dy, const float *x,
                           const float *saved, const float *bstats, double count, size_t rows,
                           int c, enum grad_mode mode)
{
    const float *mean = saved, *invstd = saved + c;
    int add = mode == GRAD_ADD;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++) {
        for (int j = 0; j < c; j++) {
            size_t i = (size_t)r * c + j;
            float xhat = (x[i] - mean[j]) * invstd[j];
            float mean_dy = (float)(bstats[j] / count);
            float mean_dy_xhat = (float)(bstats[c + j] / count);
            dx[i] = (add ? dx[i] : 0.0f) + invstd[j] * (dy[i] - mean_dy - xhat * mean_dy_xhat);
        }
    }
}
