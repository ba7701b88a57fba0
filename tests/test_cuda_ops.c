/* test_cuda_ops.c: every op the CUDA backend implements against the CPU backend, on the
 * same random inputs (label gpu; exits 77 with the reason when no GPU is usable).
 * DDIM_CUDNN_NO_TF32=1 is set before the backend is created: the convolutions then run in
 * plain float32 (no TF32 tensor cores), comparable with the CPU's float32 GEMMs.
 *
 * Outputs are poisoned with NaN on both backends before each op (test_close rejects
 * non-finite values, so an element an op forgets to write fails). Every backward op runs in
 * both of its modes (backend.h's enum grad_mode) for every activation gradient it stores:
 * GRAD_ADD from the same random nonzero gradient on both backends, so `=` instead of `+=`
 * fails, and GRAD_WRITE over NaN, so `+=` instead of `=` (or an element not written) fails.
 *
 * Tolerances (|got - want| <= atol + rtol*|want|):
 * - float32 arithmetic (+ - * /, sqrtf, in the CPU's order, no FMA): the CUDA kernels
 *   should give the CPU's bits; atol 1e-6, rtol 1e-6 leaves room for a last-bit slip only.
 * - ops through expf/sinf/cosf/logf (swish, schedule, embedding, normal noise): CUDA's
 *   versions are within 1-2 ulp of glibc's; atol 1e-6..1e-5, rtol 1e-5.
 * - reductions (both accumulate in double, in different orders, then round to float):
 *   atol 1e-5, rtol 1e-6.
 * - convolutions (cuDNN vs oneDNN, float32 sums of k*k*cin or n*h*w products in
 *   different orders): rtol 1e-4 and atol 1e-4 * rms(reference) element-wise, i.e. scaled
 *   to the magnitude of the sums, so a wrong tap, transpose or missed accumulation (errors
 *   of order the rms) cannot pass; and the whole tensor within CONV_REL_L2 = 2e-5 in
 *   relative L2. Rounding in a float32 sum of K terms grows like sqrt(K) * 6e-8 relative
 *   to that rms: at most 5.4e-6 for the largest K here (n*h*w = 2*64*64 for dw; 9*224 for
 *   y), on each side, so the difference stays under ~8e-6. FFT and Winograd algorithms,
 *   which exact mode must not use, typically err by about 1e-4 and fail that bound.
 *
 * Shapes: besides small odd ones, every convolution and BatchNorm shape that the Keras
 * fixture (tests/data/keras_small.h5: 16x16, widths 8,16,24, batch 4) and the seed network
 * (configs/flowers64.yaml: 64x64, widths 32,64,96,128; batch 2 here instead of 64) reach:
 * the 3-channel stem and head, the concatenations of the up path (40, 224, 160 ... input
 * channels), and BN over up to 64*64*64 rows as in a real batch of 64.
 *
 * The ops a training step feeds from its counters (the random draws, counters_add,
 * copy_to_slot, AdamW's table, the gather) are checked in test_cuda_step_ops.c, a second
 * source of the same program (the pairs: test_cuda_pairs.h); the ops on activations at
 * PRECISION_BF16 (cuDNN's bf16 convolutions among them) in test_cuda_bf16_ops.c, a third.
 *
 * Built a second time as test_cuda_emu (DDIM_CUDA_EMU, label unit): the same checks on the
 * host emulation of the CUDA kernels (tests/cuda_emu), which has no cuDNN, so the
 * convolution checks are skipped there (the backend leaves those ops NULL). */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include "backend.h"
#include "test_cuda_pairs.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct backend *cpu, *gpu;

struct pair pair_alloc(size_t n)
{
    struct pair p = {cpu->alloc(cpu, n * sizeof(float)),
                     ON_TESTED(gpu, alloc)(gpu, n * sizeof(float)), n};
    return p;
}

struct pair pair_from(const float *host, size_t n)
{
    struct pair p = pair_alloc(n);
    memcpy(p.c, host, n * sizeof(float));
    ON_TESTED(gpu, upload)(gpu, p.g, host, n * sizeof(float));
    return p;
}

struct pair pair_normal(size_t n, float stddev)
{
    float *h = test_alloc_normal(n, stddev);
    struct pair p = pair_from(h, n);
    free(h);
    return p;
}

struct pair pair_uniform(size_t n, float lo, float hi)
{
    float *h = malloc(n * sizeof(float));
    test_fill_uniform(h, n, lo, hi);
    struct pair p = pair_from(h, n);
    free(h);
    return p;
}

struct pair pair_poisoned(size_t n)
{
    struct pair p = pair_alloc(n);
    cpu->fill(cpu, p.c, NAN, n);
    ON_TESTED(gpu, fill)(gpu, p.g, NAN, n);
    return p;
}

