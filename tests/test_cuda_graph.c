/* test_cuda_graph.c: the CUDA backend's graphs (backend.h graph_*): a training-like step of
 * the backend's own kernels (BatchNorm in training mode forward and backward, swish, loss
 * and its gradient, an update of the input, EMA, fills and copies) captured once and
 * launched N times gives the same bits as the same step launched eagerly N times. The step
 * reads its state from backend memory only (the moving statistics, the input, the EMA), so
 * every launch advances it: a graph that replays stale work, skips work, runs the capture
 * itself, or an op that does not survive capture, fails the comparison.
 *
 * Label gpu on a GPU (exits 77 without one); built again as test_cuda_emu_graph (label
 * unit) on the host emulation (tests/cuda_emu), which refuses synchronizations and
 * allocations during capture as CUDA does.
 *
 * Then the trainer's graph mode
 * (run.cuda_graph): a small U-Net trained STEPS+2 steps with the step captured and
 * replayed ends with the same weights, EMA and losses, bit for bit, as op by op; also
 * when, between steps, a convolution of a new, larger shape grows the backend's conv
 * workspace and kernel copies (as sampling or KID do between epochs): the graph that
 * still points at the old buffers must be captured again, not replayed. On the emulation
 * the convolutions are tests/cuda_emu/emu_conv.cu's plain kernels standing in for cuDNN
 * (which keeps no buffers to grow, so there the growth part is a no-op). */
#include "backend.h"
#include "comm.h"
#include "config.h"
#include "test_util.h"
#include "trainer.h"
#ifdef DDIM_CUDA_EMU
#include "cuda_emu_backend.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 2 * 8 * 8, C = 24, STEPS = 3 };
#define N ((size_t)ROWS * C)

/* One copy of the step's state and scratch, all in backend memory. */
struct state {
    float *x, *target, *y, *s, *ds, *dy, *dx, *stats, *saved, *bstats, *mm, *mv, *ema, *loss;
    float *x_copy;
};

static float *upload_new(struct backend *be, const float *host, size_t n)
{
    float *p = be->alloc(be, n * sizeof(float));
    be->upload(be, p, host, n * sizeof(float));
    return p;
}

static void state_init(struct backend *be, struct state *st, const float *x, const float *target,
                       const float *mv)
{
    st->x = upload_new(be, x, N);
    st->target = upload_new(be, target, N);
    st->ema = upload_new(be, x, N);
    st->mv = upload_new(be, mv, C);
    st->mm = be->alloc(be, C * sizeof(float)); /* zero-filled */
    float **scratch[] = {&st->y, &st->s, &st->ds, &st->dy, &st->dx, &st->x_copy};
    for (size_t i = 0; i < sizeof scratch / sizeof scratch[0]; i++)
        *scratch[i] = be->alloc(be, N * sizeof(float));
    st->stats = be->alloc(be, 2 * C * sizeof(float));
    st->saved = be->alloc(be, 2 * C * sizeof(float));
    st->bstats = be->alloc(be, 2 * C * sizeof(float));
    st->loss = be->alloc(be, sizeof(float));
}

static void state_free(struct backend *be, struct state *st)
{
    float *all[] = {st->x,     st->target, st->y,  st->s,  st->ds,  st->dy,   st->dx,    st->stats,
                    st->saved, st->bstats, st->mm, st->mv, st->ema, st->loss, st->x_copy};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        be->free(be, all[i]);
}

/* x -> BN (training) -> swish -> MSE against target; gradient back to x; x -= 0.5 * dx */
static void step(struct backend *be, struct state *st)
{
    be->bn_stats(be, st->stats, st->x, ROWS, C);
    be->bn_forward_train(be, st->y, st->saved, st->mm, st->mv, st->x, st->stats, ROWS, ROWS, C,
                         0.9f, 1e-3f);
    be->swish_forward(be, st->s, st->y, N);
    be->loss_value(be, st->loss, st->s, st->target, N, LOSS_MSE);
    be->loss_backward(be, st->ds, st->s, st->target, N, 1.0f, LOSS_MSE);
    be->fill(be, st->dy, 0.0f, N);
    be->swish_backward(be, st->dy, st->ds, st->y, N);
    be->bn_backward_stats(be, st->bstats, st->dy, st->x, st->saved, ROWS, C);
    be->fill(be, st->dx, 0.0f, N);
    be->bn_backward_apply(be, st->dx, st->dy, st->x, st->saved, st->bstats, ROWS, ROWS, C);
    be->axpy(be, st->x, -0.5f, st->dx, N);
    be->ema_update(be, st->ema, st->x, N, 0.8f);
    be->copy(be, st->x_copy, st->x, N * sizeof(float));
}

