/* cpu_elementwise.c: swish, add, axpy, scale, channel concat, the sinusoidal embedding and
 * the losses on the CPU. Float32 arithmetic in the order TensorFlow uses where the Keras
 * fixture is sensitive to it (the embedding: its arguments reach 2*pi*1000). */
#include "cpu_ops.h"

#include <math.h>
#include <string.h>

static float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

void cpu_swish_forward(struct backend *be, float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++)
        y[i] = x[i] * sigmoidf(x[i]);
}

void cpu_swish_backward(struct backend *be, float *dx, const float *dy, const float *x, size_t n,
                        enum grad_mode mode)
{
    int add = mode == GRAD_ADD;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++) {
        float s = sigmoidf(x[i]);
        dx[i] = (add ? dx[i] : 0.0f) + dy[i] * (s + x[i] * s * (1.0f - s));
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
    double acc = 0;
#pragma omp parallel for schedule(static) reduction(+ : acc)
    for (long i = 0; i < (long)n; i++) {
        double d = (double)pred[i] - (double)target[i];
        acc += kind == LOSS_MSE ? d * d : fabs(d);
    }
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
