/* test_op_semantics.c: what the CPU ops promise besides their gradients.
 *
 * (a) Write/accumulate contracts of backend.h: every backward op, in both of its grad_mode
 *     modes, for each activation gradient it stores: GRAD_ADD from random R gives R + (its
 *     result from zero), GRAD_WRITE over garbage (NaN, 1e30) gives exactly the bits of
 *     GRAD_ADD onto zeros (0 + value); every written (=) output (parameter gradients,
 *     statistics, forward outputs) must not depend on garbage already in the buffer; NULL
 *     dx/da/db are accepted where backend.h says so.
 * (b) Known values: upsample2 worked out by hand from TF's half-pixel rule, avgpool2, the
 *     sinusoidal embedding, BatchNorm statistics and moving averages, AdamW against Keras's
 *     formula in double, EMA, the diffusion schedule, (de)normalization, the losses, mixing,
 *     and the resident data's gather. The random streams are in test_rng.c. */
#include "backend.h"
#include "optim_math.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct backend *be;

static const double pi_d = 3.14159265358979323846;

static float *filled(size_t n, float v)
{
    float *p = test_alloc_zeros(n);
    for (size_t i = 0; i < n; i++)
        p[i] = v;
    return p;
}

static float *copy_of(const float *x, size_t n)
{
    float *p = test_alloc_zeros(n);
    memcpy(p, x, n * sizeof(float));
    return p;
}

/* test_close with a printf-style label */
static void close_fmt(const float *got, const float *want, size_t n, float atol, float rtol,
                      const char *fmt, const char *arg, int iarg)
{
    char label[160];
    snprintf(label, sizeof label, fmt, arg, iarg);
    test_close(label, got, want, n, atol, rtol);
}

/* --- (a) write (=) and accumulate (+=) ---------------------------------------------- */

/* A backward that stores one activation gradient: run(ctx, dx, mode) must do dx = g
 * (GRAD_WRITE) or dx += g (GRAD_ADD). */
typedef void (*grad_fn)(void *ctx, float *dx, enum grad_mode mode);

/* g from zero (GRAD_ADD), then GRAD_WRITE over NaN and over 1e30: exactly g (the written
 * value is 0 + g, so even the sign of a zero matches); then GRAD_ADD from R: R + g within
 * the tolerance of the other summation order (R added first instead of last: a few ulps
 * of |R| + |g| ~ 1). */
static void check_grad_modes(const char *name, grad_fn run, void *ctx, size_t n)
{
    float *g = test_alloc_zeros(n), *r = test_alloc_normal(n, 1.0f);
    float *dx = copy_of(r, n), *want = test_alloc_zeros(n);
    char label[128];
    run(ctx, g, GRAD_ADD);
    const float garbage[2] = {NAN, 1e30f};
    for (int k = 0; k < 2; k++) {
        float *w = filled(n, garbage[k]);
        run(ctx, w, GRAD_WRITE);
        snprintf(label, sizeof label, "writes: %s over %s", name, k ? "1e30" : "NaN");
        test_close(label, w, g, n, 0.0f, 0.0f);
        if (memcmp(w, g, n * sizeof(float)) != 0)
            test_fail("%s: the written bits differ from 0 + value", label);
        free(w);
    }
    run(ctx, dx, GRAD_ADD);
    for (size_t i = 0; i < n; i++)
        want[i] = r[i] + g[i];
    snprintf(label, sizeof label, "accumulates: %s", name);
    test_close(label, dx, want, n, 1e-5f, 1e-5f);
    free(g), free(r), free(dx), free(want);
}

struct conv_ctx {
    struct conv_shape s;
    float *x, *w, *dy, *dw, *db;
};

static void conv_dx(void *p, float *dx, enum grad_mode mode)
{
    struct conv_ctx *c = p;
    be->conv2d_backward(be, dx, c->dw, c->db, c->dy, c->x, c->w, &c->s, mode);
}

/* dx in both modes; dw and dbias are written whatever the buffers held; NULL dx is skipped
 * without changing dw and dbias. */
