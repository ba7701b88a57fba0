/* test_cuda_bf16_ops.c: the ops on activations at PRECISION_BF16 (backend.h), the CUDA
 * backend (2-byte bf16 in memory) against the CPU backend's emulation (float32 rounded to
 * bf16, kernels/cpu_bf16.c), on the same bf16-valued inputs. A third source of test_cuda_ops
 * (the GPU: the hand-written kernels and cuDNN's bf16 convolutions) and of test_cuda_emu (the
 * host emulation: the hand-written kernels, and the convolutions of the emulation's plain
 * kernels, tests/cuda_emu/emu_conv.cu, on a backend made with them).
 *
 * Tolerances (|got - want| <= atol + rtol*|want|), in units of bf16's precision: a bf16
 * keeps 8 significant bits, so one step of the last bit is between 2^-8 and 2^-7 of the value.
 * - float32 arithmetic in the CPU's order (add, concat, pooling, upsampling, the bias and its
 *   epilogue's add): the float32 results are the same bits, so are their roundings: exact.
 * - expf/sinf (swish, the embedding) and the BatchNorm ops (their sums in double, in another
 *   order): the float32 results may differ in the last bit or two, and a rounding to bf16 may
 *   then fall on the other side: one bf16 step, rtol 2^-7.
 * - convolutions (float32 sums in another order, then rounded; cuDNN's algorithms): one or two
 *   bf16 steps element-wise, rtol 2^-6, atol 2^-8 of the reference's rms (sums that cancel),
 *   A wrong tap, a wrong data type or a missed accumulation errs by the size of the values
 *   and fails. A 1x1 convolution of one input channel has no sums: its output, where the
 *   bias and the residual are added and each result rounded, must agree exactly, which
 *   checks the rounding points of the bias epilogue. */
#include "backend.h"
#include "bf16.h"
#include "test_cuda_pairs.h"
#include "test_util.h"
#ifdef DDIM_CUDA_EMU
#include "cuda_emu_backend.h"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BF16_RTOL (1.0f / 128)

static struct backend *gconv; /* the backend whose convolutions are checked (NULL: none) */