void pair_free(struct pair *p)
{
    cpu->free(cpu, p->c);
    ON_TESTED(gpu, free)(gpu, p->g);
}

int check(const char *name, const struct pair *p, float atol, float rtol)
{
    float *got = malloc(p->n * sizeof(float));
    ON_TESTED(gpu, download)(gpu, got, p->g, p->n * sizeof(float));
    int ok = test_close(name, got, p->c, p->n, atol, rtol);
    free(got);
    ON_TESTED(gpu, upload)(gpu, p->g, p->c, p->n * sizeof(float));
    return ok;
}

static void test_memory(void)
{
    size_t n = 1000;
    float *zero = calloc(n, sizeof(float)), *got = malloc(n * sizeof(float));
    float *a = ON_TESTED(gpu, alloc)(gpu, n * sizeof(float));
    ON_TESTED(gpu, download)(gpu, got, a, n * sizeof(float));
    test_close("alloc is zero-filled", got, zero, n, 0, 0);

    float *h = test_alloc_normal(n, 1.0f);
    ON_TESTED(gpu, upload)(gpu, a, h, n * sizeof(float));
    float *b = ON_TESTED(gpu, alloc)(gpu, n * sizeof(float));
    ON_TESTED(gpu, copy)(gpu, b, a, n * sizeof(float));
    ON_TESTED(gpu, download)(gpu, got, b, n * sizeof(float));
    test_close("upload, copy, download", got, h, n, 0, 0);

    for (size_t i = 0; i < n; i++)
        h[i] = 2.5f;
    ON_TESTED(gpu, fill)(gpu, b, 2.5f, n);
    ON_TESTED(gpu, synchronize)(gpu);
    ON_TESTED(gpu, download)(gpu, got, b, n * sizeof(float));
    test_close("fill", got, h, n, 0, 0);
    ON_TESTED(gpu, free)(gpu, a);
    ON_TESTED(gpu, free)(gpu, b);
    free(zero);
    free(got);
    free(h);
}

static void test_elementwise(size_t n)
{
    struct pair x = pair_normal(n, 2.0f), a = pair_normal(n, 1.0f), b = pair_normal(n, 1.0f);
    struct pair y = pair_poisoned(n);
    cpu->swish_forward(cpu, y.c, x.c, n);
    ON_TESTED(gpu, swish_forward)(gpu, y.g, x.g, n);
    check("swish_forward", &y, EXACT_ATOL, TRANS_RTOL);

    struct pair dx = pair_poisoned(n);
    cpu->swish_backward(cpu, dx.c, a.c, x.c, n, GRAD_WRITE);
    ON_TESTED(gpu, swish_backward)(gpu, dx.g, a.g, x.g, n, GRAD_WRITE);
    check("swish_backward (=)", &dx, EXACT_ATOL, TRANS_RTOL);
    pair_free(&dx);
    dx = pair_normal(n, 1.0f); /* accumulated into */
    cpu->swish_backward(cpu, dx.c, a.c, x.c, n, GRAD_ADD);
    ON_TESTED(gpu, swish_backward)(gpu, dx.g, a.g, x.g, n, GRAD_ADD);
    check("swish_backward (+=)", &dx, EXACT_ATOL, TRANS_RTOL);

    struct pair s = pair_poisoned(n);
    cpu->add(cpu, s.c, a.c, b.c, n);
    ON_TESTED(gpu, add)(gpu, s.g, a.g, b.g, n);
    check("add", &s, EXACT_ATOL, EXACT_RTOL);

    /* add_backward: each output in each mode, the other one NULL or in the other mode */
    struct pair da = pair_poisoned(n), db = pair_normal(n, 1.0f);
    cpu->add_backward(cpu, da.c, db.c, x.c, n, GRAD_WRITE, GRAD_ADD);
    ON_TESTED(gpu, add_backward)(gpu, da.g, db.g, x.g, n, GRAD_WRITE, GRAD_ADD);
    check("add_backward da (=)", &da, EXACT_ATOL, EXACT_RTOL);
    check("add_backward db (+=)", &db, EXACT_ATOL, EXACT_RTOL);
    cpu->fill(cpu, db.c, NAN, n), ON_TESTED(gpu, fill)(gpu, db.g, NAN, n);
    cpu->add_backward(cpu, da.c, db.c, a.c, n, GRAD_ADD, GRAD_WRITE);
    ON_TESTED(gpu, add_backward)(gpu, da.g, db.g, a.g, n, GRAD_ADD, GRAD_WRITE);
    check("add_backward da (+=)", &da, EXACT_ATOL, EXACT_RTOL);
    check("add_backward db (=)", &db, EXACT_ATOL, EXACT_RTOL);
    cpu->add_backward(cpu, NULL, db.c, b.c, n, GRAD_WRITE, GRAD_ADD);
    ON_TESTED(gpu, add_backward)(gpu, NULL, db.g, b.g, n, GRAD_WRITE, GRAD_ADD);
    check("add_backward da NULL, db (+=)", &db, EXACT_ATOL, EXACT_RTOL);
    pair_free(&da), pair_free(&db);

    cpu->axpy(cpu, dx.c, -0.37f, a.c, n);
    ON_TESTED(gpu, axpy)(gpu, dx.g, -0.37f, a.g, n);
    check("axpy (+=)", &dx, EXACT_ATOL, EXACT_RTOL);

    cpu->scale(cpu, dx.c, 1.7f, n);
    ON_TESTED(gpu, scale)(gpu, dx.g, 1.7f, n);
    check("scale", &dx, EXACT_ATOL, EXACT_RTOL);

    struct pair sq = pair_poisoned(n);
    cpu->square(cpu, sq.c, x.c, n);
    ON_TESTED(gpu, square)(gpu, sq.g, x.g, n);
    check("square", &sq, EXACT_ATOL, EXACT_RTOL);

    pair_free(&x), pair_free(&a), pair_free(&b), pair_free(&y), pair_free(&dx);
    pair_free(&s), pair_free(&sq);
}