static void check_conv_contract(int n, int h, int w, int cin, int cout, int k)
{
    struct conv_ctx c = {.s = {.n = n, .h = h, .w = w, .cin = cin, .cout = cout, .k = k}};
    size_t nx = (size_t)n * h * w * cin, ny = (size_t)n * h * w * cout;
    size_t nw = (size_t)k * k * cin * cout;
    c.x = test_alloc_normal(nx, 1.0f);
    c.w = test_alloc_normal(nw, 0.5f);
    c.dy = test_alloc_normal(ny, 1.0f);
    c.dw = test_alloc_zeros(nw);
    c.db = test_alloc_zeros((size_t)cout);
    char name[96];
    snprintf(name, sizeof name, "conv%dx%d n%d %dx%d %d->%d", k, k, n, h, w, cin, cout);
    check_grad_modes(name, conv_dx, &c, nx);
    float *dw0 = copy_of(c.dw, nw), *db0 = copy_of(c.db, (size_t)cout), *dx = test_alloc_zeros(nx);
    const float garbage[2] = {NAN, 1e30f};
    for (int g = 0; g < 2; g++) {
        for (size_t i = 0; i < nw; i++)
            c.dw[i] = garbage[g];
        for (int i = 0; i < cout; i++)
            c.db[i] = garbage[g];
        be->conv2d_backward(be, g ? NULL : dx, c.dw, c.db, c.dy, c.x, c.w, &c.s, GRAD_ADD);
        char label[128];
        snprintf(label, sizeof label, "writes: %s dw over %s%s", name, g ? "1e30" : "NaN",
                 g ? ", dx NULL" : "");
        test_close(label, c.dw, dw0, nw, 1e-5f, 1e-5f);
        snprintf(label, sizeof label, "writes: %s dbias over %s", name, g ? "1e30" : "NaN");
        test_close(label, c.db, db0, (size_t)cout, 1e-5f, 1e-5f);
    }
    /* the forward writes y: bias first, then the product, whatever y held */
    float *y = filled(ny, NAN), *y0 = test_alloc_zeros(ny);
    be->conv2d_forward(be, y0, c.x, c.w, c.db, &c.s, NULL);
    be->conv2d_forward(be, y, c.x, c.w, c.db, &c.s, NULL);
    snprintf(name + strlen(name), sizeof name - strlen(name), " forward over NaN");
    test_close(name, y, y0, ny, 0.0f, 0.0f);
    free(c.x), free(c.w), free(c.dy), free(c.dw), free(c.db), free(dw0), free(db0), free(dx);
    free(y), free(y0);
}

struct simple_ctx {
    int n, h, w, c, op; /* op: which backward simple_dx runs */
    size_t rows, len;
    float *x, *dy, *saved, *bstats;
    float *other; /* add_backward, concat_backward: the other output, its mode the same */
};

enum { OP_SWISH, OP_ADD_A, OP_ADD_B, OP_CONCAT_A, OP_CONCAT_B, OP_POOL, OP_UPSAMPLE, OP_BN };

static void simple_dx(void *p, float *dx, enum grad_mode mode)
{
    struct simple_ctx *s = p;
    switch (s->op) {
    case OP_SWISH:
        be->swish_backward(be, dx, s->dy, s->x, s->len, mode);
        break;
    case OP_ADD_A: /* and the other output NULL, then given (its own mode) */
        be->add_backward(be, dx, NULL, s->dy, s->len, mode, GRAD_WRITE);
        break;
    case OP_ADD_B:
        be->add_backward(be, s->other, dx, s->dy, s->len, GRAD_WRITE, mode);
        break;
    case OP_CONCAT_A: /* (rows, c) of a (rows, c + 2) concatenation, b NULL */
        be->concat_backward(be, dx, NULL, s->dy, s->rows, s->c, 2, mode, GRAD_WRITE);
        break;
    case OP_CONCAT_B: /* (rows, c) of a (rows, 2 + c) concatenation, a written beside */
        be->concat_backward(be, s->other, dx, s->dy, s->rows, 2, s->c, GRAD_WRITE, mode);
        break;
    case OP_POOL:
        be->avgpool2_backward(be, dx, s->dy, s->n, s->h, s->w, s->c, mode);
        break;
    case OP_UPSAMPLE:
        be->upsample2_backward(be, dx, s->dy, s->n, s->h, s->w, s->c, mode);
        break;
    default:
        be->bn_backward_apply(be, dx, s->dy, s->x, s->saved, s->bstats, (double)s->rows, s->rows,
                              s->c, mode);
    }
}

/* axpy (not a backward any more, but the sampler's y += alpha*x): accumulates */
static void check_axpy_accumulates(const float *x, size_t n)
{
    float *r = test_alloc_normal(n, 1.0f), *y = copy_of(r, n), *want = test_alloc_zeros(n);
    be->axpy(be, y, -1.5f, x, n);
    for (size_t i = 0; i < n; i++)
        want[i] = r[i] + -1.5f * x[i];
    test_close("accumulates: axpy", y, want, n, 1e-6f, 1e-6f);
    free(r), free(y), free(want);
}