/* n activations on both: bf16-valued host floats on the CPU, to_act's bf16 on the GPU */
static struct pair act_from(struct backend *g, const float *host, size_t n)
{
    struct pair p = {cpu->alloc(cpu, n * sizeof(float)), g->alloc(g, n * g->bf16_size), n};
    float *tmp = g->alloc(g, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        p.c[i] = host ? bf16_round(host[i]) : NAN;
    g->upload(g, tmp, p.c, n * sizeof(float));
    ON_TESTED(g, to_act)(g, p.g, tmp, n);
    g->free(g, tmp);
    return p;
}

static struct pair act_normal(struct backend *g, size_t n, float stddev)
{
    float *h = test_alloc_normal(n, stddev);
    struct pair p = act_from(g, h, n);
    free(h);
    return p;
}

/* the GPU's activations against the CPU's, then the CPU's written to the GPU (as check()) */
static int act_check(struct backend *g, const char *name, const struct pair *p, float atol,
                     float rtol)
{
    float *tmp = g->alloc(g, p->n * sizeof(float)), *got = malloc(p->n * sizeof(float));
    ON_TESTED(g, from_act)(g, tmp, p->g, p->n);
    g->download(g, got, tmp, p->n * sizeof(float));
    char label[160];
    snprintf(label, sizeof label, "bf16 %s", name);
    int ok = test_close(label, got, p->c, p->n, atol, rtol);
    g->upload(g, tmp, p->c, p->n * sizeof(float));
    g->to_act(g, p->g, tmp, p->n);
    g->free(g, tmp), free(got);
    return ok;
}

static void act_free(struct backend *g, struct pair *p)
{
    cpu->free(cpu, p->c);
    g->free(g, p->g);
}

static void test_elementwise_bf16(size_t rows, int ca, int cb)
{
    size_t n = rows * ca;
    struct pair x = act_normal(gpu, n, 2.0f), b = act_normal(gpu, n, 1.0f);
    struct pair y = act_from(gpu, NULL, n), dx = act_normal(gpu, n, 1.0f);
    cpu->swish_forward(cpu, y.c, x.c, n), gpu->swish_forward(gpu, y.g, x.g, n);
    act_check(gpu, "swish_forward", &y, 0, BF16_RTOL);
    for (int m = 0; m < 2; m++) { /* += onto dx's values, then = over them */
        enum grad_mode mode = m ? GRAD_WRITE : GRAD_ADD;
        cpu->swish_backward(cpu, dx.c, b.c, x.c, n, mode);
        gpu->swish_backward(gpu, dx.g, b.g, x.g, n, mode);
        act_check(gpu, m ? "swish_backward (=)" : "swish_backward (+=)", &dx, 0, BF16_RTOL);
        cpu->add_backward(cpu, dx.c, y.c, b.c, n, mode, GRAD_ADD);
        gpu->add_backward(gpu, dx.g, y.g, b.g, n, mode, GRAD_ADD);
        act_check(gpu, "add_backward da", &dx, 0, 0);
        act_check(gpu, "add_backward db (+=)", &y, 0, 0);
    }
    cpu->add(cpu, y.c, x.c, b.c, n), gpu->add(gpu, y.g, x.g, b.g, n);
    act_check(gpu, "add", &y, 0, 0);
    struct pair o = act_normal(gpu, rows * cb, 1.0f), cat = act_from(gpu, NULL, rows * (ca + cb));
    cpu->concat_forward(cpu, cat.c, x.c, o.c, rows, ca, cb);
    gpu->concat_forward(gpu, cat.g, x.g, o.g, rows, ca, cb);
    act_check(gpu, "concat_forward", &cat, 0, 0);
    cpu->concat_backward(cpu, dx.c, o.c, cat.c, rows, ca, cb, GRAD_ADD, GRAD_WRITE);
    gpu->concat_backward(gpu, dx.g, o.g, cat.g, rows, ca, cb, GRAD_ADD, GRAD_WRITE);
    act_check(gpu, "concat_backward da (+=)", &dx, 0, 0);
    act_check(gpu, "concat_backward db (=)", &o, 0, 0);
    act_free(gpu, &x), act_free(gpu, &b), act_free(gpu, &y), act_free(gpu, &dx);
    act_free(gpu, &o), act_free(gpu, &cat);
}

static void test_resample_bf16(int n, int h, int w, int c)
{
    size_t big = (size_t)n * h * w * c;
    struct pair x = act_normal(gpu, big, 1.0f), small = act_from(gpu, NULL, big / 4);
    struct pair up = act_from(gpu, NULL, big * 4), dx = act_normal(gpu, big, 1.0f);
    cpu->avgpool2_forward(cpu, small.c, x.c, n, h, w, c);
    gpu->avgpool2_forward(gpu, small.g, x.g, n, h, w, c);
    act_check(gpu, "avgpool2_forward", &small, 0, 0);
    cpu->avgpool2_backward(cpu, dx.c, small.c, n, h, w, c, GRAD_ADD);
    gpu->avgpool2_backward(gpu, dx.g, small.g, n, h, w, c, GRAD_ADD);
    act_check(gpu, "avgpool2_backward (+=)", &dx, 0, 0);
    cpu->upsample2_forward(cpu, up.c, x.c, n, h, w, c);
    gpu->upsample2_forward(gpu, up.g, x.g, n, h, w, c);
    act_check(gpu, "upsample2_forward", &up, 0, 0);
    cpu->upsample2_backward(cpu, dx.c, up.c, n, h, w, c, GRAD_WRITE);
    gpu->upsample2_backward(gpu, dx.g, up.g, n, h, w, c, GRAD_WRITE);
    act_check(gpu, "upsample2_backward (=)", &dx, 0, 0);
    struct pair v = pair_uniform((size_t)n, 0.0f, 1.0f);
    cpu->sinusoidal_embedding(cpu, up.c, v.c, n, h, w, 2 * c, 1.0f, 1000.0f);
    gpu->sinusoidal_embedding(gpu, up.g, v.g, n, h, w, 2 * c, 1.0f, 1000.0f);
    up.n = (size_t)n * h * w * 2 * c;
    act_check(gpu, "sinusoidal_embedding", &up, 0, BF16_RTOL);
    act_free(gpu, &x), act_free(gpu, &small), act_free(gpu, &up), act_free(gpu, &dx);
    pair_free(&v);
}

/* BatchNorm: statistics of bf16 x in float32, y and dx stored in bf16 */
static void test_batchnorm_bf16(size_t rows, int c)
{
    struct pair x = act_normal(gpu, rows * c, 1.5f), y = act_from(gpu, NULL, rows * c);
    struct pair dy = act_normal(gpu, rows * c, 1.0f), dx = act_normal(gpu, rows * c, 1.0f);
    struct pair stats = pair_poisoned(2 * (size_t)c), saved = pair_poisoned(2 * (size_t)c);
    struct pair bstats = pair_poisoned(2 * (size_t)c);
    struct pair mm = pair_normal(c, 0.3f), mv = pair_uniform(c, 0.5f, 2.0f);
    cpu->bn_stats(cpu, stats.c, x.c, rows, c), gpu->bn_stats(gpu, stats.g, x.g, rows, c);
    check("bf16 bn_stats", &stats, 1e-5f, EXACT_RTOL);
    cpu->bn_forward_train(cpu, y.c, saved.c, mm.c, mv.c, x.c, stats.c, (double)rows, rows, c, 0.99f,
                          1e-3f);
    gpu->bn_forward_train(gpu, y.g, saved.g, mm.g, mv.g, x.g, stats.g, (double)rows, rows, c, 0.99f,
                          1e-3f);
    act_check(gpu, "bn_forward_train y", &y, 1e-6f, BF16_RTOL);
    check("bf16 bn_forward_train saved", &saved, EXACT_ATOL, EXACT_RTOL);
    cpu->bn_forward_infer(cpu, y.c, x.c, mm.c, mv.c, rows, c, 1e-3f);
    gpu->bn_forward_infer(gpu, y.g, x.g, mm.g, mv.g, rows, c, 1e-3f);
    act_check(gpu, "bn_forward_infer", &y, 1e-6f, BF16_RTOL);
    cpu->bn_backward_stats(cpu, bstats.c, dy.c, x.c, saved.c, rows, c);
    gpu->bn_backward_stats(gpu, bstats.g, dy.g, x.g, saved.g, rows, c);
    check("bf16 bn_backward_stats", &bstats, 1e-5f, EXACT_RTOL);
    cpu->bn_backward_apply(cpu, dx.c, dy.c, x.c, saved.c, bstats.c, (double)rows, rows, c,
                           GRAD_ADD);
    gpu->bn_backward_apply(gpu, dx.g, dy.g, x.g, saved.g, bstats.g, (double)rows, rows, c,
                           GRAD_ADD);
    act_check(gpu, "bn_backward_apply (+=)", &dx, 1e-6f, BF16_RTOL);
    act_free(gpu, &x), act_free(gpu, &y), act_free(gpu, &dy), act_free(gpu, &dx);
    pair_free(&stats), pair_free(&saved), pair_free(&bstats), pair_free(&mm), pair_free(&mv);
}

static double rms_of(const float *x, size_t n)
{
    double acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += (double)x[i] * x[i];
    return sqrt(acc / (double)(n ? n : 1));
}

static void conv_check(const char *name, struct pair *p, int activation)
{
    float atol = (float)(rms_of(p->c, p->n) / 256);
    if (activation)
        act_check(gconv, name, p, atol, 2 * BF16_RTOL);
    else { /* a float32 gradient, rounded to bf16 on both sides */
        float *got = malloc(p->n * sizeof(float));
        gconv->download(gconv, got, p->g, p->n * sizeof(float));
        char label[160];
        snprintf(label, sizeof label, "bf16 %s", name);
        test_close(label, got, p->c, p->n, atol, 2 * BF16_RTOL);
        free(got);
    }
}

/* float32 pair (weights and their gradients) on gconv */
static struct pair conv_param(const float *host, size_t n)
{
    struct pair p = {cpu->alloc(cpu, n * sizeof(float)), gconv->alloc(gconv, n * sizeof(float)), n};
    if (host)
        memcpy(p.c, host, n * sizeof(float));
    gconv->upload(gconv, p.g, p.c, n * sizeof(float));
    return p;
}

/* y = conv + bias with the residual and swish epilogue; backward in both modes */
static void test_conv_bf16(int n, int hw, int cin, int cout, int k)
{
    struct conv_shape s = {.n = n, .h = hw, .w = hw, .cin = cin, .cout = cout, .k = k};
    size_t nx = (size_t)n * hw * hw * cin, ny = (size_t)n * hw * hw * cout;
    size_t nw = (size_t)k * k * cin * cout;
    float *hw_ = test_alloc_normal(nw, 1.0f / sqrtf((float)(k * k * cin)));
    float *hb = test_alloc_normal((size_t)cout, 0.5f);
    struct pair w = conv_param(hw_, nw), b = conv_param(hb, (size_t)cout);
    struct pair x = act_normal(gconv, nx, 1.0f), res = act_normal(gconv, ny, 1.0f);
    struct pair y = act_from(gconv, NULL, ny), act = act_from(gconv, NULL, ny);
    struct conv_epilogue epi = {res.c, act.c}, gepi = {res.g, act.g};
    cpu->conv2d_forward(cpu, y.c, x.c, w.c, b.c, &s, &epi);
    gconv->conv2d_forward(gconv, y.g, x.g, w.g, b.g, &s, &gepi);
    char name[128];
    snprintf(name, sizeof name, "conv2d_forward k=%d %d->%d y", k, cin, cout);
    if (k == 1 && cin == 1) /* one product per output: no order of sums, the bits agree */
        act_check(gconv, name, &y, 0, 0);
    else
        conv_check(name, &y, 1);
    snprintf(name, sizeof name, "conv2d_forward k=%d %d->%d swish", k, cin, cout);
    conv_check(name, &act, 1);
    struct pair dx = act_normal(gconv, nx, 1.0f), dw = conv_param(NULL, nw);
    struct pair db = conv_param(NULL, (size_t)cout);
    for (int m = 0; m < 2; m++) {
        enum grad_mode mode = m ? GRAD_WRITE : GRAD_ADD;
        cpu->conv2d_backward(cpu, dx.c, dw.c, db.c, res.c, x.c, w.c, &s, mode);
        gconv->conv2d_backward(gconv, dx.g, dw.g, db.g, res.g, x.g, w.g, &s, mode);
        snprintf(name, sizeof name, "conv2d_backward k=%d %d->%d dx (%s)", k, cin, cout,
                 m ? "=" : "+=");
        conv_check(name, &dx, 1);
        snprintf(name, sizeof name, "conv2d_backward k=%d %d->%d dw", k, cin, cout);
        conv_check(name, &dw, 0);
        snprintf(name, sizeof name, "conv2d_backward k=%d %d->%d dbias", k, cin, cout);
        conv_check(name, &db, 0);
    }
    act_free(gconv, &x), act_free(gconv, &res), act_free(gconv, &y), act_free(gconv, &act);
    act_free(gconv, &dx), act_free(gconv, &w), act_free(gconv, &b), act_free(gconv, &dw);
    act_free(gconv, &db);
    free(hw_), free(hb);
}

static void conv_backend_open(void)
{
    gconv = gpu->conv2d_forward ? gpu : NULL;
#ifdef DDIM_CUDA_EMU
    char err[256];
    gconv = backend_cuda_emu_create_with_conv(err, sizeof err);
    if (!gconv)
        test_fail("bf16: the emulation with convolutions: %s", err);
#endif
    if (gconv)
        gconv->precision = PRECISION_BF16;
}

void test_bf16_ops(void)
{
    cpu->precision = gpu->precision = PRECISION_BF16;
    test_elementwise_bf16(3 * 6 * 10, 5, 3);
    test_elementwise_bf16(100003, 7, 2); /* large and odd: partial last block */
    test_resample_bf16(3, 6, 10, 5);
    test_resample_bf16(1, 32, 32, 64);
    test_batchnorm_bf16(3 * 6 * 10, 5);
    test_batchnorm_bf16(4 * 32 * 32, 37);
    conv_backend_open();
    if (gconv) {
        test_conv_bf16(2, 8, 5, 7, 3);
        test_conv_bf16(2, 16, 32, 32, 3);
        test_conv_bf16(2, 8, 40, 16, 1);
        test_conv_bf16(2, 8, 1, 16, 1);
        struct conv_shape e3 = {.n = 2, .h = 16, .w = 16, .cin = 32, .cout = 32, .k = 3};
        test_conv_epilogue(gconv, &e3); /* the fused epilogue's bits: those of the ops apart */
    }
    if (gconv && gconv != gpu)
        gconv->destroy(gconv);
    cpu->precision = gpu->precision = PRECISION_TF32;
}