static void test_concat(size_t rows, int ca, int cb)
{
    struct pair a = pair_normal(rows * ca, 1.0f), b = pair_normal(rows * cb, 1.0f);
    struct pair y = pair_poisoned(rows * (ca + cb));
    cpu->concat_forward(cpu, y.c, a.c, b.c, rows, ca, cb);
    ON_TESTED(gpu, concat_forward)(gpu, y.g, a.g, b.g, rows, ca, cb);
    check("concat_forward", &y, 0, 0);

    struct pair dy = pair_normal(rows * (ca + cb), 1.0f);
    struct pair da = pair_normal(rows * ca, 1.0f), db = pair_normal(rows * cb, 1.0f);
    cpu->concat_backward(cpu, da.c, db.c, dy.c, rows, ca, cb, GRAD_ADD, GRAD_ADD);
    ON_TESTED(gpu, concat_backward)(gpu, da.g, db.g, dy.g, rows, ca, cb, GRAD_ADD, GRAD_ADD);
    check("concat_backward da (+=)", &da, EXACT_ATOL, EXACT_RTOL);
    check("concat_backward db (+=)", &db, EXACT_ATOL, EXACT_RTOL);
    cpu->concat_backward(cpu, NULL, db.c, dy.c, rows, ca, cb, GRAD_ADD, GRAD_ADD);
    ON_TESTED(gpu, concat_backward)(gpu, NULL, db.g, dy.g, rows, ca, cb, GRAD_ADD, GRAD_ADD);
    check("concat_backward da NULL, db (+=)", &db, EXACT_ATOL, EXACT_RTOL);
    cpu->concat_backward(cpu, da.c, NULL, dy.c, rows, ca, cb, GRAD_ADD, GRAD_ADD);
    ON_TESTED(gpu, concat_backward)(gpu, da.g, NULL, dy.g, rows, ca, cb, GRAD_ADD, GRAD_ADD);
    check("concat_backward db NULL, da (+=)", &da, EXACT_ATOL, EXACT_RTOL);
    /* written over NaN: one of each mode, then the other way round */
    cpu->fill(cpu, da.c, NAN, da.n), ON_TESTED(gpu, fill)(gpu, da.g, NAN, da.n);
    cpu->concat_backward(cpu, da.c, db.c, dy.c, rows, ca, cb, GRAD_WRITE, GRAD_ADD);
    ON_TESTED(gpu, concat_backward)(gpu, da.g, db.g, dy.g, rows, ca, cb, GRAD_WRITE, GRAD_ADD);
    check("concat_backward da (=)", &da, 0, 0);
    check("concat_backward db (+=) beside da (=)", &db, EXACT_ATOL, EXACT_RTOL);
    cpu->fill(cpu, db.c, NAN, db.n), ON_TESTED(gpu, fill)(gpu, db.g, NAN, db.n);
    cpu->concat_backward(cpu, da.c, db.c, dy.c, rows, ca, cb, GRAD_ADD, GRAD_WRITE);
    ON_TESTED(gpu, concat_backward)(gpu, da.g, db.g, dy.g, rows, ca, cb, GRAD_ADD, GRAD_WRITE);
    check("concat_backward db (=)", &db, 0, 0);
    check("concat_backward da (+=) beside db (=)", &da, EXACT_ATOL, EXACT_RTOL);
    pair_free(&a), pair_free(&b), pair_free(&y), pair_free(&dy), pair_free(&da), pair_free(&db);
}

