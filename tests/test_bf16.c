/* test_bf16.c: bfloat16 activations (backend.h's PRECISION_BF16) on the CPU backend, which
 * emulates them: the stored value is the float32 result rounded to bf16, to nearest even.
 *
 * (a) src/base/bf16.h's rounding against values worked out by hand: exact values, ties to
 *     even both ways, just above and below a tie, NaN (0x7fff, as CUDA), infinities,
 *     overflow to infinity, signed zeros, subnormals.
 * (b) Every op on activations, on bf16-valued inputs: its result at PRECISION_BF16 is its
 *     result at PRECISION_FP32 rounded to bf16, bit for bit, in both grad modes (GRAD_ADD:
 *     the sum rounded once, as a GPU's store rounds it).
 * (c) The convolution as cuDNN's bf16 path computes it: the conv of x with the kernel rounded
 *     to bf16, without bias, rounded; then the bias added and rounded; the epilogue's add and
 *     swish each rounded; backward: dx and dw rounded, dbias as in float32 (its sums are of
 *     the same bf16 dy).
 * (d) A whole U-Net training step (forward and backward) at bf16 leaves every activation
 *     and activation gradient of the arena bf16-valued: no op stores an unrounded value;
 *     and its predictions and gradients differ from float32's by about bf16's precision,
 *     not more (a tensor stored in the wrong place would differ by its size). The arena
 *     of a backend that stores 2-byte bf16 (the CUDA backend) is half of float32's.
 * (e) A network with inference-only nodes (their ops take float32 only) is refused in bf16. */
#include "bf16.h"
#include "comm.h"
#include "config.h"
#include "graph.h"
#include "inception.h"
#include "test_util.h"
#include "unet.h"
#include "unet_internal.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct backend *be;

/* --- (a) the rounding ------------------------------------------------------------------ */

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void test_rounding(void)
{
    static const struct {
        uint32_t in;
        uint16_t out;
        const char *what;
    } cases[] = {
        {0x3f800000u, 0x3f80u, "1.0 exactly"},
        {0x3f808000u, 0x3f80u, "1 + 2^-8: a tie, down to the even 1.0"},
        {0x3f818000u, 0x3f82u, "1 + 3*2^-8: a tie, up to the even 1 + 2^-6"},
        {0x3f808001u, 0x3f81u, "just above a tie: up"},
        {0x3f807fffu, 0x3f80u, "just below a tie: down"},
        {0xbf808001u, 0xbf81u, "negative, above a tie: away from zero"},
        {0x7fc00000u, 0x7fffu, "quiet NaN: CUDA's canonical NaN"},
        {0xff800001u, 0x7fffu, "signalling negative NaN: the canonical NaN"},
        {0x7f800000u, 0x7f80u, "+infinity"},
        {0xff800000u, 0xff80u, "-infinity"},
        {0x7f7fffffu, 0x7f80u, "largest float: rounds to infinity"},
        {0x7f7f7fffu, 0x7f7fu, "below bf16's largest + half an ulp: stays finite"},
        {0x80000000u, 0x8000u, "-0"},
        {0x00000001u, 0x0000u, "smallest subnormal float: to +0"},
        {0x00008000u, 0x0000u, "half bf16's smallest subnormal: a tie, to the even 0"},
        {0x00018000u, 0x0002u, "1.5 of bf16's smallest subnormal: a tie, to the even 2"},
        {0x00008001u, 0x0001u, "just above half the smallest subnormal: up"},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t got = bf16_from_float(from_bits(cases[i].in));
        if (got != cases[i].out) {
            test_fail("bf16_from_float(0x%08x) = 0x%04x, expected 0x%04x (%s)",
                      (unsigned)cases[i].in, got, cases[i].out, cases[i].what);
            bad++;
        }
        float back = bf16_to_float(cases[i].out), r = bf16_round(from_bits(cases[i].in));
        if (memcmp(&back, &r, sizeof r) != 0 && !isnan(r)) {
            test_fail("bf16_round(0x%08x) is not bf16_to_float of its bf16", (unsigned)cases[i].in);
            bad++;
        }
    }
    if (!bad)
        printf("ok   bf16 rounding: %zu cases (ties to even, NaN, infinities, subnormals)\n",
               sizeof cases / sizeof cases[0]);
}

/* --- (b) ops on activations ---------------------------------------------------------- */

static float *bf16_normal(size_t n, float stddev)
{
    float *p = test_alloc_normal(n, stddev);
    for (size_t i = 0; i < n; i++)
        p[i] = bf16_round(p[i]);
    return p;
}

