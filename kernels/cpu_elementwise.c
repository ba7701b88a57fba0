/* cpu_elementwise.c: swish, add, axpy, scale, channel concat, the sinusoidal embedding and
 * the losses on the CPU. Float32 arithmetic in the order TensorFlow uses where the Keras
 * fixture is sensitive to it (the embedding: its arguments reach 2*pi*1000). */
#include "cpu_ops.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* e^x in float32 within 1 ulp of glibc's expf for x in [-87, 88] (Cephes's method, as
 * Eigen's vectorized exp under TensorFlow: x = n ln2 + r, |r| <= ln2/2, a degree-7
 * polynomial for e^r, 2^n from the exponent bits); x is clamped to that range first, which
 * only matters to sigmoid below -87 or above 88, where it is 0 or 1 to float precision
 * either way. Branch-free so that the loops calling it vectorize, unlike calls of expf. */
static inline float exp_vec(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    const float round = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + round, n = t - round;
    float r = x - n * 0.693359375f; /* ln2 in two parts (Cody and Waite) */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t tb, bits;
    memcpy(&tb, &t, sizeof tb);
    bits = (tb - 0x4B400000 + 127) * (1 << 23); /* 2^n: n + 127 in [1, 254] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigmoid_vec(float x)
{
    return 1.0f / (1.0f + exp_vec(-x));
}

CPU_VECTOR_CLONES
static void swish_forward_block(float *restrict y, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * sigmoid_vec(x[i]);
}

/* dx (=/+=) dy * swish'(x); written: 0 + value, as backend.h's grad_mode says */
CPU_VECTOR_CLONES
static void swish_backward_block(float *restrict dx, const float *restrict dy,
                                 const float *restrict x, size_t n, int add)
{
    if (add) {
        for (size_t i = 0; i < n; i++) {
            float s = sigmoid_vec(x[i]);
            dx[i] += dy[i] * (s + x[i] * s * (1.0f - s));
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float s = sigmoid_vec(x[i]);
        dx[i] = 0.0f + dy[i] * (s + x[i] * s * (1.0f - s));
    }
}

void cpu_swish_forward(struct backend *be, float *y, const float *x, size_t n)
{
    long blocks = (long)((n + CPU_BLOCK - 1) / CPU_BLOCK);
#pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        size_t i = (size_t)b * CPU_BLOCK, len = n - i < CPU_BLOCK ? n - i : CPU_BLOCK;
        swish_forward_block(y + i, x + i, len);
    }
}

void cpu_swish_backward(struct backend *be, float *dx, const float *dy, const float *x, size_t n,
                        enum grad_mode mode)
{
    long blocks = (long)((n + CPU_BLOCK - 1) / CPU_BLOCK);
#pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        size_t i = (size_t)b * CPU_BLOCK, len = n - i < CPU_BLOCK ? n - i : CPU_BLOCK;
        swish_backward_block(dx + i, dy + i, x + i, len, mode == GRAD_ADD);
    }
}

void cpu_add(struct backend *be, float *y, const float *a, const float *b, size_t n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++)
        y[i] = a[i] + b[i];
}

/* d (=/+=) dy, as 0 + dy when written: the bits of the old fill then axpy */
static void grad_store(float *d, const float *dy, size_t n, enum grad_mode mode)
{
    int add = mode == GRAD_ADD;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++)
        d[i] = (add ? d[i] : 0.0f) + dy[i];
}

void cpu_add_backward(struct backend *be, float *da, float *db, const float *dy, size_t n,
                      enum grad_mode mode_a, enum grad_mode mode_b)
{
    if (da)
        grad_store(da, dy, n, mode_a);
    if (db)
        grad_store(db, dy, n, mode_b);
}

void cpu_axpy(struct backend *be, float *y, float alpha, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++)
        y[i] += alpha * x[i];
}

void cpu_scale(struct backend *be, float *x, float alpha, size_t n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++)
        x[i] *= alpha;
}

void cpu_concat_forward(struct backend *be, float *y, const float *a, const float *b, size_t rows,
                        int ca, int cb)
{
    int c = ca + cb;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++) {
        memcpy(y + (size_t)r * c, a + (size_t)r * ca, (size_t)ca * sizeof(float));
        memcpy(y + (size_t)r * c + ca, b + (size_t)r * cb, (size_t)cb * sizeof(float));
    }
}

void cpu_concat_backward(struct backend *be, float *da, float *db, const float *dy, size_t rows,
                         int ca, int cb, enum grad_mode mode_a, enum grad_mode mode_b)
{
    int c = ca + cb, add_a = mode_a == GRAD_ADD, add_b = mode_b == GRAD_ADD;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++) {
        const float *src = dy + (size_t)r * c;
        float *a = da ? da + (size_t)r * ca : NULL, *b = db ? db + (size_t)r * cb : NULL;
        if (a)
            for (int j = 0; j < ca; j++)
                a[j] = (add_a ? a[j] : 0.0f) + src[j];
        if (b)
            for (int j = 0; j < cb; j++)
                b[j] = (add_b ? b[j] : 0.0f) + src[ca + j];
    }
}

/* TensorFlow: frequencies = exp(linspace(log fmin, log fmax, half)) where linspace is
 * start + delta*i with delta = (stop-start)/(half-1) and the last value exactly stop;
 * angular speed = float32(2*pi) * frequency; argument = angular speed * variance. */
void cpu_sinusoidal_embedding(struct backend *be, float *e, const float *v, int n, int h, int w,
                              int dims, float fmin, float fmax)
{
    int half = dims / 2;
    float lo = logf(fmin), hi = logf(fmax);
    float delta = half > 1 ? (hi - lo) / (float)(half - 1) : 0.0f;
    for (int i = 0; i < n; i++) {
        float *row = e + (size_t)i * h * w * dims;
        for (int k = 0; k < half; k++) {
            float lin = (k == half - 1 && half > 1) ? hi : lo + delta * (float)k;
            float angular = 6.28318548f * expf(lin);
            float arg = angular * v[i];
            row[k] = sinf(arg);
            row[half + k] = cosf(arg);
        }
        for (int p = 1; p < h * w; p++)
            memcpy(row + (size_t)p * dims, row, (size_t)dims * sizeof(float));
    }
}

void cpu_loss_value(struct backend *be, float *out, const float *pred, const float *target,
                    size_t n, enum loss_kind kind)
{
    size_t per = cpu_sum_chunk_rows(n); /* chunk partials in chunk order (cpu_ops.h) */
    long chunks = (long)((n + per - 1) / per);
    double part[CPU_SUM_CHUNKS], acc = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (long k = 0; k < chunks; k++) {
        size_t end = (size_t)(k + 1) * per < n ? (size_t)(k + 1) * per : n;
        double sum = 0;
        for (size_t i = (size_t)k * per; i < end; i++) {
            double d = (double)pred[i] - (double)target[i];
            sum += kind == LOSS_MSE ? d * d : fabs(d);
        }
        part[k] = sum;
    }
    for (long k = 0; k < chunks; k++)
        acc += part[k];
    out[0] = (float)(acc / (double)n);
}

void cpu_loss_backward(struct backend *be, float *dpred, const float *pred, const float *target,
                       size_t n, float scale, enum loss_kind kind)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        float d = pred[i] - target[i];
        if (kind == LOSS_MSE)
            dpred[i] = scale * 2.0f * d;
        else /* d|d|/dd = sign(d), 0 at 0 as TensorFlow's abs gradient */
            dpred[i] = scale * (float)((d > 0) - (d < 0));
    }
}