static void check_simple_contracts(void)
{
    struct simple_ctx s = {2, 4, 6, 3, OP_SWISH, 0, 0, NULL, NULL, NULL, NULL, NULL};
    size_t nx = (size_t)s.n * s.h * s.w * s.c;
    s.len = nx;
    s.rows = (size_t)s.n * s.h * s.w;
    s.x = test_alloc_normal(4 * nx, 1.0f); /* big enough for every use below */
    s.dy = test_alloc_normal(4 * nx, 1.0f);
    s.other = test_alloc_zeros(4 * nx);
    check_grad_modes("swish_backward", simple_dx, &s, nx);
    s.op = OP_ADD_A;
    check_grad_modes("add_backward da (db NULL)", simple_dx, &s, nx);
    s.op = OP_ADD_B;
    check_grad_modes("add_backward db (da written)", simple_dx, &s, nx);
    s.op = OP_CONCAT_A;
    check_grad_modes("concat_backward da (db NULL)", simple_dx, &s, s.rows * s.c);
    s.op = OP_CONCAT_B;
    check_grad_modes("concat_backward db (da written)", simple_dx, &s, s.rows * s.c);
    check_axpy_accumulates(s.dy, nx);
    s.op = OP_POOL;
    check_grad_modes("avgpool2_backward 4x6", simple_dx, &s, nx);
    s.op = OP_UPSAMPLE, s.h = 3, s.w = 5; /* upsample from a non-square odd size */
    check_grad_modes("upsample2_backward 3x5", simple_dx, &s, (size_t)s.n * 15 * s.c);
    s.h = 4, s.w = 6;

    /* BatchNorm: stats, saved and bstats are written; dx accumulates */
    int c = s.c;
    float *stats = filled(2 * (size_t)c, NAN), *stats0 = test_alloc_zeros(2 * (size_t)c);
    float *saved = filled(2 * (size_t)c, NAN), *saved0 = test_alloc_zeros(2 * (size_t)c);
    float *bstats = filled(2 * (size_t)c, NAN), *bstats0 = test_alloc_zeros(2 * (size_t)c);
    float *y = filled(nx, NAN), *y0 = test_alloc_zeros(nx), *mm = test_alloc_zeros((size_t)c),
          *mv = test_alloc_zeros((size_t)c);
    be->bn_stats(be, stats0, s.x, s.rows, c);
    be->bn_stats(be, stats, s.x, s.rows, c);
    test_close("writes: bn_stats over NaN", stats, stats0, 2 * (size_t)c, 0.0f, 0.0f);
    be->bn_forward_train(be, y0, saved0, mm, mv, s.x, stats, (double)s.rows, s.rows, c, 0.99f,
                         1e-3f);
    be->bn_forward_train(be, y, saved, mm, mv, s.x, stats, (double)s.rows, s.rows, c, 0.99f, 1e-3f);
    test_close("writes: bn_forward_train saved over NaN", saved, saved0, 2 * (size_t)c, 0, 0);
    test_close("writes: bn_forward_train y over NaN", y, y0, nx, 0.0f, 0.0f);
    be->bn_backward_stats(be, bstats0, s.dy, s.x, saved, s.rows, c);
    be->bn_backward_stats(be, bstats, s.dy, s.x, saved, s.rows, c);
    test_close("writes: bn_backward_stats over NaN", bstats, bstats0, 2 * (size_t)c, 0, 0);
    s.saved = saved;
    s.bstats = bstats;
    s.op = OP_BN;
    check_grad_modes("bn_backward_apply", simple_dx, &s, nx);

    /* concat: da and db are the slices of dy, whatever the mode; either may be NULL */
    size_t rows = 9;
    int ca = 2, cb = 3;
    float *ra = test_alloc_normal(rows * ca, 1.0f), *rb = test_alloc_normal(rows * cb, 1.0f);
    float *da = copy_of(ra, rows * ca), *db = copy_of(rb, rows * cb);
    float *wa = test_alloc_zeros(rows * ca), *wb = test_alloc_zeros(rows * cb);
    be->concat_backward(be, da, NULL, s.dy, rows, ca, cb, GRAD_ADD, GRAD_ADD);
    be->concat_backward(be, NULL, db, s.dy, rows, ca, cb, GRAD_ADD, GRAD_ADD);
    for (size_t r = 0; r < rows; r++) {
        for (int j = 0; j < ca; j++)
            wa[r * ca + j] = ra[r * ca + j] + s.dy[r * (ca + cb) + j];
        for (int j = 0; j < cb; j++)
            wb[r * cb + j] = rb[r * cb + j] + s.dy[r * (ca + cb) + ca + j];
    }
    test_close("accumulates: concat_backward da (db NULL)", da, wa, rows * ca, 1e-6f, 1e-6f);
    test_close("accumulates: concat_backward db (da NULL)", db, wb, rows * cb, 1e-6f, 1e-6f);
    be->concat_backward(be, da, db, s.dy, rows, ca, cb, GRAD_WRITE, GRAD_WRITE);
    for (size_t r = 0; r < rows; r++) {
        for (int j = 0; j < ca; j++)
            wa[r * ca + j] = s.dy[r * (ca + cb) + j];
        for (int j = 0; j < cb; j++)
            wb[r * cb + j] = s.dy[r * (ca + cb) + ca + j];
    }
    test_close("writes: concat_backward da", da, wa, rows * ca, 0.0f, 0.0f);
    test_close("writes: concat_backward db", db, wb, rows * cb, 0.0f, 0.0f);

    /* loss_backward writes dpred */
    for (int kind = LOSS_MAE; kind <= LOSS_MSE; kind++) {
        float *dp = filled(nx, NAN), *dp0 = test_alloc_zeros(nx);
        be->loss_backward(be, dp0, s.x, s.dy, nx, 0.3f, (enum loss_kind)kind);
        be->loss_backward(be, dp, s.x, s.dy, nx, 0.3f, (enum loss_kind)kind);
        test_close(kind == LOSS_MAE ? "writes: loss_backward MAE over NaN"
                                    : "writes: loss_backward MSE over NaN",
                   dp, dp0, nx, 0.0f, 0.0f);
        free(dp), free(dp0);
    }
    free(s.x), free(s.dy), free(s.other), free(stats), free(stats0), free(saved), free(saved0),
        free(bstats);
    free(bstats0), free(y), free(y0), free(mm), free(mv), free(ra), free(rb), free(da), free(db);
    free(wa), free(wb);
}