/* got (the op at bf16) must be want (the op at float32) rounded, bit for bit */
static void expect_rounded(const char *name, const float *got, const float *want, size_t n)
{
    size_t bad = 0, changed = 0;
    for (size_t i = 0; i < n; i++) {
        float r = bf16_round(want[i]);
        changed += memcmp(&r, &want[i], sizeof r) != 0;
        if (memcmp(&r, &got[i], sizeof r) != 0 && bad++ == 0)
            test_fail("%s [%zu]: bf16 gave %.9g, float32 %.9g rounds to %.9g", name, i, got[i],
                      want[i], r);
    }
    if (!bad)
        printf("ok   %s: bf16 = float32 rounded, %zu values (%zu moved by the rounding)\n", name, n,
               changed);
}

/* An op that stores one activation tensor `out` (n values) in mode m: run it at float32 and
 * at bf16 from the same start (NULL: NaN, for written outputs) and compare. */
typedef void (*act_op)(void *ctx, float *out, enum grad_mode m);

static void check_op(const char *name, act_op run, void *ctx, size_t n, const float *start,
                     enum grad_mode m)
{
    float *want = test_alloc_zeros(n), *got = test_alloc_zeros(n);
    for (size_t i = 0; i < n; i++)
        want[i] = got[i] = start ? start[i] : NAN;
    be->precision = PRECISION_FP32;
    run(ctx, want, m);
    be->precision = PRECISION_BF16;
    run(ctx, got, m);
    be->precision = PRECISION_TF32;
    char label[128];
    snprintf(label, sizeof label, "%s (%s)", name, m == GRAD_ADD ? "+=" : "=");
    expect_rounded(label, got, want, n);
    free(want), free(got);
}

/* An op of both modes: written over NaN, then accumulated onto bf16 values. */
static void check_modes(const char *name, act_op run, void *ctx, size_t n)
{
    float *start = bf16_normal(n, 1.0f);
    check_op(name, run, ctx, n, NULL, GRAD_WRITE);
    check_op(name, run, ctx, n, start, GRAD_ADD);
    free(start);
}

enum { N = 2, H = 6, W = 4, C = 5, C2 = 3 };
#define NUMEL ((size_t)N * H * W * C)

struct inputs {
    float *x, *a, *dy, *big_dy, *small_dy, *stats, *saved, *bstats, *mm, *mv, *v;
};

static void op_swish(void *c, float *out, enum grad_mode m)
{
    be->swish_forward(be, out, ((struct inputs *)c)->x, NUMEL);
}
static void op_swish_bwd(void *c, float *out, enum grad_mode m)
{
    struct inputs *in = c;
    be->swish_backward(be, out, in->dy, in->x, NUMEL, m);
}
static void op_add(void *c, float *out, enum grad_mode m)
{
    be->add(be, out, ((struct inputs *)c)->x, ((struct inputs *)c)->a, NUMEL);
}
static void op_add_bwd_a(void *c, float *out, enum grad_mode m)
{
    be->add_backward(be, out, NULL, ((struct inputs *)c)->x, NUMEL, m, GRAD_WRITE);
}
static void op_add_bwd_b(void *c, float *out, enum grad_mode m)
{
    be->add_backward(be, NULL, out, ((struct inputs *)c)->x, NUMEL, GRAD_WRITE, m);
}
static void op_concat(void *c, float *out, enum grad_mode m)
{
    struct inputs *in = c; /* x as (rows, C) beside the first C2 columns of a as (rows, C2) */
    be->concat_forward(be, out, in->x, in->a, (size_t)N * H * W, C, C2);
}
static void op_concat_bwd_a(void *c, float *out, enum grad_mode m)
{
    struct inputs *in = c;
    be->concat_backward(be, out, NULL, in->big_dy, (size_t)N * H * W, C, C2, m, GRAD_WRITE);
}
static void op_concat_bwd_b(void *c, float *out, enum grad_mode m)
{
    struct inputs *in = c;
    be->concat_backward(be, NULL, out, in->big_dy, (size_t)N * H * W, C, C2, GRAD_WRITE, m);
}
static void op_pool(void *c, float *out, enum grad_mode m)
{
    be->avgpool2_forward(be, out, ((struct inputs *)c)->x, N, H, W, C);
}
static void op_pool_bwd(void *c, float *out, enum grad_mode m)
{
    be->avgpool2_backward(be, out, ((struct inputs *)c)->small_dy, N, H, W, C, m);
}
static void op_up(void *c, float *out, enum grad_mode m)
{
    be->upsample2_forward(be, out, ((struct inputs *)c)->x, N, H, W, C);
}
static void op_up_bwd(void *c, float *out, enum grad_mode m)
{
    be->upsample2_backward(be, out, ((struct inputs *)c)->big_dy, N, H, W, C, m);
}
static void op_bn_train(void *c, float *out, enum grad_mode m)
{
    struct inputs *in = c; /* moving statistics updated on a copy: the same both times */
    float mm[C], mv[C];
    memcpy(mm, in->mm, sizeof mm), memcpy(mv, in->mv, sizeof mv);
    be->bn_forward_train(be, out, in->saved, mm, mv, in->x, in->stats, (double)N * H * W,
                         (size_t)N * H * W, C, 0.99f, 1e-3f);
}
static void op_bn_infer(void *c, float *out, enum grad_mode m)
{
    struct inputs *in = c;
    be->bn_forward_infer(be, out, in->x, in->mm, in->mv, (size_t)N * H * W, C, 1e-3f);
}
static void op_bn_bwd(void *c, float *out, enum grad_mode m)
{
    struct inputs *in = c;
    be->bn_backward_apply(be, out, in->dy, in->x, in->saved, in->bstats, (double)N * H * W,
                          (size_t)N * H * W, C, m);
}
static void op_embed(void *c, float *out, enum grad_mode m)
{
    be->sinusoidal_embedding(be, out, ((struct inputs *)c)->v, N, H, W, C + 1, 1.0f, 1000.0f);
}
static void op_to_act(void *c, float *out, enum grad_mode m)
{
    test_seed(7);                                /* the same values both times */
    float *raw = test_alloc_normal(NUMEL, 3.0f); /* not bf16-valued: rounded by the store */
    be->to_act(be, out, raw, NUMEL);
    free(raw);
}

