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
 * (run.cuda_graph), the whole step as one graph launch (resident data gathered, noises
 * drawn, AdamW, EMA, the loss history and the step counters inside): a small U-Net trained
 * STEPS+2 steps with the step captured and replayed ends with the same weights, EMA, Adam
 * moments, losses, loss history and counters, bit for bit, as op by op (and op by op
 * without fusion); a replayed step runs nothing outside its graph (counted by the
 * emulator); a new position set from the host (an epoch's start) reaches the replays;
 * also when, between steps, a convolution of a new, larger shape grows the backend's conv
 * workspace and kernel copies (as sampling or KID do between epochs): the graph that
 * still points at the old buffers must be captured again, not replayed. With two ranks (a
 * stand-in communicator whose all-reduce is work on the stream) the collectives are
 * captured too, the gradient's buckets among them as the backward pass fills them, and
 * comm->watch follows every launch. On the emulation
 * the convolutions are tests/cuda_emu/emu_conv.cu's plain kernels standing in for cuDNN
 * (which keeps no buffers to grow, so there the growth part is a no-op). */
#include "backend.h"
#include "comm.h"
#include "config.h"
#include "grad_buckets.h"
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
    be->swish_backward(be, st->dy, st->ds, st->y, N, GRAD_ADD);
    be->bn_backward_stats(be, st->bstats, st->dy, st->x, st->saved, ROWS, C);
    be->bn_backward_apply(be, st->dx, st->dy, st->x, st->saved, st->bstats, ROWS, ROWS, C,
                          GRAD_WRITE);
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

enum { TRAIN_IMAGES = 6, ORDER = 40, SLOTS = 16 };

/* Resident training data on be (uint8 images and an order of indices) and a loss history,
 * as the training loop hands them to a trainer: each step gathers its own batch. */
struct feed {
    uint8_t *images;
    int32_t *order;
    float *hist;
};

static void feed_init(struct backend *be, struct feed *f, size_t per)
{
    uint8_t *img = malloc(TRAIN_IMAGES * per);
    int32_t order[ORDER];
    for (size_t k = 0; k < TRAIN_IMAGES * per; k++)
        img[k] = (uint8_t)(k * 37 % 251);
    for (int i = 0; i < ORDER; i++)
        order[i] = (i * 5 + 3) % TRAIN_IMAGES;
    f->images = be->alloc(be, TRAIN_IMAGES * per);
    be->upload(be, f->images, img, TRAIN_IMAGES * per);
    f->order = be->alloc(be, sizeof order);
    be->upload(be, f->order, order, sizeof order);
    f->hist = be->alloc(be, 2 * SLOTS * sizeof(float));
    free(img);
}

static void feed_free(struct backend *be, struct feed *f)
{
    be->free(be, f->images), be->free(be, f->order), be->free(be, f->hist);
}

/* A trainer on be for a 16x16 U-Net (widths 8,16, depth 1, batch 2 of a global batch of 2 *
 * comm->world), fed from f. */
static struct trainer *small_trainer(struct backend *be, struct comm *comm, struct feed *f)
{
    struct unet_config u = config_default_model();
    u.image_size = 16;
    u.num_levels = 2;
    u.widths[0] = 8, u.widths[1] = 16;
    u.block_depth = 1;
    struct diffusion_config dc = config_default_diffusion();
    char err[512];
    struct trainer *t = trainer_create(be, comm, &u, &dc, 2, 2 * comm->world, 0, err, sizeof err);
    if (!t) {
        test_fail("trainer_create: %s", err);
        return NULL;
    }
    trainer_init_weights(t);
    const float mean[3] = {0.5f, 0.5f, 0.5f}, var[3] = {0.1f, 0.1f, 0.1f};
    trainer_set_normalizer(t, mean, var);
    feed_init(be, f, t->per_image);
    trainer_set_data(t, f->images, f->order);
    trainer_set_loss_history(t, f->hist);
    return t;
}

/* Everything a step leaves behind: weights, EMA, Adam moments, losses and their history,
 * the counters. */
static void expect_same_trainers(const char *what, struct trainer *a, struct trainer *b,
                                 const struct feed *fa, const struct feed *fb)
{
    struct backend *be = a->be;
    const struct param_table *pt = unet_params(a->net);
    char name[160];
    const struct {
        const char *name;
        const float *x, *y;
        size_t n;
    } bufs[] = {{"weights", a->w, b->w, pt->total},
                {"EMA weights", a->ema_w, b->ema_w, pt->total},
                {"Adam m", a->adam_m, b->adam_m, pt->trainable},
                {"Adam v", a->adam_v, b->adam_v, pt->trainable},
                {"losses", a->losses, b->losses, 2},
                {"loss history", fa->hist, fb->hist, 2 * SLOTS}};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        snprintf(name, sizeof name, "trainer %s, %s", bufs[i].name, what);
        expect_same(be, name, bufs[i].x, bufs[i].y, bufs[i].n);
    }
    int32_t ca[TC_COUNT], cb[TC_COUNT];
    be->download(be, ca, a->counters, sizeof ca);
    be->download(be, cb, b->counters, sizeof cb);
    if (memcmp(ca, cb, sizeof ca) != 0 || a->step != b->step)
        test_fail("trainer counters, %s: {%d,%d,%d,%d} step %d against {%d,%d,%d,%d} step %d", what,
                  ca[0], ca[1], ca[2], ca[3], a->step, cb[0], cb[1], cb[2], cb[3], b->step);
}