static void test_resample(int n, int h, int w, int c)
{
    char name[96];
    size_t big = (size_t)n * h * w * c, small = big / 4, up = big * 4;
    struct pair x = pair_normal(big, 1.0f);
    struct pair p = pair_poisoned(small);
    cpu->avgpool2_forward(cpu, p.c, x.c, n, h, w, c);
    ON_TESTED(gpu, avgpool2_forward)(gpu, p.g, x.g, n, h, w, c);
    snprintf(name, sizeof name, "avgpool2_forward %dx%dx%dx%d", n, h, w, c);
    check(name, &p, EXACT_ATOL, EXACT_RTOL);

    struct pair dp = pair_normal(small, 1.0f), dx = pair_poisoned(big);
    cpu->avgpool2_backward(cpu, dx.c, dp.c, n, h, w, c, GRAD_WRITE);
    ON_TESTED(gpu, avgpool2_backward)(gpu, dx.g, dp.g, n, h, w, c, GRAD_WRITE);
    snprintf(name, sizeof name, "avgpool2_backward (=) %dx%dx%dx%d", n, h, w, c);
    check(name, &dx, EXACT_ATOL, EXACT_RTOL);
    cpu->avgpool2_backward(cpu, dx.c, dp.c, n, h, w, c, GRAD_ADD);
    ON_TESTED(gpu, avgpool2_backward)(gpu, dx.g, dp.g, n, h, w, c, GRAD_ADD);
    snprintf(name, sizeof name, "avgpool2_backward (+=) %dx%dx%dx%d", n, h, w, c);
    check(name, &dx, EXACT_ATOL, EXACT_RTOL);

    struct pair u = pair_poisoned(up);
    cpu->upsample2_forward(cpu, u.c, x.c, n, h, w, c);
    ON_TESTED(gpu, upsample2_forward)(gpu, u.g, x.g, n, h, w, c);
    snprintf(name, sizeof name, "upsample2_forward %dx%dx%dx%d", n, h, w, c);
    check(name, &u, EXACT_ATOL, EXACT_RTOL);

    struct pair du = pair_normal(up, 1.0f);
    cpu->upsample2_backward(cpu, dx.c, du.c, n, h, w, c, GRAD_ADD);
    ON_TESTED(gpu, upsample2_backward)(gpu, dx.g, du.g, n, h, w, c, GRAD_ADD);
    snprintf(name, sizeof name, "upsample2_backward (+=) %dx%dx%dx%d", n, h, w, c);
    check(name, &dx, EXACT_ATOL, EXACT_RTOL);
    cpu->fill(cpu, dx.c, NAN, big), ON_TESTED(gpu, fill)(gpu, dx.g, NAN, big);
    cpu->upsample2_backward(cpu, dx.c, du.c, n, h, w, c, GRAD_WRITE);
    ON_TESTED(gpu, upsample2_backward)(gpu, dx.g, du.g, n, h, w, c, GRAD_WRITE);
    snprintf(name, sizeof name, "upsample2_backward (=) %dx%dx%dx%d", n, h, w, c);
    check(name, &dx, EXACT_ATOL, EXACT_RTOL);
    pair_free(&x), pair_free(&p), pair_free(&dp), pair_free(&dx), pair_free(&u), pair_free(&du);
}

