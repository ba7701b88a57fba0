/* cpu_norm.c: BatchNormalization without center/scale, split into per-channel sums and an
 * apply step so that the sums can be all-reduced across ranks in between (synchronized
 * BatchNorm). Sums accumulate in double over fixed chunks of rows, then combine in chunk
 * order (cpu_ops.h): the result depends on neither the thread count nor the schedule. The
 * loops over rows are blocks of CPU_BLOCK elements, vectorized across channels. */
#include "cpu_ops.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>

/* s1[j] += sum_r a[r,j]; s2[j] += sum_r a[r,j]^2 (forward statistics) */
CPU_VECTOR_CLONES
static void sums_rows(double *restrict s1, double *restrict s2, const float *restrict a,
                      size_t rows, int c)
{
    for (size_t r = 0; r < rows; r++) {
        const float *ar = a + r * c;
        for (int j = 0; j < c; j++) {
            double v = ar[j];
            s1[j] += v;
            s2[j] += v * v;
        }
    }
}

/* s1[j] += sum_r dy[r,j]; s2[j] += sum_r dy[r,j] * xhat[r,j], xhat = (x - mean) * invstd in
 * double (backward statistics) */
CPU_VECTOR_CLONES
static void sums_rows_backward(double *restrict s1, double *restrict s2, const float *restrict dy,
                               const float *restrict x, const float *restrict saved, size_t rows,
                               int c)
{
    const float *mean = saved, *invstd = saved + c;
    for (size_t r = 0; r < rows; r++) {
        const float *dr = dy + r * c, *xr = x + r * c;
        for (int j = 0; j < c; j++) {
            double v = dr[j];
            s1[j] += v;
            s2[j] += v * (((double)xr[j] - mean[j]) * invstd[j]);
        }
    }
}

/* out (2c) = the two sums over all rows: forward (x NULL) or backward (dy = a, x, saved). */
static void channel_sums(float *out, const float *a, const float *x, const float *saved,
                         size_t rows, int c)
{
    size_t per = cpu_sum_chunk_rows(rows);
    long chunks = (long)((rows + per - 1) / per);
    double *part = util_xcalloc((size_t)chunks * 2 * c, sizeof(double));
#pragma omp parallel for schedule(dynamic, 1)
    for (long k = 0; k < chunks; k++) {
        size_t r0 = (size_t)k * per, len = rows - r0 < per ? rows - r0 : per;
        double *s1 = part + (size_t)k * 2 * c, *s2 = s1 + c;
        if (x)
            sums_rows_backward(s1, s2, a + r0 * c, x + r0 * c, saved, len, c);
        else
            sums_rows(s1, s2, a + r0 * c, len, c);
    }
    for (int j = 0; j < 2 * c; j++) {
        double acc = 0;
        for (long k = 0; k < chunks; k++)
            acc += part[(size_t)k * 2 * c + j];
        out[j] = (float)acc;
    }
    free(part);
}

/* y = (x - mean[j]) * invstd[j] */
CPU_VECTOR_CLONES
static void normalize_rows(float *restrict y, const float *restrict x, const float *restrict mean,
                           const float *restrict invstd, size_t rows, int c)
{
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < c; j++)
            y[r * c + j] = (x[r * c + j] - mean[j]) * invstd[j];
}

static void normalize(float *y, const float *x, const float *mean, const float *invstd, size_t rows,
                      int c)
{
    size_t step = CPU_BLOCK / (size_t)c + 1;
    long blocks = (long)((rows + step - 1) / step);
#pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        size_t r = (size_t)b * step, len = rows - r < step ? rows - r : step;
        normalize_rows(y + r * c, x + r * c, mean, invstd, len, c);
    }
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
    normalize(y, x, mean, invstd, rows, c);
}

void cpu_bn_forward_infer(struct backend *be, float *y, const float *x, const float *moving_mean,
                          const float *moving_var, size_t rows, int c, float eps)
{
    float *invstd = util_xmalloc((size_t)c * sizeof(float));
    for (int j = 0; j < c; j++)
        invstd[j] = 1.0f / sqrtf(moving_var[j] + eps);
    normalize(y, x, moving_mean, invstd, rows, c);
    free(invstd);
}

void cpu_bn_backward_stats(struct backend *be, float *bstats, const float *dy, const float *x,
                           const float *saved, size_t rows, int c)
{
    channel_sums(bstats, dy, x, saved, rows, c);
}

/* dx (=/+=) invstd * (dy - mean_dy - xhat * mean_dy_xhat), coef = [mean_dy | mean_dy_xhat];
 * written: 0 + value, as backend.h's grad_mode says */
CPU_VECTOR_CLONES
static void apply_rows(float *restrict dx, const float *restrict dy, const float *restrict x,
                       const float *restrict saved, const float *restrict coef, size_t rows, int c,
                       int add)
{
    const float *mean = saved, *invstd = saved + c;
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < c; j++) {
            size_t i = r * c + j;
            float xhat = (x[i] - mean[j]) * invstd[j];
            dx[i] = (add ? dx[i] : 0.0f) + invstd[j] * (dy[i] - coef[j] - xhat * coef[c + j]);
        }
}

void cpu_bn_backward_apply(struct backend *be, float *dx, const float *dy, const float *x,
                           const float *saved, const float *bstats, double count, size_t rows,
                           int c, enum grad_mode mode)
{
    float *coef = util_xmalloc(2 * (size_t)c * sizeof(float));
    for (int j = 0; j < 2 * c; j++)
        coef[j] = (float)(bstats[j] / count);
    size_t step = CPU_BLOCK / (size_t)c + 1;
    long blocks = (long)((rows + step - 1) / step);
#pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        size_t r = (size_t)b * step, len = rows - r < step ? rows - r : step;
        apply_rows(dx + r * c, dy + r * c, x + r * c, saved, coef, len, c, mode == GRAD_ADD);
    }
    free(coef);
}