/* --- (b) known values ----------------------------------------------------------------- */

/* TF half-pixel rule, doubling: output o reads src = (o + 0.5)/2 - 0.5, i.e. -0.25, 0.25,
 * 0.75, 1.25, ... with taps floor/ceil clamped to the edge. Along an axis of 2 values a, b:
 * [a, a + (b-a)/4, a + 3(b-a)/4, b]. For [[1,2],[3,4]]: rows are 1..2 and 3..4 expanded,
 * and the four output rows mix them with weights 1, 3/4 1/4, 1/4 3/4, 1. */
static void check_upsample_known(void)
{
    const float x[4] = {1, 2, 3, 4};
    const float want[16] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                            2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
    float y[16];
    be->upsample2_forward(be, y, x, 1, 2, 2, 1);
    test_close("upsample2 [[1,2],[3,4]] known values", y, want, 16, 1e-6f, 0.0f);

    /* 1x3 with two channels (the second -10x the first): [0, 3, 6] -> src -0.25 .. 2.25 ->
     * [0, 0.75, 2.25, 3.75, 5.25, 6] on both output rows; channels stay separate */
    const float x2[6] = {0, -0, 3, -30, 6, -60};
    const float row[6] = {0, 0.75f, 2.25f, 3.75f, 5.25f, 6.0f};
    float want2[24], y2[24];
    for (int r = 0; r < 2; r++)
        for (int o = 0; o < 6; o++) {
            want2[(r * 6 + o) * 2] = row[o];
            want2[(r * 6 + o) * 2 + 1] = -10.0f * row[o];
        }
    be->upsample2_forward(be, y2, x2, 1, 1, 3, 2);
    test_close("upsample2 1x3 c2 known values", y2, want2, 24, 1e-5f, 0.0f);
}

static void check_avgpool_known(void)
{
    /* 1x2x4x2: channel 0 [[1,2,3,4],[5,6,7,8]], channel 1 = -channel 0 * 2 */
    float x[16], y[4];
    for (int i = 0; i < 8; i++) {
        x[2 * i] = (float)(i + 1);
        x[2 * i + 1] = -2.0f * (float)(i + 1);
    }
    const float want[4] = {3.5f, -7.0f, 5.5f, -11.0f};
    be->avgpool2_forward(be, y, x, 1, 2, 4, 2);
    test_close("avgpool2 known values", y, want, 4, 1e-6f, 0.0f);
}

/* Direct double computation of [sin(2 pi f_k v), cos(2 pi f_k v)]. The op works in float32
 * in TensorFlow's order: linspace, exp and 2*pi*f each round, so f_k carries a few 1e-7
 * of relative error, which at arguments up to 2*pi*1000 (v = 1) is up to ~1e-3 radians
 * (measured: 9e-4 at v = 1, k = 14, so a flat 1e-3 would leave no margin). The full range
 * gets 1e-4 + 1e-6*|arg| (6e-3 at v = 1, 4e-4 at v = 0.02), small variances (|arg| < 7) a
 * tight 2e-6 that catches even a 1e-5 relative frequency error. Broadcast over h*w must
 * be exact. */