static void test_batchnorm(size_t rows, int c)
{
    char name[96];
    struct pair x = pair_normal(rows * c, 1.5f);
    /* an offset per channel, so that E[x^2] - E[x]^2 cancels as in real layers */
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < c; j++)
            x.c[r * c + j] += 0.5f * (float)(j % 7) - 1.0f;
    ON_TESTED(gpu, upload)(gpu, x.g, x.c, rows * c * sizeof(float));

    struct pair stats = pair_poisoned(2 * (size_t)c);
    cpu->bn_stats(cpu, stats.c, x.c, rows, c);
    ON_TESTED(gpu, bn_stats)(gpu, stats.g, x.g, rows, c);
    snprintf(name, sizeof name, "bn_stats rows=%zu c=%d", rows, c);
    check(name, &stats, 1e-5f, EXACT_RTOL);

    struct pair y = pair_poisoned(rows * c), saved = pair_poisoned(2 * (size_t)c);
    struct pair mm = pair_normal(c, 0.3f), mv = pair_uniform(c, 0.5f, 2.0f);
    double count = (double)rows;
    cpu->bn_forward_train(cpu, y.c, saved.c, mm.c, mv.c, x.c, stats.c, count, rows, c, 0.99f,
                          1e-3f);
    ON_TESTED(gpu, bn_forward_train)
    (gpu, y.g, saved.g, mm.g, mv.g, x.g, stats.g, count, rows, c, 0.99f, 1e-3f);
    check("bn_forward_train y", &y, EXACT_ATOL, EXACT_RTOL);
    check("bn_forward_train saved", &saved, EXACT_ATOL, EXACT_RTOL);
    check("bn_forward_train moving_mean", &mm, EXACT_ATOL, EXACT_RTOL);
    check("bn_forward_train moving_var", &mv, EXACT_ATOL, EXACT_RTOL);

    struct pair yi = pair_poisoned(rows * c);
    cpu->bn_forward_infer(cpu, yi.c, x.c, mm.c, mv.c, rows, c, 1e-3f);
    ON_TESTED(gpu, bn_forward_infer)(gpu, yi.g, x.g, mm.g, mv.g, rows, c, 1e-3f);
    check("bn_forward_infer", &yi, EXACT_ATOL, EXACT_RTOL);

    struct pair dy = pair_normal(rows * c, 1.0f), bstats = pair_poisoned(2 * (size_t)c);
    cpu->bn_backward_stats(cpu, bstats.c, dy.c, x.c, saved.c, rows, c);
    ON_TESTED(gpu, bn_backward_stats)(gpu, bstats.g, dy.g, x.g, saved.g, rows, c);
    snprintf(name, sizeof name, "bn_backward_stats rows=%zu c=%d", rows, c);
    check(name, &bstats, 1e-5f, EXACT_RTOL);

    struct pair dx = pair_normal(rows * c, 1.0f);
    cpu->bn_backward_apply(cpu, dx.c, dy.c, x.c, saved.c, bstats.c, count, rows, c, GRAD_ADD);
    ON_TESTED(gpu, bn_backward_apply)
    (gpu, dx.g, dy.g, x.g, saved.g, bstats.g, count, rows, c, GRAD_ADD);
    check("bn_backward_apply (+=)", &dx, EXACT_ATOL, EXACT_RTOL);
    cpu->fill(cpu, dx.c, NAN, dx.n), ON_TESTED(gpu, fill)(gpu, dx.g, NAN, dx.n);
    cpu->bn_backward_apply(cpu, dx.c, dy.c, x.c, saved.c, bstats.c, count, rows, c, GRAD_WRITE);
    ON_TESTED(gpu, bn_backward_apply)
    (gpu, dx.g, dy.g, x.g, saved.g, bstats.g, count, rows, c, GRAD_WRITE);
    check("bn_backward_apply (=)", &dx, EXACT_ATOL, EXACT_RTOL);
    pair_free(&x), pair_free(&stats), pair_free(&y), pair_free(&saved), pair_free(&mm);
    pair_free(&mv), pair_free(&yi), pair_free(&dy), pair_free(&bstats), pair_free(&dx);
}

static void test_embedding(int n, int h, int w, int dims)
{
    struct pair v = pair_uniform(n, 0.0f, 1.0f), e = pair_poisoned((size_t)n * h * w * dims);
    cpu->sinusoidal_embedding(cpu, e.c, v.c, n, h, w, dims, 1.0f, 1000.0f);
    ON_TESTED(gpu, sinusoidal_embedding)(gpu, e.g, v.g, n, h, w, dims, 1.0f, 1000.0f);
    check("sinusoidal_embedding", &e, EXACT_ATOL, TRANS_RTOL);
    pair_free(&v), pair_free(&e);
}

static void test_loss(size_t n)
{
    char name[96];
    struct pair pred = pair_normal(n, 1.0f), target = pair_normal(n, 1.0f);
    for (int kind = LOSS_MAE; kind <= LOSS_MSE; kind++) {
        const char *kn = kind == LOSS_MSE ? "mse" : "mae";
        struct pair out = pair_poisoned(1), d = pair_poisoned(n);
        cpu->loss_value(cpu, out.c, pred.c, target.c, n, (enum loss_kind)kind);
        ON_TESTED(gpu, loss_value)(gpu, out.g, pred.g, target.g, n, (enum loss_kind)kind);
        snprintf(name, sizeof name, "loss_value %s n=%zu", kn, n);
        check(name, &out, 1e-6f, EXACT_RTOL);
        cpu->loss_backward(cpu, d.c, pred.c, target.c, n, 0.25f, (enum loss_kind)kind);
        ON_TESTED(gpu, loss_backward)(gpu, d.g, pred.g, target.g, n, 0.25f, (enum loss_kind)kind);
        snprintf(name, sizeof name, "loss_backward %s (=)", kn);
        check(name, &d, EXACT_ATOL, EXACT_RTOL);
        pair_free(&out), pair_free(&d);
    }
    pair_free(&pred), pair_free(&target);
}

