/* test_unet_gradients.c: the whole U-Net's backward against finite differences, and the
 * configuration checks.
 *
 * Tiny networks in TRAINING mode (BatchNorm on batch statistics), random nonzero weights
 * everywhere (the head's kernel included, unlike Keras's zero init, so that every path
 * carries gradient), random images, variances and r; L = sum(r * pred) in double.
 * unet_backward(dpred = r) must give dL/dw for every trainable parameter. Each training
 * forward also updates the BN moving statistics inside w: harmless for the output, but the
 * pristine w is restored before every evaluation so that all evaluations see the same w.
 *
 * Finite differences: Richardson-extrapolated central differences, (4 D(h) - D(2h)) / 3,
 * which cancels the h^2 truncation term (the network is smooth: swish, BN, bilinear), so h
 * can be large enough (1e-2 * max(1, |w|)) that float32 rounding of the forward, ~1e-6 of
 * L, stays ~1e-3 in the difference quotient (gradients here are ~1..30). Tolerance per
 * element: atol + rtol*|fd| with atol = 2e-3 * (RMS of the analytic gradient over all
 * parameters) and rtol 2e-3, plus a relative L2 error <= 5e-4 over all of dw; measured
 * over six seeds: max|diff| <= 3.5e-3 against atol >= 1.3e-2, rel-L2 <= 1.1e-4. A wrong
 * term in a backward op is of the size of the gradient itself; even a 0.3% scale error
 * in one op fails. Every trainable element is compared (the networks are small), and dw
 * is pre-filled with NaN so that an element the backward never writes fails. */
#include "comm.h"
#include "config.h"
#include "test_util.h"
#include "unet.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct backend *be;
static struct comm *comm;

/* The CPU backend's convolution, counting the calls that carry an epilogue (fusion at work) */
static void (*plain_conv)(struct backend *, float *, const float *, const float *, const float *,
                          const struct conv_shape *, const struct conv_epilogue *);
static long fused_convs;

static void counting_conv(struct backend *b, float *y, const float *x, const float *w,
                          const float *bias, const struct conv_shape *s,
                          const struct conv_epilogue *epi)
{
    fused_convs += epi != NULL;
    plain_conv(b, y, x, w, bias, s, epi);
}

struct model_case {
    struct unet *net;
    struct unet_acts *acts;
    const struct param_table *pt;
    int batch, s;
    float *w0; /* (total) pristine weights */
    float *w;  /* (total) the copy each forward runs (and updates) */
    float *noisy, *variances, *pred, *r;
};

static double model_loss(struct model_case *m)
{
    memcpy(m->w, m->w0, m->pt->total * sizeof(float));
    unet_forward(be, m->net, m->acts, m->w, m->noisy, m->variances, 1, comm, m->pred);
    size_t n = (size_t)m->batch * m->s * m->s * 3;
    double acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += (double)m->r[i] * (double)m->pred[i];
    return acc;
}

static double central(struct model_case *m, size_t i, float h)
{
    float x0 = m->w0[i], xp = x0 + h, xm = x0 - h;
    m->w0[i] = xp;
    double lp = model_loss(m);
    m->w0[i] = xm;
    double lm = model_loss(m);
    m->w0[i] = x0;
    return (lp - lm) / ((double)xp - (double)xm);
}

/* Random weights of roughly unit-variance activations: kernels N(0, 1/fan_in), biases
 * N(0, 0.3^2), moving statistics arbitrary (training mode ignores them). */
static void random_weights(const struct param_table *pt, float *w)
{
    for (int i = 0; i < pt->count; i++) {
        const struct param *p = &pt->items[i];
        float sd = 0.3f;
        if (p->kind == PARAM_KERNEL)
            sd = 1.0f / sqrtf((float)(p->shape[0] * p->shape[1] * p->shape[2]));
        test_fill_normal(w + p->offset, p->count, sd);
        if (p->kind == PARAM_MOVING_VARIANCE)
            for (size_t j = 0; j < p->count; j++)
                w[p->offset + j] = 1.0f + fabsf(w[p->offset + j]);
    }
}