static void check_embedding(void)
{
    const float v[6] = {0.0f, 1e-4f, 1e-3f, 0.02f, 0.37f, 1.0f};
    int n = 6, h = 2, w = 3, dims = 32, half = dims / 2;
    float *e = filled((size_t)n * h * w * dims, NAN);
    be->sinusoidal_embedding(be, e, v, n, h, w, dims, 1.0f, 1000.0f);
    int bad = 0;
    double worst_small = 0, worst = 0;
    for (int i = 0; i < n; i++) {
        const float *row = e + (size_t)i * h * w * dims;
        for (int k = 0; k < half; k++) {
            double f = exp(log(1.0) + k * (log(1000.0) - log(1.0)) / (half - 1));
            double arg = 2.0 * pi_d * f * (double)v[i];
            double es = fabs(row[k] - sin(arg)), ec = fabs(row[half + k] - cos(arg));
            double err = fmax(es, ec), tol = v[i] <= 1e-3f ? 2e-6 : 1e-4 + 1e-6 * arg;
            if (v[i] <= 1e-3f)
                worst_small = fmax(worst_small, err);
            worst = fmax(worst, err / tol);
            if (!(err <= tol) && bad++ < 5)
                test_fail("embedding v=%g k=%d: sin %.7f want %.7f, cos %.7f want %.7f (tol %.2g)",
                          v[i], k, row[k], sin(arg), row[half + k], cos(arg), tol);
        }
        for (int p = 1; p < h * w; p++)
            if (memcmp(row, row + (size_t)p * dims, (size_t)dims * sizeof(float)) != 0 && !bad++)
                test_fail("embedding v=%g: pixel %d differs from pixel 0", v[i], p);
    }
    if (!bad)
        printf("ok   sinusoidal embedding vs double: small-v max err %.3g, worst err/tol %.3g\n",
               worst_small, worst);
    free(e);
}

/* BatchNorm training: batch mean and biased variance normalize; the moving variance gets
 * the unbiased (count/(count-1)) variance. count = 2*rows with doubled sums is what two
 * ranks holding the same data all-reduce: the statistics must use count, not rows. */
static void check_bn_known(void)
{
    enum { ROWS = 10, C = 3 };
    float x[ROWS * C], y[ROWS * C], stats[2 * C], saved[2 * C], want[ROWS * C];
    test_fill_normal(x, ROWS * C, 1.5f);
    for (int ranks = 1; ranks <= 2; ranks++) {
        const float mm0[C] = {0.3f, -1.0f, 2.0f}, mv0[C] = {1.0f, 0.5f, 3.0f};
        float mm[C], mv[C];
        memcpy(mm, mm0, sizeof mm);
        memcpy(mv, mv0, sizeof mv);
        float wmm[C], wmv[C], wsaved[2 * C];
        double count = (double)ROWS * ranks;
        be->bn_stats(be, stats, x, ROWS, C);
        for (int j = 0; j < 2 * C; j++)
            stats[j] *= (float)ranks;
        be->bn_forward_train(be, y, saved, mm, mv, x, stats, count, ROWS, C, 0.9f, 1e-3f);
        for (int j = 0; j < C; j++) {
            double s = 0, ss = 0;
            for (int r = 0; r < ROWS; r++)
                s += x[r * C + j];
            double mean = s / ROWS;
            for (int r = 0; r < ROWS; r++)
                ss += (x[r * C + j] - mean) * (x[r * C + j] - mean);
            double var = ss / ROWS, invstd = 1.0 / sqrt(var + 1e-3);
            for (int r = 0; r < ROWS; r++)
                want[r * C + j] = (float)((x[r * C + j] - mean) * invstd);
            wsaved[j] = (float)mean;
            wsaved[C + j] = (float)invstd;
            wmm[j] = (float)(0.9 * mm0[j] + 0.1 * mean);
            wmv[j] = (float)(0.9 * mv0[j] + 0.1 * var * count / (count - 1));
        }
        int cnt = (int)count;
        close_fmt(y, want, ROWS * C, 2e-6f, 2e-5f, "bn_forward_train %s (count %d)", "y", cnt);
        close_fmt(saved, wsaved, 2 * C, 1e-6f, 1e-5f, "bn_forward_train %s (count %d)", "saved",
                  cnt);
        close_fmt(mm, wmm, C, 1e-6f, 1e-5f, "bn %s (count %d)", "moving_mean", cnt);
        close_fmt(mv, wmv, C, 1e-6f, 1e-5f, "bn %s (count %d)", "moving_var, count/(count-1)", cnt);
    }
    /* inference: the moving statistics, with epsilon inside the square root */
    const float xm[2 * C] = {1.0f, 2.0f, -3.0f, 0.5f, 0.0f, 4.0f};
    const float mm[C] = {0.5f, 1.0f, -1.0f}, mv[C] = {0.999f, 3.999f, 0.249f};
    const float wi[2 * C] = {0.5f, 0.5f, -4.0f, 0.0f, -0.5f, 10.0f};
    float yi[2 * C];
    be->bn_forward_infer(be, yi, xm, mm, mv, 2, C, 1e-3f);
    test_close("bn_forward_infer known values", yi, wi, 2 * C, 1e-6f, 1e-5f);
}