static void test_diffusion(int n, size_t per, int c)
{
    struct pair t = pair_uniform(n, 0.0f, 1.0f);
    struct pair nr = pair_poisoned(n), sr = pair_poisoned(n);
    cpu->diffusion_schedule(cpu, nr.c, sr.c, t.c, n, 0.02f, 0.95f);
    ON_TESTED(gpu, diffusion_schedule)(gpu, nr.g, sr.g, t.g, n, 0.02f, 0.95f);
    check("diffusion_schedule noise_rates", &nr, EXACT_ATOL, TRANS_RTOL);
    check("diffusion_schedule signal_rates", &sr, EXACT_ATOL, TRANS_RTOL);

    size_t total = (size_t)n * per;
    struct pair a = pair_normal(total, 1.0f), b = pair_normal(total, 1.0f);
    struct pair y = pair_poisoned(total), p = pair_poisoned(total);
    cpu->mix(cpu, y.c, sr.c, a.c, nr.c, b.c, n, per);
    ON_TESTED(gpu, mix)(gpu, y.g, sr.g, a.g, nr.g, b.g, n, per);
    check("mix", &y, EXACT_ATOL, EXACT_RTOL);
    cpu->pred_images(cpu, p.c, y.c, b.c, nr.c, sr.c, n, per);
    ON_TESTED(gpu, pred_images)(gpu, p.g, y.g, b.g, nr.g, sr.g, n, per);
    check("pred_images", &p, EXACT_ATOL, EXACT_RTOL);

    size_t rows = total / c;
    struct pair mean = pair_uniform(c, 0.3f, 0.6f), var = pair_uniform(c, 0.02f, 0.1f);
    struct pair img = pair_uniform(total, 0.0f, 1.0f), z = pair_poisoned(total);
    struct pair back = pair_poisoned(total);
    cpu->normalize(cpu, z.c, img.c, mean.c, var.c, rows, c);
    ON_TESTED(gpu, normalize)(gpu, z.g, img.g, mean.g, var.g, rows, c);
    check("normalize", &z, EXACT_ATOL, EXACT_RTOL);
    /* normal values in a: denormalized, many fall outside [0, 1] and are clipped */
    cpu->denormalize(cpu, back.c, a.c, mean.c, var.c, rows, c);
    ON_TESTED(gpu, denormalize)(gpu, back.g, a.g, mean.g, var.g, rows, c);
    check("denormalize", &back, EXACT_ATOL, EXACT_RTOL);
    pair_free(&t), pair_free(&nr), pair_free(&sr), pair_free(&a), pair_free(&b);
    pair_free(&y), pair_free(&p), pair_free(&mean), pair_free(&var), pair_free(&img);
    pair_free(&z), pair_free(&back);
}

/* Root mean square of a CPU-side reference: the scale of the conv tolerances. */
static float rms(const float *x, size_t n)
{
    double acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += (double)x[i] * x[i];
    return n ? (float)sqrt(acc / n) : 0.0f;
}

#define CONV_RTOL 1e-4f
#define CONV_ATOL_REL 1e-4f /* times rms of the reference */
#define CONV_REL_L2 2e-5    /* float32 reordering only: see the top of the file */

static void check_conv(const char *what, const struct conv_shape *s, const struct pair *p)
{
    char name[128];
    snprintf(name, sizeof name, "%s n=%d %dx%d cin=%d cout=%d k=%d", what, s->n, s->h, s->w, s->cin,
             s->cout, s->k);
    float *got = malloc(p->n * sizeof(float));
    ON_TESTED(gpu, download)(gpu, got, p->g, p->n * sizeof(float));
    test_rel_l2(name, got, p->c, p->n, CONV_REL_L2); /* before check() syncs the sides */
    free(got);
    check(name, p, CONV_ATOL_REL * rms(p->c, p->n), CONV_RTOL);
}

/* conv2d forward (y written over NaN), backward with dx accumulating onto random values and
 * dw/dbias written over NaN, then with dx written over NaN, then backward again with dx
 * NULL (fresh NaN in dw/dbias). */