/* The same bits in both states' buffers of n floats. */
static void expect_same(struct backend *be, const char *name, const float *a, const float *b,
                        size_t n)
{
    float *ha = malloc(n * sizeof(float)), *hb = malloc(n * sizeof(float));
    be->download(be, ha, a, n * sizeof(float));
    be->download(be, hb, b, n * sizeof(float));
    test_close(name, hb, ha, n, 0.0f, 0.0f);
    free(ha);
    free(hb);
}

/* A trainer on be for a 16x16 U-Net (widths 8,16, depth 1, batch 4), random images. */
static struct trainer *small_trainer(struct backend *be, struct comm *comm)
{
    struct unet_config u = config_default_model();
    u.image_size = 16;
    u.num_levels = 2;
    u.widths[0] = 8, u.widths[1] = 16;
    u.block_depth = 1;
    struct diffusion_config dc = config_default_diffusion();
    char err[512];
    struct trainer *t = trainer_create(be, comm, &u, &dc, 4, 4, 0, err, sizeof err);
    if (!t) {
        test_fail("trainer_create: %s", err);
        return NULL;
    }
    trainer_init_weights(t);
    be->fill_uniform(be, t->images, t->batch, t->per_image, 7, 0, RNG_SHUFFLE, 0);
    const float mean[3] = {0.5f, 0.5f, 0.5f}, var[3] = {0.1f, 0.1f, 0.1f};
    trainer_set_normalizer(t, mean, var);
    return t;
}

#ifdef DDIM_CUDA_EMU
/* The emulation's stand-in convolution against the CPU backend's (both float32, sums in
 * different orders): a wrong tap or a transposed weight fails by far more than 1e-4. */
static void check_stand_in_conv(struct backend *be)
{
    struct backend *cpu = cpu_backend_create();
    struct conv_shape s = {.n = 2, .h = 5, .w = 6, .cin = 4, .cout = 7, .k = 3};
    size_t nx = 2 * 5 * 6 * 4, nw = 3 * 3 * 4 * 7, ny = 2 * 5 * 6 * 7, nb = 7;
    size_t sizes[6] = {nx, nw, nb, ny, nx, ny}; /* x, w, bias, y, dx, dy */
    float *h[6], *g[6], *got = malloc(ny * sizeof(float)), *dw[2], *db[2];
    for (int i = 0; i < 6; i++) {
        h[i] = test_alloc_normal(sizes[i], 1.0f); /* CPU backend memory is host memory */
        g[i] = upload_new(be, h[i], sizes[i]);
    }
    for (int i = 0; i < 2; i++) {
        dw[i] = test_alloc_zeros(nw);
        db[i] = test_alloc_zeros(nb);
    }
    float *gdw = be->alloc(be, nw * sizeof(float)), *gdb = be->alloc(be, nb * sizeof(float));
    cpu->conv2d_forward(cpu, h[3], h[0], h[1], h[2], &s);
    be->conv2d_forward(be, g[3], g[0], g[1], g[2], &s);
    be->download(be, got, g[3], ny * sizeof(float));
    test_close("stand-in conv forward", got, h[3], ny, 1e-4f, 1e-4f);
    cpu->conv2d_backward(cpu, h[4], dw[0], db[0], h[5], h[0], h[1], &s);
    be->conv2d_backward(be, g[4], gdw, gdb, g[5], g[0], g[1], &s);
    be->download(be, got, g[4], nx * sizeof(float));
    test_close("stand-in conv dx (+=)", got, h[4], nx, 1e-4f, 1e-4f);
    be->download(be, dw[1], gdw, nw * sizeof(float));
    test_close("stand-in conv dw", dw[1], dw[0], nw, 1e-4f, 1e-4f);
    be->download(be, db[1], gdb, nb * sizeof(float));
    test_close("stand-in conv dbias", db[1], db[0], nb, 1e-4f, 1e-4f);
    for (int i = 0; i < 6; i++) {
        be->free(be, g[i]);
        free(h[i]);
    }
    for (int i = 0; i < 2; i++)
        free(dw[i]), free(db[i]);
    be->free(be, gdw), be->free(be, gdb);
    free(got);
    cpu->destroy(cpu);
}
#endif

/* One forward convolution bigger than any of the small U-Net's (5x5, 64 -> 96 channels):
 * the conv cache replaces its workspace and kernel copies. */