/* Eager work the emulated device ran (cuda_emu_backend.h); -1 on a GPU: not counted. */
static long eager_work(void)
{
#ifdef DDIM_CUDA_EMU
    return backend_cuda_emu_eager_work();
#else
    return -1;
#endif
}

/* A step of a trainer in graph mode once its graph exists: one graph launch, nothing else
 * run on the device (counted on the emulation). */
static void replayed_step(struct trainer *t)
{
    long before = eager_work();
    trainer_train_step(t);
    long added = eager_work() - before;
    if (before >= 0 && added != 0)
        test_fail("a replayed training step ran %ld kernel(s), copies or fills outside its graph",
                  added);
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
    cpu->conv2d_forward(cpu, h[3], h[0], h[1], h[2], &s, NULL);
    be->conv2d_forward(be, g[3], g[0], g[1], g[2], &s, NULL);
    be->download(be, got, g[3], ny * sizeof(float));
    test_close("stand-in conv forward", got, h[3], ny, 1e-4f, 1e-4f);
    cpu->conv2d_backward(cpu, h[4], dw[0], db[0], h[5], h[0], h[1], &s, GRAD_ADD);
    be->conv2d_backward(be, g[4], gdw, gdb, g[5], g[0], g[1], &s, GRAD_ADD);
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
    be->conv2d_forward(be, y, x, w, b, &s, NULL);
    be->synchronize(be);
    be->free(be, x), be->free(be, w), be->free(be, b), be->free(be, y);
}

/* The trainer's graph mode (the whole step: gather, draw, forward, backward, AdamW, EMA,
 * loss history, counters) against op by op, and op by op without fusion. Then the counters
 * set from the host (a new epoch's position) reach the replays too. */
static void test_trainer_graph(struct backend *be)
{
    struct comm *comm = comm_single();
    struct feed fe, fg, fa, fp;
    struct trainer *eager = small_trainer(be, comm, &fe), *graphed = small_trainer(be, comm, &fg);
    struct trainer *apart = small_trainer(be, comm, &fa);   /* op by op, no fusion */
    struct trainer *partial = small_trainer(be, comm, &fp); /* draw and update apart */
    if (!eager || !graphed || !apart || !partial)
        return;
    unet_set_fusion(apart->net, 0);
    if (!trainer_set_graph(graphed, TRAINER_GRAPH_WHOLE) ||
        !trainer_set_graph(partial, TRAINER_GRAPH_PARTIAL))
        test_fail("trainer_set_graph: the %s backend refused a graph", be->name);
    for (int i = 0; i < 2 * STEPS + 2; i++) { /* warm-up, capture, replays */
        if (i == STEPS + 2)
            grow_conv_buffers(be);
        trainer_train_step(eager);
        if (i >= 2 && i != STEPS + 2) /* the growth makes the next step capture again */
            replayed_step(graphed);
        else
            trainer_train_step(graphed);
        trainer_train_step(apart);
        trainer_train_step(partial);
    }
    if (!graphed->graph)
        test_fail("trainer: no graph after %d steps", 2 * STEPS + 2);
    expect_same_trainers("graph vs op by op", eager, graphed, &fe, &fg);
    expect_same_trainers("fused vs apart", eager, apart, &fe, &fa);
    expect_same_trainers("partial graph vs op by op", eager, partial, &fe, &fp);
    /* a new epoch: draw step 100, the order from index 6, the history from slot 0 */
    trainer_set_position(eager, 100, 6, 0);
    trainer_set_position(graphed, 100, 6, 0);
    for (int i = 0; i < 2; i++) {
        trainer_train_step(eager);
        replayed_step(graphed);
    }
    expect_same_trainers("graph vs op by op, after a new position", eager, graphed, &fe, &fg);
    struct trainer *all[4] = {apart, eager, graphed, partial};
    struct feed *feeds[4] = {&fa, &fe, &fg, &fp};
    for (int i = 0; i < 4; i++) {
        trainer_destroy(all[i]);
        feed_free(be, feeds[i]);
    }
    comm->destroy(comm);
}