/* Keras AdamW.update_step, in double with the float32 hyperparameters: decay first
 * (w -= w*wd*lr), then m += (g-m)(1-b1), v += (g^2-v)(1-b2),
 * w -= m*lr*sqrt(1-b2^t)/(1-b1^t) / (sqrt(v) + eps). Large lr and wd and some tiny
 * gradients (where eps dominates sqrt(v)) make order, bias correction and the place of
 * eps all visible; float32 rounding stays ~1e-7 relative. */
static void check_adamw(void)
{
    enum { N = 64 };
    const float lr = 0.05f, b1 = 0.9f, b2 = 0.999f, eps = 1e-7f, wd = 0.2f;
    float w[N], m[N] = {0}, v[N] = {0}, g[N], fw[N], fm[N], fv[N];
    double dw[N], dm[N] = {0}, dv[N] = {0}, dm_abs[N] = {0}; /* |terms| of m: its scale */
    test_fill_normal(w, N, 1.0f);
    for (int i = 0; i < N; i++)
        dw[i] = w[i];
    for (int t = 1; t <= 3; t++) {
        test_fill_normal(g, N, 1.0f);
        for (int i = 0; i < N; i += 4)
            g[i] *= 1e-7f;
        struct adamw_scalars table[2] = {adamw_scalars_for_step(lr, b1, b2, eps, wd, t + 1),
                                         adamw_scalars_for_step(lr, b1, b2, eps, wd, t)};
        const int32_t entry = 1; /* the table's entry for step t, picked by a counter */
        be->adamw_update(be, w, g, m, v, N, table, &entry);
        double alpha = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t));
        for (int i = 0; i < N; i++) {
            dw[i] -= dw[i] * wd * lr;
            dm[i] += (g[i] - dm[i]) * (1.0 - b1);
            dm_abs[i] = dm_abs[i] * b1 + fabs(g[i]) * (1.0 - b1);
            dv[i] += ((double)g[i] * g[i] - dv[i]) * (1.0 - b2);
            dw[i] -= dm[i] * alpha / (sqrt(dv[i]) + eps);
            fw[i] = (float)dw[i], fm[i] = (float)dm[i], fv[i] = (float)dv[i];
        }
        close_fmt(w, fw, N, 1e-6f, 1e-5f, "adamw %s after step %d", "w", t);
        /* m is a sum of terms that may cancel: its float32 rounding is relative to the
         * terms' size, not to m's */
        for (int i = 0; i < N; i++)
            if (!(fabs((double)m[i] - fm[i]) <= 1e-5 * dm_abs[i]))
                test_fail("adamw m after step %d [%d]: got %.9g want %.9g (|terms| %.3g)", t, i,
                          m[i], fm[i], dm_abs[i]);
        close_fmt(v, fv, N, 0.0f, 1e-5f, "adamw %s after step %d", "v", t);
    }
}

static void check_ema(void)
{
    enum { N = 50 };
    float ema[N], w[N], want[N];
    test_fill_normal(ema, N, 1.0f);
    test_fill_normal(w, N, 1.0f);
    const float decays[2] = {0.999f, 0.5f};
    for (int d = 0; d < 2; d++) {
        for (int i = 0; i < N; i++)
            want[i] = (float)(decays[d] * (double)ema[i] + (1.0 - decays[d]) * (double)w[i]);
        be->ema_update(be, ema, w, N, decays[d]);
        test_close(d ? "ema_update decay 0.5" : "ema_update decay 0.999", ema, want, N, 1e-6f,
                   1e-6f);
    }
}