static void check_model(const char *label, struct unet_config cfg, int batch)
{
    char err[256] = "";
    struct model_case m = {0};
    m.net = unet_create(&cfg, err, sizeof err);
    if (!m.net) {
        test_fail("%s: unet_create failed: %s", label, err);
        return;
    }
    m.pt = unet_params(m.net);
    m.batch = batch;
    m.s = cfg.image_size;
    size_t npix = (size_t)batch * m.s * m.s * 3, nt = m.pt->trainable;
    m.acts = unet_acts_create(be, m.net, batch, 1);
    m.w0 = calloc(m.pt->total, sizeof(float));
    m.w = calloc(m.pt->total, sizeof(float));
    m.noisy = test_alloc_normal(npix, 1.0f);
    m.variances = calloc((size_t)batch, sizeof(float));
    test_fill_uniform(m.variances, (size_t)batch, 0.05f, 0.95f);
    m.pred = calloc(npix, sizeof(float));
    m.r = test_alloc_normal(npix, 1.0f);
    random_weights(m.pt, m.w0);

    /* analytic: one training forward from the pristine weights, then backward into a
     * NaN-filled dw, twice (the second over the first's values: dw is written, not added) */
    float *dw = malloc(nt * sizeof(float)), *dw2 = malloc(nt * sizeof(float));
    for (size_t i = 0; i < nt; i++)
        dw[i] = NAN;
    model_loss(&m);
    /* a training forward updates the moving statistics and nothing else in w */
    size_t moved = 0;
    for (size_t i = nt; i < m.pt->total; i++)
        moved += m.w[i] != m.w0[i];
    if (memcmp(m.w, m.w0, nt * sizeof(float)) != 0 || moved == 0)
        test_fail("%s: a training forward changed trainable weights, or left all %zu moving "
                  "statistics unchanged (%zu changed)",
                  label, m.pt->total - nt, moved);
    unet_backward(be, m.net, m.acts, m.w, dw, m.r, comm, NULL);
    memcpy(dw2, dw, nt * sizeof(float));
    model_loss(&m);
    unet_backward(be, m.net, m.acts, m.w, dw2, m.r, comm, NULL);
    char name[160];
    snprintf(name, sizeof name, "%s: dw written (=), not accumulated", label);
    test_close(name, dw2, dw, nt, 0.0f, 0.0f);
    /* fusion off (every node apart): the same prediction and gradients, bit for bit */
    size_t npred = (size_t)batch * m.s * m.s * 3;
    float *pred_fused = malloc(npred * sizeof(float));
    memcpy(pred_fused, m.pred, npred * sizeof(float));
    long fused_before = fused_convs;
    unet_set_fusion(m.net, 0);
    model_loss(&m);
    unet_backward(be, m.net, m.acts, m.w, dw2, m.r, comm, NULL);
    unet_set_fusion(m.net, 1);
    if (fused_convs != fused_before || fused_before == 0)
        test_fail("%s: %ld convolutions ran with an epilogue fused, %ld apart (want > 0, 0)", label,
                  fused_before, fused_convs - fused_before);
    snprintf(name, sizeof name, "%s: prediction fused = apart", label);
    test_close(name, m.pred, pred_fused, npred, 0.0f, 0.0f);
    snprintf(name, sizeof name, "%s: dw fused = apart", label);
    test_close(name, dw2, dw, nt, 0.0f, 0.0f);
    free(pred_fused);

    double rms = 0;
    for (size_t i = 0; i < nt; i++)
        rms += (double)dw[i] * dw[i];
    rms = sqrt(rms / (double)nt);
    float atol = (float)(2e-3 * rms), rtol = 2e-3f;

    /* every trainable parameter tensor, every element */
    float *fd = malloc(nt * sizeof(float));
    size_t compared = 0;
    for (int pi = 0; pi < m.pt->count; pi++) {
        const struct param *p = &m.pt->items[pi];
        if (p->kind != PARAM_KERNEL && p->kind != PARAM_BIAS)
            continue;
        for (size_t j = 0; j < p->count; j++) {
            size_t i = p->offset + j;
            float h = 1e-2f * fmaxf(1.0f, fabsf(m.w0[i]));
            double d1 = central(&m, i, h), d2 = central(&m, i, 2 * h);
            fd[i] = (float)((4 * d1 - d2) / 3);
        }
        snprintf(name, sizeof name, "%s %s", label, p->name);
        test_close(name, dw + p->offset, fd + p->offset, p->count, atol, rtol);
        compared += p->count;
    }
    if (compared != nt)
        test_fail("%s: compared %zu of %zu trainable floats", label, compared, nt);
    else
        printf("ok   %s: all %zu trainable floats compared (gradient RMS %.3g, atol %.3g)\n", label,
               nt, rms, atol);
    /* the parameter table puts every trainable weight first */
    test_rel_l2(label, dw, fd, nt, 5e-4);

    unet_acts_destroy(be, m.acts);
    unet_destroy(m.net);
    free(m.w0), free(m.w), free(m.noisy), free(m.variances), free(m.pred), free(m.r);
    free(dw), free(dw2), free(fd);
}

/* --- configuration checks ------------------------------------------------------------- */

static struct unet_config tiny_config(void)
{
    struct unet_config c = config_default_model();
    c.image_size = 8;
    c.num_levels = 2;
    c.widths[0] = 4;
    c.widths[1] = 6;
    c.block_depth = 1;
    c.embedding_dims = 4;
    return c;
}

/* Both config_check_model and unet_create must refuse, with a message that names `field`
 * (or `alt`, when the check speaks of the YAML key rather than the struct field). */
