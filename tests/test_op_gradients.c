/* test_op_gradients.c: finite-difference gradient checks of every differentiable op of the
 * CPU backend (conv2d, BatchNorm in training mode, swish, add/axpy/scale, concat, avgpool2,
 * upsample2, the losses).
 *
 * Method: for an op y = f(x) and a fixed random r, L(x) = sum_k r_k * y_k (accumulated in
 * double from the float32 outputs). The op's backward, fed dy = r, must give dL/dx. We
 * compare it element by element with the central difference (L(x+h e_i) - L(x-h e_i)) /
 * (x_i+h - (x_i-h)), where h = eps * max(1, |x_i|) and the denominator is the difference
 * of the two perturbed float32 inputs actually used (not 2h), so input rounding does not
 * count as error.
 *
 * Tolerances: |analytic - fd| <= atol + rtol*|fd|. For the linear ops the central
 * difference has no truncation error at all; what remains is float32 rounding of the
 * outputs the perturbation touches, ~6e-8*|y| each, divided by 2h ~ 2e-2: about 1e-5
 * relative to a gradient of size 1, so rtol 1e-3 leaves a wide margin while a wrong tap,
 * a missed border or a wrong weight (errors of the size of the gradient itself) fail.
 * For swish (smooth, no kink) the truncation error h^2/6 * f''' stays ~1e-5 for h = 1e-2,
 * hence the same tolerance; BatchNorm needs its own h and tolerance (see check_bn). The
 * losses compare against loss_value itself (see check_loss). Every gradient element
 * is compared, except for the one large convolution input, where a random subset of 500
 * of its 13440 elements is (each label says how many of how many). */
#include "backend.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct backend *be;

typedef double (*loss_fn)(void *ctx); /* runs the forward, returns L = sum r*y */

static double dot_r(const float *r, const float *y, size_t n)
{
    double acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += (double)r[i] * (double)y[i];
    return acc;
}

static float *uniform(size_t n, float lo, float hi)
{
    float *p = test_alloc_zeros(n);
    test_fill_uniform(p, n, lo, hi);
    return p;
}

/* Compares the analytic gradient g (n) of L with respect to x (n) against central
 * differences, on every element when n <= max_checks, else on max_checks distinct random
 * elements. x is restored exactly. */
static void fd_check(const char *name, float *x, const float *g, size_t n, loss_fn f, void *ctx,
                     float eps, float atol, float rtol, size_t max_checks)
{
    size_t m = n < max_checks ? n : max_checks;
    size_t *idx = malloc(n * sizeof *idx);
    float *got = test_alloc_zeros(m), *want = test_alloc_zeros(m);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t k = 0; k < m && m < n; k++) { /* partial Fisher-Yates: distinct indices */
        size_t j = k + (size_t)test_uniform(0.0f, (float)(n - k) - 0.5f);
        size_t t = idx[k];
        idx[k] = idx[j];
        idx[j] = t;
    }
    for (size_t k = 0; k < m; k++) {
        size_t i = idx[k];
        float x0 = x[i], h = eps * fmaxf(1.0f, fabsf(x0));
        float xp = x0 + h, xm = x0 - h;
        x[i] = xp;
        double lp = f(ctx);
        x[i] = xm;
        double lm = f(ctx);
        x[i] = x0;
        want[k] = (float)((lp - lm) / ((double)xp - (double)xm));
        got[k] = g[i];
    }
    char label[128];
    snprintf(label, sizeof label, "%s (%s%zu of %zu)", name, m == n ? "all " : "random ", m, n);
    test_close(label, got, want, m, atol, rtol);
    f(ctx); /* leave the op's buffers as at x */
    free(idx);
    free(got);
    free(want);
}

/* --- conv2d --------------------------------------------------------------------------- */

struct conv_case {
    struct conv_shape s;
    float *x, *w, *b, *y, *r;
};

static double conv_loss(void *p)
{
    struct conv_case *c = p;
    be->conv2d_forward(be, c->y, c->x, c->w, c->b, &c->s, NULL);
    return dot_r(c->r, c->y, (size_t)c->s.n * c->s.h * c->s.w * c->s.cout);
}