static void check_schedule_and_mixing(void)
{
    enum { N = 5, PER = 7 };
    const float t[N] = {0.0f, 1.0f, 0.5f, 0.25f, 0.9f};
    float nr[N], sr[N], want_s[N], want_n[N], one[N], sum2[N];
    be->diffusion_schedule(be, nr, sr, t, N, 0.02f, 0.95f);
    for (int i = 0; i < N; i++) {
        double a0 = acos((double)0.95f), a1 = acos((double)0.02f);
        double a = a0 + t[i] * (a1 - a0);
        want_s[i] = (float)cos(a), want_n[i] = (float)sin(a);
        one[i] = 1.0f, sum2[i] = nr[i] * nr[i] + sr[i] * sr[i];
    }
    test_close("schedule t=0 signal rate 0.95", &sr[0], (float[]){0.95f}, 1, 1e-6f, 0.0f);
    test_close("schedule t=1 signal rate 0.02", &sr[1], (float[]){0.02f}, 1, 1e-6f, 0.0f);
    test_close("schedule signal rates vs double", sr, want_s, N, 1e-6f, 0.0f);
    test_close("schedule noise rates vs double", nr, want_n, N, 1e-6f, 0.0f);
    test_close("schedule noise^2 + signal^2 = 1", sum2, one, N, 1e-6f, 0.0f);

    /* mixing images with noises and pred_images invert each other */
    float img[N * PER], noise[N * PER], noisy[N * PER], back[N * PER], want[N * PER];
    test_fill_uniform(img, N * PER, -1.0f, 1.0f);
    test_fill_normal(noise, N * PER, 1.0f);
    be->mix(be, noisy, sr, img, nr, noise, N, PER);
    for (int i = 0; i < N * PER; i++)
        want[i] = (float)((double)sr[i / PER] * img[i] + (double)nr[i / PER] * noise[i]);
    test_close("mix = signal*images + noise*noises", noisy, want, N * PER, 1e-6f, 1e-6f);
    be->pred_images(be, back, noisy, noise, nr, sr, N, PER);
    /* dividing by signal rate 0.02 amplifies the rounding of noisy (~1e-7) 50-fold */
    test_close("pred_images inverts mix", back, img, N * PER, 1e-5f, 1e-5f);
}

static void check_normalization_and_losses(void)
{
    enum { ROWS = 40, C = 3, N = ROWS * C };
    const float mean[C] = {0.4f, 0.5f, 0.6f}, var[C] = {0.04f, 0.09f, 0.01f};
    float x[N], y[N], back[N], want[N];
    test_fill_uniform(x, N, 0.0f, 1.0f);
    be->normalize(be, y, x, mean, var, ROWS, C);
    for (int i = 0; i < N; i++)
        want[i] = (float)(((double)x[i] - mean[i % C]) / sqrt((double)var[i % C]));
    test_close("normalize vs double", y, want, N, 1e-6f, 1e-5f);
    be->denormalize(be, back, y, mean, var, ROWS, C);
    test_close("denormalize(normalize(x)) = x in [0,1]", back, x, N, 2e-7f, 1e-6f);
    /* values from outside [0, 1] come back clipped, exactly 0 or 1 */
    test_fill_uniform(x, N, -0.6f, 1.6f);
    be->normalize(be, y, x, mean, var, ROWS, C);
    be->denormalize(be, back, y, mean, var, ROWS, C);
    for (int i = 0; i < N; i++)
        want[i] = x[i] < 0 ? 0.0f : x[i] > 1 ? 1.0f : x[i];
    test_close("denormalize clips to [0,1]", back, want, N, 2e-7f, 1e-6f);
    /* Keras Normalization: a zero variance divides by epsilon 1e-7, not by 0 */
    const float zm[C] = {0, 0, 0}, zv[C] = {0, 1, 0}, zx[C] = {1e-8f, 2.0f, -3e-7f};
    const float zw[C] = {0.1f, 2.0f, -3.0f};
    float zy[C];
    be->normalize(be, zy, zx, zm, zv, 1, C);
    test_close("normalize with zero variance uses 1e-7", zy, zw, C, 0.0f, 1e-5f);

    float out[2], want2[2];
    double mae = 0, mse = 0;
    test_fill_normal(x, N, 1.0f);
    test_fill_normal(y, N, 1.0f);
    for (int i = 0; i < N; i++) {
        mae += fabs((double)x[i] - y[i]);
        mse += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    }
    be->loss_value(be, &out[0], x, y, N, LOSS_MAE);
    be->loss_value(be, &out[1], x, y, N, LOSS_MSE);
    want2[0] = (float)(mae / N), want2[1] = (float)(mse / N);
    test_close("loss_value [MAE, MSE] vs double", out, want2, 2, 0.0f, 1e-6f);
    be->square(be, back, x, N);
    for (int i = 0; i < N; i++)
        want[i] = x[i] * x[i];
    test_close("square", back, want, N, 0.0f, 0.0f);
}