static void test_ops(void)
{
    size_t rows = (size_t)N * H * W;
    struct inputs in = {
        bf16_normal(NUMEL, 2.0f),     bf16_normal(NUMEL, 1.0f),     bf16_normal(NUMEL, 1.0f),
        bf16_normal(NUMEL * 4, 1.0f), bf16_normal(NUMEL / 4, 1.0f), test_alloc_zeros(2 * C),
        test_alloc_zeros(2 * C),      test_alloc_zeros(2 * C),      test_alloc_normal(C, 0.3f),
        test_alloc_zeros(C),          test_alloc_zeros(N)};
    for (int j = 0; j < C; j++)
        in.mv[j] = 0.5f + 0.3f * (float)j;
    for (int i = 0; i < N; i++)
        in.v[i] = 0.2f + 0.3f * (float)i;
    be->bn_stats(be, in.stats, in.x, rows, C);
    float mm[C], mv[C], *y = test_alloc_zeros(NUMEL);
    memcpy(mm, in.mm, sizeof mm), memcpy(mv, in.mv, sizeof mv);
    be->bn_forward_train(be, y, in.saved, mm, mv, in.x, in.stats, (double)rows, rows, C, 0.99f,
                         1e-3f);
    be->bn_backward_stats(be, in.bstats, in.dy, in.x, in.saved, rows, C);
    free(y);

    check_op("swish_forward", op_swish, &in, NUMEL, NULL, GRAD_WRITE);
    check_modes("swish_backward", op_swish_bwd, &in, NUMEL);
    check_op("add", op_add, &in, NUMEL, NULL, GRAD_WRITE);
    check_modes("add_backward da", op_add_bwd_a, &in, NUMEL);
    check_modes("add_backward db", op_add_bwd_b, &in, NUMEL);
    check_op("concat_forward", op_concat, &in, rows * (C + C2), NULL, GRAD_WRITE);
    check_modes("concat_backward da", op_concat_bwd_a, &in, rows * C);
    check_modes("concat_backward db", op_concat_bwd_b, &in, rows * C2);
    check_op("avgpool2_forward", op_pool, &in, NUMEL / 4, NULL, GRAD_WRITE);
    check_modes("avgpool2_backward", op_pool_bwd, &in, NUMEL);
    check_op("upsample2_forward", op_up, &in, NUMEL * 4, NULL, GRAD_WRITE);
    check_modes("upsample2_backward", op_up_bwd, &in, NUMEL);
    check_op("bn_forward_train", op_bn_train, &in, NUMEL, NULL, GRAD_WRITE);
    check_op("bn_forward_infer", op_bn_infer, &in, NUMEL, NULL, GRAD_WRITE);
    check_modes("bn_backward_apply", op_bn_bwd, &in, NUMEL);
    check_op("sinusoidal_embedding", op_embed, &in, (size_t)N * H * W * (C + 1), NULL, GRAD_WRITE);
    check_op("to_act", op_to_act, &in, NUMEL, NULL, GRAD_WRITE);
    float *p[] = {in.x,     in.a,      in.dy, in.big_dy, in.small_dy, in.stats,
                  in.saved, in.bstats, in.mm, in.mv,     in.v};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        free(p[i]);
}