static void test_conv(int n, int h, int w, int cin, int cout, int k)
{
    if (!gpu->conv2d_forward) /* the host emulation: no cuDNN */
        return;
    struct conv_shape s = {.n = n, .h = h, .w = w, .cin = cin, .cout = cout, .k = k};
    size_t xs = (size_t)n * h * w * cin, ys = (size_t)n * h * w * cout;
    size_t ws = (size_t)k * k * cin * cout;
    struct pair x = pair_normal(xs, 1.0f), wt = pair_normal(ws, 1.0f / sqrtf((float)(k * k * cin)));
    struct pair bias = pair_normal(cout, 0.5f), y = pair_poisoned(ys);
    cpu->conv2d_forward(cpu, y.c, x.c, wt.c, bias.c, &s, NULL);
    ON_TESTED(gpu, conv2d_forward)(gpu, y.g, x.g, wt.g, bias.g, &s, NULL);
    check_conv("conv2d_forward y", &s, &y);

    struct pair dy = pair_normal(ys, 1.0f), dx = pair_normal(xs, 1.0f);
    struct pair dw = pair_poisoned(ws), db = pair_poisoned(cout);
    cpu->conv2d_backward(cpu, dx.c, dw.c, db.c, dy.c, x.c, wt.c, &s, GRAD_ADD);
    ON_TESTED(gpu, conv2d_backward)(gpu, dx.g, dw.g, db.g, dy.g, x.g, wt.g, &s, GRAD_ADD);
    check_conv("conv2d_backward dx (+=)", &s, &dx);
    check_conv("conv2d_backward dw (=)", &s, &dw);
    check_conv("conv2d_backward dbias (=)", &s, &db);
    cpu->fill(cpu, dx.c, NAN, xs), ON_TESTED(gpu, fill)(gpu, dx.g, NAN, xs);
    cpu->conv2d_backward(cpu, dx.c, dw.c, db.c, dy.c, x.c, wt.c, &s, GRAD_WRITE);
    ON_TESTED(gpu, conv2d_backward)(gpu, dx.g, dw.g, db.g, dy.g, x.g, wt.g, &s, GRAD_WRITE);
    check_conv("conv2d_backward dx (=)", &s, &dx);

    cpu->fill(cpu, dw.c, NAN, ws), ON_TESTED(gpu, fill)(gpu, dw.g, NAN, ws);
    cpu->fill(cpu, db.c, NAN, cout), ON_TESTED(gpu, fill)(gpu, db.g, NAN, cout);
    cpu->conv2d_backward(cpu, NULL, dw.c, db.c, dy.c, x.c, wt.c, &s, GRAD_ADD);
    ON_TESTED(gpu, conv2d_backward)(gpu, NULL, dw.g, db.g, dy.g, x.g, wt.g, &s, GRAD_ADD);
    check_conv("conv2d_backward dx NULL, dw (=)", &s, &dw);
    check_conv("conv2d_backward dx NULL, dbias (=)", &s, &db);
    pair_free(&x), pair_free(&wt), pair_free(&bias), pair_free(&y), pair_free(&dy);
    pair_free(&dx), pair_free(&dw), pair_free(&db);
}

/* Every convolution shape of the Keras fixture and the seed network (see the top of the
 * file), and BatchNorm over their sizes. */
static void test_network_shapes(void)
{
    static const int fixture[][4] = {/* h, cin, cout, k at batch 4 */
                                     {16, 3, 8, 1},  {16, 16, 8, 3}, {16, 16, 8, 1}, {16, 8, 8, 3},
                                     {8, 8, 16, 3},  {8, 8, 16, 1},  {8, 16, 16, 3}, {4, 16, 24, 3},
                                     {4, 16, 24, 1}, {4, 24, 24, 3}, {8, 40, 16, 3}, {8, 40, 16, 1},
                                     {8, 32, 16, 3}, {8, 32, 16, 1}, {16, 24, 8, 3}, {16, 24, 8, 1},
                                     {16, 8, 3, 1}};
    static const int seed[][4] = {
        /* h, cin, cout, k at batch 2 */
        {64, 3, 32, 1},   {64, 64, 32, 3},  {64, 64, 32, 1},  {64, 32, 32, 3},  {32, 32, 64, 3},
        {32, 32, 64, 1},  {32, 64, 64, 3},  {16, 64, 96, 3},  {16, 64, 96, 1},  {16, 96, 96, 3},
        {8, 96, 128, 3},  {8, 96, 128, 1},  {8, 128, 128, 3}, {16, 224, 96, 3}, {16, 224, 96, 1},
        {16, 192, 96, 3}, {16, 192, 96, 1}, {32, 160, 64, 3}, {32, 160, 64, 1}, {32, 128, 64, 3},
        {32, 128, 64, 1}, {64, 96, 32, 3},  {64, 96, 32, 1},  {64, 32, 3, 1}};
    for (size_t i = 0; i < sizeof fixture / sizeof fixture[0]; i++)
        test_conv(4, fixture[i][0], fixture[i][0], fixture[i][1], fixture[i][2], fixture[i][3]);
    for (size_t i = 0; i < sizeof seed / sizeof seed[0]; i++)
        test_conv(2, seed[i][0], seed[i][0], seed[i][1], seed[i][2], seed[i][3]);
    /* BN: the fixture's levels at batch 4, the seed's at batch 2, and one seed layer at
     * its real batch of 64 (262144 rows: the long reductions of a real step) */
    static const int bn[][2] = {{4 * 16 * 16, 8},  {4 * 16 * 16, 16},  {4 * 8 * 8, 40},
                                {4 * 4 * 4, 24},   {2 * 64 * 64, 32},  {2 * 64 * 64, 64},
                                {2 * 32 * 32, 96}, {2 * 16 * 16, 224}, {2 * 8 * 8, 128},
                                {64 * 64 * 64, 32}};
    for (size_t i = 0; i < sizeof bn / sizeof bn[0]; i++)
        test_batchnorm((size_t)bn[i][0], bn[i][1]);
}