static void check_conv(int n, int h, int w, int cin, int cout, int k, size_t max_x)
{
    struct conv_case c = {.s = {.n = n, .h = h, .w = w, .cin = cin, .cout = cout, .k = k}};
    size_t nx = (size_t)n * h * w * cin, ny = (size_t)n * h * w * cout;
    size_t nw = (size_t)k * k * cin * cout;
    c.x = test_alloc_normal(nx, 1.0f);
    c.w = test_alloc_normal(nw, 0.5f);
    c.b = test_alloc_normal((size_t)cout, 0.5f);
    c.y = test_alloc_zeros(ny);
    c.r = test_alloc_normal(ny, 1.0f);
    float *dx = test_alloc_zeros(nx), *dw = test_alloc_zeros(nw),
          *db = test_alloc_zeros((size_t)cout);
    be->conv2d_backward(be, dx, dw, db, c.r, c.x, c.w, &c.s, GRAD_WRITE);
    char name[96];
    snprintf(name, sizeof name, "conv%dx%d n%d %dx%d %d->%d", k, k, n, h, w, cin, cout);
    char label[128];
    /* dw and dbias sum over all rows*cout outputs, so their rounding noise grows like
     * sqrt(rows): atol 1e-3 on gradients of size ~sqrt(rows) */
    snprintf(label, sizeof label, "%s dx", name);
    fd_check(label, c.x, dx, nx, conv_loss, &c, 1e-2f, 1e-4f, 1e-3f, max_x);
    snprintf(label, sizeof label, "%s dw", name);
    fd_check(label, c.w, dw, nw, conv_loss, &c, 1e-2f, 1e-3f, 1e-3f, nw);
    snprintf(label, sizeof label, "%s dbias", name);
    fd_check(label, c.b, db, (size_t)cout, conv_loss, &c, 1e-2f, 1e-3f, 1e-3f, (size_t)cout);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.r), free(dx), free(dw), free(db);
}

/* --- BatchNorm, training mode --------------------------------------------------------- */

struct bn_case {
    size_t rows;
    int c;
    float *x, *y, *r, *stats, *saved, *mm, *mv;
};

static double bn_loss(void *p)
{
    struct bn_case *b = p;
    be->bn_stats(be, b->stats, b->x, b->rows, b->c);
    be->bn_forward_train(be, b->y, b->saved, b->mm, b->mv, b->x, b->stats, (double)b->rows, b->rows,
                         b->c, 0.99f, 1e-3f);
    return dot_r(b->r, b->y, b->rows * b->c);
}

/* dx flows through the batch mean and variance: perturbing one x moves every output of its
 * channel, which is what the two-term correction in bn_backward_apply accounts for. */
