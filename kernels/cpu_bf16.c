/* cpu_bf16.c: the CPU backend's emulation of PRECISION_BF16 (backend.h). The CPU stores every
 * activation as float32; under PRECISION_BF16 each op that stores activations or their
 * gradients runs as in float32 and then rounds what it stored to bf16 (to nearest even,
 * src/base/bf16.h), which is what a GPU kernel that computes in float32 between a bf16 load
 * and a bf16 store keeps. The convolution is emulated as cuDNN's bf16 path computes it: the
 * kernel rounded to bf16, the convolution without its bias stored in bf16, then the bias and
 * the epilogue each rounded as the CUDA backend's epilogue kernel rounds them; backward: dx
 * and dw rounded, dbias summed from the same bf16 dy.
 *
 * The wrappers replace the table's entries (cpu_bf16_install) and call the float32 ops of the
 * family files, so those files know nothing of bf16; at PRECISION_FP32 or TF32 a wrapper is
 * the plain op. */
#include "bf16.h"
#include "cpu_ops.h"
#include "util.h"

#include <stdlib.h>

static int is_bf16(const struct backend *be)
{
    return be->precision == PRECISION_BF16;
}

/* x (n) rounded to bf16 in place under PRECISION_BF16; a NULL x or another precision: nothing */
static void cpu_bf16_round(struct backend *be, float *x, size_t n)
{
    if (!is_bf16(be) || !x)
        return;
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++)
        x[i] = bf16_round(x[i]);
}

/* a copy of the kernel w (count floats) rounded to bf16 (the caller frees it) */
static float *rounded_kernel(const float *w, size_t count)
{
    float *wr = util_xmalloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++)
        wr[i] = bf16_round(w[i]);
    return wr;
}

/* The CUDA backend's bias epilogue at bf16 (kernels/cuda_elementwise.cu): v = rnd(y + bias),
 * v = rnd(v + residual), y = v, swish = rnd(v * sigmoid(v)). */
static void bias_epilogue(struct backend *be, float *y, const float *bias, size_t rows, int c,
                          const struct conv_epilogue *epi)
{
    const float *res = epi ? epi->residual : NULL;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++)
        for (int j = 0; j < c; j++) {
            size_t i = (size_t)r * c + j;
            float v = bf16_round(y[i] + bias[j]);
            y[i] = res ? bf16_round(v + res[i]) : v;
        }
    if (epi && epi->swish) {
        cpu_swish_forward(be, epi->swish, y, rows * (size_t)c);
        cpu_bf16_round(be, epi->swish, rows * (size_t)c);
    }
}

static void bf16_conv2d_forward(struct backend *be, float *y, const float *x, const float *w,
                                const float *bias, const struct conv_shape *s,
                                const struct conv_epilogue *epi)
{
    if (!is_bf16(be)) {
        cpu_conv2d_forward(be, y, x, w, bias, s, epi);
        return;
    }
    size_t count = (size_t)conv_kh(s) * conv_kw(s) * s->cin * s->cout;
    size_t rows = (size_t)s->n * conv_out_h(s) * conv_out_w(s);
    float *wr = rounded_kernel(w, count), *zeros = util_xcalloc((size_t)s->cout, sizeof(float));
    cpu_conv2d_forward(be, y, x, wr, zeros, s, NULL); /* cuDNN stores conv(x, w) alone */
    cpu_bf16_round(be, y, rows * s->cout);
    bias_epilogue(be, y, bias, rows, s->cout, epi);
    free(wr), free(zeros);
}

static void bf16_conv2d_backward(struct backend *be, float *dx, float *dw, float *dbias,
                                 const float *dy, const float *x, const float *w,
                                 const struct conv_shape *s, enum grad_mode dx_mode)
{
    if (!is_bf16(be)) {
        cpu_conv2d_backward(be, dx, dw, dbias, dy, x, w, s, dx_mode);
        return;
    }
    size_t count = (size_t)conv_kh(s) * conv_kw(s) * s->cin * s->cout;
    float *wr = rounded_kernel(w, count);
    cpu_conv2d_backward(be, dx, dw, dbias, dy, x, wr, s, dx_mode);
    cpu_bf16_round(be, dx, (size_t)s->n * s->h * s->w * s->cin);
    cpu_bf16_round(be, dw, count); /* cuDNN's bf16 weight gradient; the bias's stays float32 */
    free(wr);
}

static void bf16_bn_forward_train(struct backend *be, float *y, float *saved, float *moving_mean,
                                  float *moving_var, const float *x, const float *stats,
                                  double count, size_t rows, int c, float momentum, float eps)
{
    cpu_bn_forward_train(be, y, saved, moving_mean, moving_var, x, stats, count, rows, c, momentum,
                         eps);
    cpu_bf16_round(be, y, rows * (size_t)c);
}

static void bf16_bn_forward_infer(struct backend *be, float *y, const float *x,
                                  const float *moving_mean, const float *moving_var, size_t rows,
                                  int c, float eps)
{
    cpu_bn_forward_infer(be, y, x, moving_mean, moving_var, rows, c, eps);
    cpu_bf16_round(be, y, rows * (size_t)c);
}

