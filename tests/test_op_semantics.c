/* test_op_semantics.c: what the CPU ops promise besides their gradients.
 *
 * (a) Write/accumulate contracts of backend.h: every backward op, in both of its grad_mode
 *     modes, for each activation gradient it stores: GRAD_ADD from random R gives R + (its
 *     result from zero), GRAD_WRITE over garbage (NaN, 1e30) gives exactly the bits of
 *     GRAD_ADD onto zeros (0 + value); every written (=) output (parameter gradients,
 *     statistics, forward outputs) must not depend on garbage already in the buffer; NULL
 *     dx/da/db are accepted where backend.h says so.
 * (b) Known values: test_op_values.c (one program with this file). The random streams are
 *     in test_rng.c. */
#include "test_op_semantics.h"

#include "backend.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct backend *be;

float *filled(size_t n, float v)
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

    test_op_values();

    be->destroy(be);
    return test_finish("test_op_semantics");
}