static void check_bn(size_t rows, int c)
{
    struct bn_case b = {rows, c, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t n = rows * c;
    b.x = test_alloc_zeros(n);
    for (size_t i = 0; i < rows; i++)
        for (int j = 0; j < c; j++) /* channel means -1.5.., scales 0.5..2 */
            b.x[i * c + j] = (-1.5f + 0.9f * j) + (0.5f + 0.5f * j) * test_normal();
    b.y = test_alloc_zeros(n);
    b.r = test_alloc_normal(n, 1.0f);
    b.stats = test_alloc_zeros(2 * (size_t)c);
    b.saved = test_alloc_zeros(2 * (size_t)c);
    b.mm = test_alloc_zeros((size_t)c);
    b.mv = test_alloc_zeros((size_t)c);
    float *bstats = test_alloc_zeros(2 * (size_t)c), *dx = test_alloc_zeros(n);
    bn_loss(&b);
    be->bn_backward_stats(be, bstats, b.r, b.x, b.saved, rows, c);
    be->bn_backward_apply(be, dx, b.r, b.x, b.saved, bstats, (double)rows, rows, c, GRAD_WRITE);
    char label[96];
    snprintf(label, sizeof label, "bn train rows%zu c%d dx", rows, c);
    /* Two error sources pull h in opposite directions here. The per-channel sums are
     * float32 (the interface all-reduces them as floats), so sum x^2 ~ 75 carries ~4e-6 of
     * rounding that moves the variance of a whole channel: ~1e-6 in L, i.e. ~1e-4 over
     * 2h = 1e-2. Truncation through 1/sqrt(var) grows like h^2/sigma^3 (sigma >= 0.5) and
     * reaches ~4e-4 at h = 1e-2 with 7 rows. h = 5e-3 keeps both near 2e-4, well under
     * atol 5e-4 + rtol 2e-3 on gradients of size ~1; a wrong count, a missing mean or
     * variance term changes them by >= 1e-2. */
    fd_check(label, b.x, dx, n, bn_loss, &b, 5e-3f, 5e-4f, 2e-3f, n);
    free(b.x), free(b.y), free(b.r), free(b.stats), free(b.saved), free(b.mm), free(b.mv);
    free(bstats), free(dx);
}

/* --- elementwise ---------------------------------------------------------------------- */

struct ew_case {
    size_t n;
    float alpha;
    float *a, *b, *y, *r;
};

static double swish_loss(void *p)
{
    struct ew_case *e = p;
    be->swish_forward(be, e->y, e->a, e->n);
    return dot_r(e->r, e->y, e->n);
}

static double add_loss(void *p)
{
    struct ew_case *e = p;
    be->add(be, e->y, e->a, e->b, e->n);
    return dot_r(e->r, e->y, e->n);
}

static double axpy_loss(void *p) /* y = b + alpha*a, in place on a copy of b */
{
    struct ew_case *e = p;
    memcpy(e->y, e->b, e->n * sizeof(float));
    be->axpy(be, e->y, e->alpha, e->a, e->n);
    return dot_r(e->r, e->y, e->n);
}

static double scale_loss(void *p) /* y = alpha*a, in place on a copy of a */
{
    struct ew_case *e = p;
    memcpy(e->y, e->a, e->n * sizeof(float));
    be->scale(be, e->y, e->alpha, e->n);
    return dot_r(e->r, e->y, e->n);
}

static void check_elementwise(void)
{
    struct ew_case e = {101, -0.7f, NULL, NULL, NULL, NULL};
    /* swish is smooth (no kink); [-5, 5] covers both tails and the curved middle */
    e.a = uniform(e.n, -5.0f, 5.0f);
    e.b = test_alloc_normal(e.n, 1.0f);
    e.y = test_alloc_zeros(e.n);
    e.r = test_alloc_normal(e.n, 1.0f);
    float *da = test_alloc_zeros(e.n), *db = test_alloc_zeros(e.n);
    be->swish_backward(be, da, e.r, e.a, e.n, GRAD_WRITE);
    fd_check("swish dx", e.a, da, e.n, swish_loss, &e, 1e-2f, 1e-4f, 1e-3f, e.n);

    /* add's backward writes dy to both inputs' gradients */
    be->add_backward(be, da, db, e.r, e.n, GRAD_WRITE, GRAD_WRITE);
    fd_check("add da", e.a, da, e.n, add_loss, &e, 1e-2f, 1e-4f, 1e-3f, e.n);
    fd_check("add db", e.b, db, e.n, add_loss, &e, 1e-2f, 1e-4f, 1e-3f, e.n);

    /* y = b + alpha*a: dL/da = alpha*r (axpy again), dL/db = r */
    memset(da, 0, e.n * sizeof(float));
    be->axpy(be, da, e.alpha, e.r, e.n);
    fd_check("axpy dx", e.a, da, e.n, axpy_loss, &e, 1e-2f, 1e-4f, 1e-3f, e.n);
    fd_check("axpy dy_in", e.b, e.r, e.n, axpy_loss, &e, 1e-2f, 1e-4f, 1e-3f, e.n);

    /* y = alpha*x: dL/dx = alpha*r (scale of a copy of r) */
    memcpy(da, e.r, e.n * sizeof(float));
    be->scale(be, da, e.alpha, e.n);
    fd_check("scale dx", e.a, da, e.n, scale_loss, &e, 1e-2f, 1e-4f, 1e-3f, e.n);
    free(e.a), free(e.b), free(e.y), free(e.r), free(da), free(db);
}

/* --- concat --------------------------------------------------------------------------- */

struct cat_case {
    size_t rows;
    int ca, cb;
    float *a, *b, *y, *r;
};

static double concat_loss(void *p)
{
    struct cat_case *c = p;
    be->concat_forward(be, c->y, c->a, c->b, c->rows, c->ca, c->cb);
    return dot_r(c->r, c->y, c->rows * (c->ca + c->cb));
}

static void check_concat(void)
{
    struct cat_case c = {14, 3, 5, NULL, NULL, NULL, NULL};
    size_t na = c.rows * c.ca, nb = c.rows * c.cb, ny = na + nb;
    c.a = test_alloc_normal(na, 1.0f);
    c.b = test_alloc_normal(nb, 1.0f);
    c.y = test_alloc_zeros(ny);
    c.r = test_alloc_normal(ny, 1.0f);
    float *da = test_alloc_zeros(na), *db = test_alloc_zeros(nb);
    be->concat_backward(be, da, db, c.r, c.rows, c.ca, c.cb, GRAD_WRITE, GRAD_WRITE);
    fd_check("concat da", c.a, da, na, concat_loss, &c, 1e-2f, 1e-4f, 1e-3f, na);
    fd_check("concat db", c.b, db, nb, concat_loss, &c, 1e-2f, 1e-4f, 1e-3f, nb);
    free(c.a), free(c.b), free(c.y), free(c.r), free(da), free(db);
}

/* --- avgpool2 and upsample2 ----------------------------------------------------------- */

struct rs_case {
    int n, h, w, c, up; /* input size; up: upsample2, else avgpool2 */
    float *x, *y, *r;
};

static size_t rs_out(const struct rs_case *s)
{
    size_t in = (size_t)s->n * s->h * s->w * s->c;
    return s->up ? in * 4 : in / 4;
}

static double resample_loss(void *p)
{
    struct rs_case *s = p;
    if (s->up)
        be->upsample2_forward(be, s->y, s->x, s->n, s->h, s->w, s->c);
    else
        be->avgpool2_forward(be, s->y, s->x, s->n, s->h, s->w, s->c);
    return dot_r(s->r, s->y, rs_out(s));
}

static void check_resample(int up, int n, int h, int w, int c)
{
    struct rs_case s = {n, h, w, c, up, NULL, NULL, NULL};
    size_t nx = (size_t)n * h * w * c, ny = rs_out(&s);
    s.x = test_alloc_normal(nx, 1.0f);
    s.y = test_alloc_zeros(ny);
    s.r = test_alloc_normal(ny, 1.0f);
    float *dx = test_alloc_zeros(nx);
    if (up)
        be->upsample2_backward(be, dx, s.r, n, h, w, c, GRAD_WRITE);
    else
        be->avgpool2_backward(be, dx, s.r, n, h, w, c, GRAD_WRITE);
    char label[96];
    snprintf(label, sizeof label, "%s n%d %dx%d c%d dx", up ? "upsample2" : "avgpool2", n, h, w, c);
    fd_check(label, s.x, dx, nx, resample_loss, &s, 1e-2f, 1e-4f, 1e-3f, nx);
    free(s.x), free(s.y), free(s.r), free(dx);
}

/* --- losses --------------------------------------------------------------------------- */

struct loss_case {
    size_t n;
    enum loss_kind kind;
    float *pred, *target, *out;
};

static double loss_loss(void *p)
{
    struct loss_case *l = p;
    be->loss_value(be, l->out, l->pred, l->target, l->n, l->kind);
    return (double)l->out[0];
}

/* L = loss_value (the mean), so loss_backward with scale 1/n must give dL/dpred. The loss
 * value is rounded to float32 (~3e-8 at L ~ 0.6): over 2h = 2e-2 that is ~3e-6 against
 * gradients of 1/n = 0.016, hence atol 2e-5. For MAE every |pred - target| is kept in
 * [0.2, 1.2], far from the kink at 0 compared to h. */
static void check_loss(enum loss_kind kind)
{
    struct loss_case l = {61, kind, NULL, NULL, NULL};
    l.target = test_alloc_normal(l.n, 1.0f);
    l.pred = test_alloc_zeros(l.n);
    for (size_t i = 0; i < l.n; i++) {
        float d = test_uniform(0.2f, 1.2f);
        l.pred[i] = l.target[i] + (i % 3 == 0 ? -d : d);
    }
    float out = 0;
    l.out = &out;
    float *dpred = test_alloc_zeros(l.n);
    be->loss_backward(be, dpred, l.pred, l.target, l.n, 1.0f / (float)l.n, kind);
    fd_check(kind == LOSS_MAE ? "loss MAE dpred" : "loss MSE dpred", l.pred, dpred, l.n, loss_loss,
             &l, 1e-2f, 2e-5f, 1e-3f, l.n);
    free(l.target), free(l.pred), free(dpred);
}

int main(void)
{
    be = cpu_backend_create();
    test_seed(1234);

    check_conv(2, 5, 7, 3, 4, 3, 100000); /* non-square, cin != cout, n >= 2 */
    check_conv(2, 5, 7, 3, 4, 1, 100000);
    check_conv(2, 1, 6, 2, 3, 3, 100000); /* one row: every vertical tap is padding */
    check_conv(3, 6, 4, 4, 2, 3, 100000);
    /* even kernels pad 'same' unevenly (one less before than after): the data gradient's
     * turned convolution pads the other way round */
    check_conv(2, 5, 6, 3, 2, 2, 100000);
    check_conv(1, 6, 5, 2, 3, 4, 100000);
    check_conv(1, 6, 6, 2, 2, 5, 100000);
    /* a larger image, as the network's, and batch 3 */
    check_conv(3, 40, 56, 2, 3, 3, 500);

    check_bn(30, 4);
    check_bn(7, 3); /* few rows: the batch-statistics terms dominate */

    check_elementwise();
    check_concat();

    check_resample(0, 2, 4, 6, 3);
    check_resample(0, 1, 2, 2, 1);
    check_resample(1, 2, 3, 3, 2);
    check_resample(1, 2, 3, 5, 2); /* non-square */
    check_resample(1, 1, 1, 4, 3); /* a single row: clamped vertical taps */
    check_resample(1, 2, 2, 1, 2);

    check_loss(LOSS_MAE);
    check_loss(LOSS_MSE);

    be->destroy(be);
    return test_finish("test_op_gradients");
}