/* The CUDA backend must fill the whole op table: an op added to backend.h needs its CUDA
 * version and its CPU-vs-CUDA check here. */
static void test_missing_list(void)
{
    char missing[512] = "";
    int count = backend_missing_ops(gpu, missing, sizeof missing);
#ifdef DDIM_CUDA_EMU
    if (!strcmp(missing, "conv2d_forward, conv2d_backward")) { /* cuDNN's, not emulated */
        printf("ok   missing only the convolutions (cuDNN): their checks are skipped\n");
        return;
    }
#endif
    if (count != 0)
        test_fail("backend_missing_ops(cuda) = %d [%s], expected none: implement them in "
                  "kernels/cuda_*.cu and add their CPU-vs-CUDA checks to tests/test_cuda_ops.c",
                  count, missing);
    else
        printf("ok   no missing ops\n");
}

int main(void)
{
    char err[512] = "";
    gpu = test_gpu_backend(err, sizeof err);
    if (!gpu) {
        printf("SKIP: %s\n", err);
        return TEST_SKIP;
    }
    cpu = cpu_backend_create();
    test_seed(20240611);

    test_missing_list();
    test_memory();
    test_elementwise(3 * 6 * 10 * 5);
    test_elementwise(1000003); /* large and odd: partial last block */
    test_concat(3 * 6 * 10, 5, 3);
    test_concat(7, 1, 64);
    test_resample(3, 6, 10, 5);
    test_resample(2, 2, 4, 3); /* an edge tap on every side */
    test_resample(1, 32, 32, 64);
    test_batchnorm(3 * 6 * 10, 5);
    test_batchnorm(4 * 32 * 32, 37); /* many row chunks, a partial channel block */
    test_batchnorm(7, 96);
    test_batchnorm(3, 3100); /* wider than shared memory holds: coefficients in global memory */
    test_embedding(3, 4, 5, 32);
    test_embedding(2, 1, 1, 6);
    test_loss(3 * 6 * 10 * 3);
    test_loss(300001); /* more blocks than the loss's partials: grid-stride */
    test_diffusion(3, 6 * 10 * 3, 3);
    test_diffusion(5, 16 * 16 * 3, 3);
    test_step_ops(); /* test_cuda_step_ops.c */
    test_bf16_ops(); /* test_cuda_bf16_ops.c */

    test_conv(2, 6, 10, 5, 7, 3);    /* non-square, cin != cout, odd channels, n > 1 */
    test_conv(1, 5, 3, 4, 6, 1);     /* 1x1, non-square */
    test_conv(3, 7, 4, 16, 8, 1);    /* 1x1, cin > cout */
    test_conv(2, 2, 3, 3, 4, 3);     /* every 3x3 window reaches the padding */
    test_conv(2, 32, 24, 3, 32, 3);  /* like the first layer: 3 input channels */
    test_conv(2, 16, 16, 64, 32, 3); /* U-Net-like widths, multiples of 8 */
    test_conv(4, 8, 8, 96, 64, 1);
    test_conv(2, 8, 8, 128, 128, 3);
    test_conv(2, 6, 10, 5, 7, 3);    /* a known shape again: cached plan, grown buffers */
    test_conv(2, 16, 16, 56, 24, 3); /* odd multiples of 8 */
    if (gpu->conv2d_forward) {       /* the fused epilogue against the ops apart, on the GPU */
        struct conv_shape e3 = {.n = 2, .h = 16, .w = 16, .cin = 32, .cout = 32, .k = 3};
        struct conv_shape e1 = {.n = 2, .h = 8, .w = 8, .cin = 40, .cout = 16, .k = 1};
        test_conv_epilogue(gpu, &e3);
        test_conv_epilogue(gpu, &e1);
    }
    test_network_shapes();

    /* every required op of the list has run on both backends above (the optional ones:
     * test_cuda_infer_ops.c): the list of ops to check is the op list itself */
    const char *gpu_name = gpu->name;
    struct backend table = *gpu; /* the entries, for the coverage after destroy */
    ON_TESTED(gpu, destroy)(gpu);
    test_ops_checked(&table, 1u << OP_REQUIRED);
    cpu->destroy(cpu);
    return test_finish(strcmp(gpu_name, "cuda") ? "test_cuda_emu" : "test_cuda_ops");
}