static void grow_conv_buffers(struct backend *be)
{
    struct conv_shape s = {.n = 2, .h = 12, .w = 12, .cin = 64, .cout = 96, .k = 5};
    size_t nx = 2 * 12 * 12 * 64, nw = 5 * 5 * 64 * 96, ny = 2 * 12 * 12 * 96;
    float *x = be->alloc(be, nx * sizeof(float)), *w = be->alloc(be, nw * sizeof(float));
    float *b = be->alloc(be, 96 * sizeof(float)), *y = be->alloc(be, ny * sizeof(float));
    be->conv2d_forward(be, y, x, w, b, &s);
    be->synchronize(be);
    be->free(be, x), be->free(be, w), be->free(be, b), be->free(be, y);
}

static void test_trainer_graph(struct backend *be)
{
    struct comm *comm = comm_single();
    struct trainer *eager = small_trainer(be, comm), *graphed = small_trainer(be, comm);
    if (!eager || !graphed)
        return;
    if (!trainer_set_graph(graphed, 1))
        test_fail("trainer_set_graph: the %s backend refused a graph", be->name);
    for (int i = 0; i < 2 * STEPS + 2; i++) { /* warm-up, capture, replays */
        if (i == STEPS + 2)
            grow_conv_buffers(be);
        trainer_draw(eager, (uint32_t)eager->step, 0);
        trainer_train_step(eager);
        trainer_draw(graphed, (uint32_t)graphed->step, 0);
        trainer_train_step(graphed);
    }
    if (!graphed->graph)
        test_fail("trainer: no graph after %d steps", 2 * STEPS + 2);
    size_t total = unet_params(eager->net)->total;
    expect_same(be, "trainer weights, graph vs op by op", eager->w, graphed->w, total);
    expect_same(be, "trainer EMA weights", eager->ema_w, graphed->ema_w, total);
    expect_same(be, "trainer losses", eager->losses, graphed->losses, 2);
    trainer_destroy(eager);
    trainer_destroy(graphed);
    comm->destroy(comm);
}

int main(void)
{
    char err[512] = "";
#ifdef DDIM_CUDA_EMU
    struct backend *be = backend_cuda_emu_create_with_conv(err, sizeof err);
#else
    struct backend *be = cuda_backend_create(0, err, sizeof err);
#endif
    if (!be) {
        printf("SKIP: %s\n", err);
        return TEST_SKIP;
    }
    if (!be->graph_capture_begin || !be->graph_capture_end || !be->graph_launch ||
        !be->graph_destroy) {
        test_fail("the %s backend has no graph hooks", be->name);
        return test_finish("test_cuda_graph");
    }
    test_seed(20261128);
    float *x = test_alloc_normal(N, 1.0f), *target = test_alloc_normal(N, 0.5f);
    float mv[C];
    test_fill_uniform(mv, C, 0.5f, 2.0f);
    struct state eager, graphed;
    state_init(be, &eager, x, target, mv);
    state_init(be, &graphed, x, target, mv);

    for (int i = 0; i < STEPS; i++)
        step(be, &eager);
    be->graph_capture_begin(be);
    step(be, &graphed); /* recorded, not run */
    void *g = be->graph_capture_end(be, err, sizeof err);
    if (!g) {
        test_fail("capture of the step failed: %s", err);
    } else {
        /* capturing ran nothing: the input is still the initial one */
        expect_same(be, "x after capture, before any launch", graphed.x, graphed.ema, N);
        for (int i = 0; i < STEPS; i++)
            if (!be->graph_launch(be, g))
                test_fail("graph launch %d: stale without any new buffer", i);
        be->graph_destroy(be, g);
        expect_same(be, "x after N steps, graph vs eager", eager.x, graphed.x, N);
        expect_same(be, "copy of x", eager.x_copy, graphed.x_copy, N);
        expect_same(be, "EMA", eager.ema, graphed.ema, N);
        expect_same(be, "moving mean", eager.mm, graphed.mm, C);
        expect_same(be, "moving variance", eager.mv, graphed.mv, C);
        expect_same(be, "last loss", eager.loss, graphed.loss, 1);
        /* and the step did move x: replays of a no-op would pass the checks above */
        float *h = malloc(N * sizeof(float));
        be->download(be, h, eager.x, N * sizeof(float));
        if (!memcmp(h, x, N * sizeof(float)))
            test_fail("the step left x unchanged: the test compares nothing");
        free(h);
    }
#ifdef DDIM_CUDA_EMU
    check_stand_in_conv(be);
#endif
    if (be->conv2d_forward)
        test_trainer_graph(be);
    else
        printf("skip the trainer's graph mode: the %s backend has no convolutions\n", be->name);
    state_free(be, &eager);
    state_free(be, &graphed);
    free(x);
    free(target);
    const char *name = strcmp(be->name, "cuda") ? "test_cuda_emu_graph" : "test_cuda_graph";
    be->destroy(be);
    return test_finish(name);
}