/* --- several ranks: a stand-in communicator of two ranks holding the same data ---------- */
struct twin {
    struct backend *be;
    long watched; /* comm->watch calls: one per graph launch */
};

static void twin_allreduce(struct comm *c, float *buf, size_t n)
{
    struct twin *tw = c->ctx;
    tw->be->scale(tw->be, buf, 2.0f, n); /* the other rank's identical share, on the stream */
    c->calls++;
}

/* the gradient's buckets: the same on the stream, as they come (NCCL's run on a side
 * stream, which the emulation does not capture: left to the GPU script) */
static void twin_start(struct comm *c, float *buf, size_t n)
{
    twin_allreduce(c, buf, n);
}
static void twin_finish(struct comm *c) {}

static void twin_broadcast(struct comm *c, void *buf, size_t bytes) {}
static void twin_barrier(struct comm *c) {}
static int twin_all_ok(struct comm *c, int ok)
{
    return ok;
}
static void twin_watch(struct comm *c, const char *what)
{
    ((struct twin *)c->ctx)->watched++;
}

/* Several ranks in one graph: the BatchNorm sums, the gradient and the losses all-reduced
 * inside the captured step (here a scaling on the stream, as NCCL's collectives are work on
 * it), and the communicator told after every graph launch (comm->watch: NCCL's watchdog
 * event). NCCL itself is left to the GPU script's two-GPU run. */
static void test_trainer_graph_ranks(struct backend *be)
{
    struct twin tw = {be, 0};
    struct comm twin = {.rank = 0,
                        .world = 2,
                        .ctx = &tw,
                        .allreduce_sum = twin_allreduce,
                        .broadcast = twin_broadcast,
                        .barrier = twin_barrier,
                        .all_ok = twin_all_ok,
                        .watch = twin_watch,
                        .allreduce_start = twin_start,
                        .allreduce_finish = twin_finish};
    struct feed fe, fg;
    struct trainer *eager = small_trainer(be, &twin, &fe), *graphed = small_trainer(be, &twin, &fg);
    if (!eager || !graphed)
        return;
    /* op by op: the gradient in one piece after the backward pass; the graph: in buckets of
     * 1 KiB started during it (a bucket started before all of it is written reads stale
     * gradients) */
    trainer_set_buckets(eager, 0);
    trainer_set_buckets(graphed, 1.0 / 1024);
    if (!graphed->buckets || grad_buckets_count(graphed->buckets) < 4)
        test_fail("two ranks: 1 KiB buckets were not made");
    if (!trainer_set_graph(graphed, 1))
        test_fail("trainer_set_graph: refused with two ranks and a communicator that watches");
    for (int i = 0; i < STEPS + 2; i++) {
        trainer_train_step(eager);
        if (i >= 2)
            replayed_step(graphed);
        else
            trainer_train_step(graphed);
    }
    expect_same_trainers("two ranks, graph vs op by op", eager, graphed, &fe, &fg);
    if (tw.watched != STEPS + 1) /* the capture's own launch and STEPS replays */
        test_fail("two ranks: comm->watch called %ld times for %d graph launches", tw.watched,
                  STEPS + 1);
    struct comm plain = twin;
    plain.watch = NULL; /* a transport that cannot watch a graph (MPI's): no graph */
    eager->comm = &plain;
    if (trainer_set_graph(eager, 1))
        test_fail("trainer_set_graph: accepted two ranks without comm->watch");
    trainer_destroy(eager);
    trainer_destroy(graphed);
    feed_free(be, &fe);
    feed_free(be, &fg);
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
    /* the CUDA epilogue kernel (bias, residual add, swish in one pass) against the ops apart */
    struct conv_shape e3 = {.n = 2, .h = 6, .w = 5, .cin = 4, .cout = 7, .k = 3};
    struct conv_shape e1 = {.n = 3, .h = 4, .w = 4, .cin = 6, .cout = 5, .k = 1};
    test_conv_epilogue(be, &e3);
    test_conv_epilogue(be, &e1);
#endif
    if (be->conv2d_forward) {
        test_trainer_graph(be);
        test_trainer_graph_ranks(be);
    } else
        printf("skip the trainer's graph mode: the %s backend has no convolutions\n", be->name);
    state_free(be, &eager);
    state_free(be, &graphed);
    free(x);
    free(target);
    const char *name = strcmp(be->name, "cuda") ? "test_cuda_emu_graph" : "test_cuda_graph";
    be->destroy(be);
    return test_finish(name);
}