static void bf16_bn_backward_apply(struct backend *be, float *dx, const float *dy, const float *x,
                                   const float *saved, const float *bstats, double count,
                                   size_t rows, int c, enum grad_mode mode)
{
    cpu_bn_backward_apply(be, dx, dy, x, saved, bstats, count, rows, c, mode);
    cpu_bf16_round(be, dx, rows * (size_t)c);
}

static void bf16_swish_forward(struct backend *be, float *y, const float *x, size_t n)
{
    cpu_swish_forward(be, y, x, n);
    cpu_bf16_round(be, y, n);
}

static void bf16_swish_backward(struct backend *be, float *dx, const float *dy, const float *x,
                                size_t n, enum grad_mode mode)
{
    cpu_swish_backward(be, dx, dy, x, n, mode);
    cpu_bf16_round(be, dx, n);
}

static void bf16_add(struct backend *be, float *y, const float *a, const float *b, size_t n)
{
    cpu_add(be, y, a, b, n);
    cpu_bf16_round(be, y, n);
}

static void bf16_add_backward(struct backend *be, float *da, float *db, const float *dy, size_t n,
                              enum grad_mode mode_a, enum grad_mode mode_b)
{
    cpu_add_backward(be, da, db, dy, n, mode_a, mode_b);
    cpu_bf16_round(be, da, n);
    cpu_bf16_round(be, db, n);
}

static void bf16_concat_forward(struct backend *be, float *y, const float *a, const float *b,
                                size_t rows, int ca, int cb)
{
    cpu_concat_forward(be, y, a, b, rows, ca, cb);
    cpu_bf16_round(be, y, rows * (size_t)(ca + cb));
}

static void bf16_concat_backward(struct backend *be, float *da, float *db, const float *dy,
                                 size_t rows, int ca, int cb, enum grad_mode mode_a,
                                 enum grad_mode mode_b)
{
    cpu_concat_backward(be, da, db, dy, rows, ca, cb, mode_a, mode_b);
    cpu_bf16_round(be, da, rows * (size_t)ca);
    cpu_bf16_round(be, db, rows * (size_t)cb);
}

static void bf16_avgpool2_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                                  int c)
{
    cpu_avgpool2_forward(be, y, x, n, h, w, c);
    cpu_bf16_round(be, y, (size_t)n * (h / 2) * (w / 2) * c);
}

static void bf16_avgpool2_backward(struct backend *be, float *dx, const float *dy, int n, int h,
                                   int w, int c, enum grad_mode mode)
{
    cpu_avgpool2_backward(be, dx, dy, n, h, w, c, mode);
    cpu_bf16_round(be, dx, (size_t)n * h * w * c);
}

static void bf16_upsample2_forward(struct backend *be, float *y, const float *x, int n, int h,
                                   int w, int c)
{
    cpu_upsample2_forward(be, y, x, n, h, w, c);
    cpu_bf16_round(be, y, (size_t)n * (2 * h) * (2 * w) * c);
}

static void bf16_upsample2_backward(struct backend *be, float *dx, const float *dy, int n, int h,
                                    int w, int c, enum grad_mode mode)
{
    cpu_upsample2_backward(be, dx, dy, n, h, w, c, mode);
    cpu_bf16_round(be, dx, (size_t)n * h * w * c);
}

static void bf16_sinusoidal_embedding(struct backend *be, float *e, const float *v, int n, int h,
                                      int w, int dims, float fmin, float fmax)
{
    cpu_sinusoidal_embedding(be, e, v, n, h, w, dims, fmin, fmax);
    cpu_bf16_round(be, e, (size_t)n * h * w * dims);
}

static void bf16_to_act(struct backend *be, float *y, const float *x, size_t n)
{
    cpu_to_act(be, y, x, n);
    cpu_bf16_round(be, y, n);
}

void cpu_bf16_install(struct backend *be)
{
    be->conv2d_forward = bf16_conv2d_forward;
    be->conv2d_backward = bf16_conv2d_backward;
    be->bn_forward_train = bf16_bn_forward_train;
    be->bn_forward_infer = bf16_bn_forward_infer;
    be->bn_backward_apply = bf16_bn_backward_apply;
    be->swish_forward = bf16_swish_forward;
    be->swish_backward = bf16_swish_backward;
    be->add = bf16_add;
    be->add_backward = bf16_add_backward;
    be->concat_forward = bf16_concat_forward;
    be->concat_backward = bf16_concat_backward;
    be->avgpool2_forward = bf16_avgpool2_forward;
    be->avgpool2_backward = bf16_avgpool2_backward;
    be->upsample2_forward = bf16_upsample2_forward;
    be->upsample2_backward = bf16_upsample2_backward;
    be->sinusoidal_embedding = bf16_sinusoidal_embedding;
    be->to_act = bf16_to_act;
}