/* --- (c) the convolution ----------------------------------------------------------------- */

static void round_all(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = bf16_round(x[i]);
}

static void test_conv(void)
{
    struct conv_shape s = {.n = 2, .h = 6, .w = 6, .cin = 5, .cout = 7, .k = 3};
    size_t nx = (size_t)2 * 6 * 6 * 5, ny = (size_t)2 * 6 * 6 * 7, nw = (size_t)9 * 5 * 7;
    float *x = bf16_normal(nx, 1.0f), *res = bf16_normal(ny, 1.0f),
          *w = test_alloc_normal(nw, 0.3f);
    float *b = test_alloc_normal(7, 0.5f), *wr = test_alloc_zeros(nw), *zero = test_alloc_zeros(7);
    float *y = test_alloc_zeros(ny), *act = test_alloc_zeros(ny);
    float *ref = test_alloc_zeros(ny), *ref_act = test_alloc_zeros(ny);
    memcpy(wr, w, nw * sizeof(float));
    round_all(wr, nw);
    /* the reference, from float32 ops: conv with the rounded kernel, rounded; + bias, rounded;
     * + residual, rounded; swish, rounded */
    be->precision = PRECISION_FP32;
    be->conv2d_forward(be, ref, x, wr, zero, &s, NULL);
    for (size_t i = 0; i < ny; i++) {
        float v = bf16_round(bf16_round(ref[i]) + b[i % 7]);
        ref[i] = bf16_round(v + res[i]);
    }
    be->swish_forward(be, ref_act, ref, ny);
    round_all(ref_act, ny);
    be->precision = PRECISION_BF16;
    struct conv_epilogue epi = {res, act};
    be->conv2d_forward(be, y, x, w, b, &s, &epi);
    expect_rounded("conv2d_forward y (bias, residual rounded apart)", y, ref, ny);
    expect_rounded("conv2d_forward swish", act, ref_act, ny);
    /* backward: float32 gradients with the rounded kernel, dx and dw rounded, dbias not */
    float *dx = test_alloc_zeros(nx), *dw = test_alloc_zeros(nw), *db = test_alloc_zeros(7);
    float *rdx = test_alloc_zeros(nx), *rdw = test_alloc_zeros(nw), *rdb = test_alloc_zeros(7);
    be->conv2d_backward(be, dx, dw, db, res, x, w, &s, GRAD_WRITE);
    be->precision = PRECISION_FP32;
    be->conv2d_backward(be, rdx, rdw, rdb, res, x, wr, &s, GRAD_WRITE);
    be->precision = PRECISION_TF32;
    expect_rounded("conv2d_backward dx", dx, rdx, nx);
    expect_rounded("conv2d_backward dw", dw, rdw, nw);
    if (memcmp(db, rdb, 7 * sizeof(float)) != 0)
        test_fail("conv2d_backward dbias: not float32's sums of the same dy");
    float *all[] = {x, res, w, b, wr, zero, y, act, ref, ref_act, dx, dw, db, rdx, rdw, rdb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

/* --- (d) a whole training step ----------------------------------------------------------- */

/* how many of the n values are not bf16 values */
static size_t count_unrounded(const float *x, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        float r = bf16_round(x[i]);
        bad += memcmp(&r, &x[i], sizeof r) != 0 && !isnan(x[i]);
    }
    return bad;
}

struct step_result {
    float *pred, *dw;
    size_t unrounded_act, elements, trainable;
};

static struct step_result run_step(enum precision p, struct comm *comm, int batch)
{
    struct unet_config cfg = config_default_model();
    cfg.image_size = 16, cfg.num_levels = 3, cfg.widths[0] = 8, cfg.widths[1] = 12;
    cfg.widths[2] = 16, cfg.block_depth = 2, cfg.embedding_dims = 8, cfg.precision = p;
    char err[256];
    struct unet *net = unet_create(&cfg, err, sizeof err);
    if (!net)
        DDIM_FATAL("unet_create: %s", err);
    const struct param_table *pt = unet_params(net);
    size_t npix = (size_t)batch * 16 * 16 * 3;
    float *w = test_alloc_zeros(pt->total);
    unet_init_weights(net, w, 5, 0);
    for (size_t i = 0; i < pt->trainable; i++) /* the head's zero kernel too: every path */
        w[i] += 0.05f * (float)((i * 2654435761u) % 1000) / 1000.0f - 0.025f;
    test_seed(11);
    float *noisy = test_alloc_normal(npix, 1.0f), *dpred = test_alloc_normal(npix, 1.0f);
    float v[4] = {0.1f, 0.4f, 0.7f, 0.9f};
    struct step_result r = {test_alloc_zeros(npix), test_alloc_zeros(pt->trainable), 0, 0,
                            pt->trainable};
    struct unet_acts *acts = unet_acts_create(be, net, batch, 1);
    unet_forward(be, net, acts, w, noisy, v, 1, comm, r.pred);
    unet_backward(be, net, acts, w, r.dw, dpred, comm, NULL);
    const struct graph_acts *ga = acts->ga;
    /* one arena holds activations and gradients (the memory plan): after the step it holds
     * what the last writers of each buffer stored */
    const struct graph *g = unet_graph(net);
    r.elements = ga->plan->floats;
    r.unrounded_act = count_unrounded(ga->arena, r.elements);
    if (p == PRECISION_BF16 && ga->bytes != graph_acts_size(g, ga->plan, 4))
        test_fail("bf16 on the CPU: an arena of %zu bytes, float32's is %zu", ga->bytes,
                  graph_acts_size(g, ga->plan, 4));
    if (p == PRECISION_BF16 &&
        2 * graph_acts_size(g, ga->plan, 2) - graph_acts_size(g, ga->plan, 4) !=
            g->bn_floats * sizeof(float))
        test_fail("a 2-byte bf16 arena is not half of float32's (BatchNorm's floats apart)");
    unet_acts_destroy(be, acts);
    unet_destroy(net);
    free(w), free(noisy), free(dpred);
    return r;
}

static void test_step(void)
{
    struct comm *comm = comm_single();
    int batch = 4;
    struct step_result f = run_step(PRECISION_FP32, comm, batch);
    struct step_result h = run_step(PRECISION_BF16, comm, batch);
    size_t npix = (size_t)batch * 16 * 16 * 3;
    if (h.unrounded_act)
        test_fail("bf16 step: %zu of the arena's %zu activations and gradients not bf16 "
                  "values: an op stores unrounded",
                  h.unrounded_act, h.elements);
    else if (f.unrounded_act < h.elements / 4)
        test_fail("float32 step: only %zu of %zu activations off bf16: the check sees nothing",
                  f.unrounded_act, f.elements);
    else
        printf("ok   bf16 step: all %zu activations and gradients bf16 values (float32's: %zu "
               "not)\n",
               h.elements, f.unrounded_act);
    /* bf16 keeps 8 bits (relative error 2^-9 per store): through ~30 layers the
     * predictions and weight gradients move by about 1%, not by their size */
    test_rel_l2("bf16 step: predictions against float32's", h.pred, f.pred, npix, 0.03);
    test_rel_l2("bf16 step: weight gradients against float32's", h.dw, f.dw, h.trainable, 0.05);
    free(f.pred), free(f.dw), free(h.pred), free(h.dw);
    comm->destroy(comm);
}

/* A network with inference-only nodes (InceptionV3's: float32 ops) is refused in bf16, by
 * name, and taken in tf32 (the KID's Inception is built in tf32 whatever the U-Net runs in). */
static void test_inference_refused(void)
{
    char err[256] = "";
    struct inception *net = inception_create(32, 75, err, sizeof err);
    if (!net) {
        test_fail("inception_create: %s", err);
        return;
    }
    struct graph g = *inception_graph(net); /* a shallow copy: only its precision changes */
    int tf32 = graph_check_backend(be, &g, 2, 0, err, sizeof err);
    g.precision = PRECISION_BF16;
    int bf16 = graph_check_backend(be, &g, 2, 0, err, sizeof err);
    if (tf32 != 0 || bf16 != -1 || !strstr(err, "cannot run in bf16"))
        test_fail("InceptionV3 in tf32: %d (want 0), in bf16: %d (want -1 naming bf16): %s", tf32,
                  bf16, err);
    else
        printf("ok   InceptionV3 refused in bf16: %s\n", err);
    inception_destroy(net);
}

int main(void)
{
    be = cpu_backend_create();
    test_seed(18);
    test_rounding();
    test_ops();
    test_conv();
    test_step();
    test_inference_refused();
    be->destroy(be);
    return test_finish("test_bf16");
}