/* --- the resident training set ------------------------------------------------------- */

/* gather_images: rows picked by index (repeats and any order), every uint8 value u to the
 * correctly rounded float32 u / 255 (0 and 255 to exactly 0 and 1), written over garbage,
 * nothing written past n rows. */
static void check_gather_images(void)
{
    enum { COUNT = 3, PER = 256, N = 5 };
    uint8_t images[COUNT * PER];
    for (int u = 0; u < PER; u++) {
        images[u] = (uint8_t)u;                 /* image 0: every value */
        images[PER + u] = (uint8_t)(255 - u);   /* image 1: reversed */
        images[2 * PER + u] = (uint8_t)(u % 2); /* image 2: 0 and 1 */
    }
    const int32_t idx[N] = {1, 0, 2, 0, 1};
    float *out = filled((N + 1) * PER, NAN), *want = test_alloc_zeros(N * PER);
    out[N * PER] = 1e30f; /* a row past n: must stay */
    be->gather_images(be, out, images, idx, NULL, N, PER);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < PER; j++)
            want[i * PER + j] = (float)((double)images[idx[i] * PER + j] / 255.0);
    test_close("gather_images = u/255 correctly rounded", out, want, N * PER, 0.0f, 0.0f);
    for (int i = 0; i < N; i++) /* io/dataset.c's host expression, bit for bit */
        for (int j = 0; j < PER; j++)
            want[i * PER + j] = (float)images[idx[i] * PER + j] / 255.0f;
    test_close("gather_images = dataset_read's u / 255.0f", out, want, N * PER, 0.0f, 0.0f);
    if (out[1 * PER + 0] != 0.0f || out[1 * PER + 255] != 1.0f || out[0] != 1.0f ||
        out[255] != 0.0f)
        test_fail("gather_images: 0 -> %g, 255 -> %g (want exactly 0 and 1)", out[PER],
                  out[PER + 255]);
    if (out[N * PER] != 1e30f)
        test_fail("gather_images wrote past its %d rows", N);
    /* from the index a counter holds: rows 2..4 of the gather above */
    const int32_t first = 2;
    float *part = filled(3 * PER, NAN);
    be->gather_images(be, part, images, idx, &first, 3, PER);
    test_close("gather_images from a counter's index", part, out + 2 * PER, 3 * PER, 0.0f, 0.0f);
    free(out), free(want), free(part);
}

/* counters_add advances each counter by its step; copy_to_slot writes the slot a counter
 * names and nothing else */
static void check_counters(void)
{
    int32_t c[3] = {7, 40, 1};
    const int32_t by[3] = {1, 8, 1};
    float hist[8] = {-1, -1, -1, -1, -1, -1, -1, -1}, src[2] = {0.25f, 3.5f};
    for (int i = 0; i < 2; i++) {
        be->copy_to_slot(be, hist, c + 2, src, 2);
        be->counters_add(be, c, by, 3);
    }
    const float want[8] = {-1, -1, 0.25f, 3.5f, 0.25f, 3.5f, -1, -1};
    test_close("copy_to_slot at slots 1 and 2", hist, want, 8, 0.0f, 0.0f);
    if (c[0] != 9 || c[1] != 56 || c[2] != 3)
        test_fail("counters_add: {%d, %d, %d}, want {9, 56, 3}", c[0], c[1], c[2]);
}

int main(void)
{
    be = cpu_backend_create();
    test_seed(99);

    check_conv_contract(2, 5, 7, 3, 4, 3);
    check_conv_contract(2, 5, 7, 3, 4, 1);
    struct conv_shape epi3 = {.n = 2, .h = 5, .w = 7, .cin = 3, .cout = 4, .k = 3};
    struct conv_shape epi1 = {.n = 3, .h = 6, .w = 4, .cin = 5, .cout = 6, .k = 1};
    test_conv_epilogue(be, &epi3);
    test_conv_epilogue(be, &epi1);
    check_conv_contract(3, 40, 56, 2, 3, 3); /* several im2col chunks */
    check_simple_contracts();

    check_upsample_known();
    check_avgpool_known();
    check_embedding();
    check_bn_known();
    check_adamw();
    check_ema();
    check_schedule_and_mixing();
    check_normalization_and_losses();
    check_gather_images();
    check_counters();

    be->destroy(be);
    return test_finish("test_op_semantics");
}