static void expect_rejected(const char *what, struct unet_config c, const char *field,
                            const char *alt)
{
    char err[256] = "", err2[256] = "";
    int rc = config_check_model(&c, err, sizeof err);
    struct unet *net = unet_create(&c, err2, sizeof err2);
    int named = strstr(err, field) || (alt && strstr(err, alt));
    if (rc != -1 || !err[0] || !named)
        test_fail("config %s: config_check_model returned %d with message '%s' (want -1 and a "
                  "message naming %s)",
                  what, rc, err, field);
    else if (net || !err2[0] || strcmp(err, err2) != 0)
        test_fail("config %s: unet_create returned %p with message '%s'", what, (void *)net, err2);
    else
        printf("ok   config %-28s rejected: %s\n", what, err);
    unet_destroy(net);
    /* no message buffer, or a tiny one: still rejected, nothing written past its end */
    char small[8];
    memset(small, 'x', sizeof small);
    if (config_check_model(&c, NULL, 0) != -1 || unet_create(&c, NULL, 0) != NULL ||
        config_check_model(&c, small, 4) != -1 || small[3] != '\0' || small[4] != 'x')
        test_fail("config %s: not rejected cleanly without a full-size message buffer", what);
}

static void check_configs(void)
{
    char err[256] = "";
    struct unet_config ok = tiny_config();
    if (config_check_model(&ok, err, sizeof err) != 0)
        test_fail("tiny config rejected: %s", err);
    struct unet_config def = config_default_model();
    if (config_check_model(&def, err, sizeof err) != 0)
        test_fail("default config rejected: %s", err);

    struct unet_config c = tiny_config();
    c.image_size = 12, c.num_levels = 4, c.widths[2] = 8, c.widths[3] = 8; /* 12 % 8 */
    expect_rejected("image 12, 4 levels", c, "image_size", NULL);
    c = tiny_config();
    c.image_size = 6, c.num_levels = 3, c.widths[2] = 8; /* 6 % 4 */
    expect_rejected("image 6, 3 levels", c, "image_size", NULL);
    c = tiny_config();
    c.image_size = 0;
    expect_rejected("image 0", c, "image_size", NULL);
    c = tiny_config();
    c.image_size = -8;
    expect_rejected("image -8", c, "image_size", NULL);
    c = tiny_config();
    c.widths[1] = 0;
    expect_rejected("width 0", c, "widths", NULL);
    c = tiny_config();
    c.widths[0] = -4;
    expect_rejected("width -4", c, "widths", NULL);
    c = tiny_config();
    c.num_levels = 1;
    expect_rejected("one level", c, "num_levels", "widths");
    c = tiny_config();
    c.num_levels = 0;
    expect_rejected("zero levels", c, "num_levels", "widths");
    c = tiny_config();
    c.num_levels = UNET_MAX_LEVELS + 1;
    expect_rejected("too many levels", c, "num_levels", "widths");
    c = tiny_config();
    c.embedding_dims = 5;
    expect_rejected("odd embedding dims", c, "embedding_dims", NULL);
    c = tiny_config();
    c.embedding_dims = 0;
    expect_rejected("zero embedding dims", c, "embedding_dims", NULL);
    c = tiny_config();
    c.block_depth = 0;
    expect_rejected("block depth 0", c, "block_depth", NULL);
    c = tiny_config();
    c.block_depth = -1;
    expect_rejected("block depth -1", c, "block_depth", NULL);
    c = tiny_config();
    c.bn_momentum = 1.0f;
    expect_rejected("bn momentum 1", c, "bn_momentum", NULL);
    c = tiny_config();
    c.bn_epsilon = 0.0f;
    expect_rejected("bn epsilon 0", c, "bn_epsilon", NULL);
    c = tiny_config();
    c.embedding_min_frequency = 0.0f;
    expect_rejected("embedding frequency 0", c, "frequenc", NULL);
}

int main(void)
{
    /* ~20000 forwards of a network of a few hundred pixels: OpenMP threads only add
     * synchronization (8x slower on a busy two-core machine); the ops' threading is
     * covered by the op tests */
    omp_set_num_threads(1);
    be = cpu_backend_create();
    plain_conv = be->conv2d_forward;
    be->conv2d_forward = counting_conv;
    comm = comm_single();
    test_seed(2024);

    check_configs();

    struct unet_config a = tiny_config(); /* image 8, widths {4, 6}, depth 1, embedding 4 */
    check_model("unet 8px {4,6} depth 1", a, 3);

    struct unet_config b = tiny_config();
    b.num_levels = 3, b.widths[0] = 3, b.widths[1] = 4, b.widths[2] = 5, b.block_depth = 2;
    check_model("unet 8px {3,4,5} depth 2", b, 3);

    comm->destroy(comm);
    be->destroy(be);
    return test_finish("test_unet_gradients");
}
