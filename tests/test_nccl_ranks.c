/* test_nccl_ranks.c: the GPUs of one machine as ranks, over NCCL (label gpu; exits 77 with
 * fewer than two GPUs). One thread per GPU, each with its own CUDA backend and an NCCL
 * communicator made by comm_nccl_create over an in-process host communicator (threads and
 * a barrier standing in for MPI, which the lent GPU machines lack), as ddim-dist makes it
 * over MPI.
 *
 * Checks, on R = min(GPUs, 4) ranks training a small U-Net together from the same start:
 * - the whole step as one CUDA graph, NCCL's collectives captured in it (thread-local
 *   capture while the other ranks' threads and the watchdog make CUDA calls), against op
 *   by op: the same bits (weights, EMA, losses) on every rank;
 * - the gradient all-reduce in buckets during the backward pass (NCCL's side stream)
 *   against one piece after it, op by op and in the graph: the same bits with 2 ranks
 *   (NCCL's sum of two is a + b); with more, NCCL's order of addition may differ (printed);
 * - every rank ends with the same weights.
 *
 *   test_nccl_ranks                      the checks
 *   test_nccl_ranks --time [BATCH]       also times the seed network at BATCH images per
 *                                        rank (default 8, the 8-GPU split of 64): graph off
 *                                        / whole, buckets 0 / 1 MiB; one JSON line each */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include "comm.h"
#include "config.h"
#include "test_util.h"
#include "trainer.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_RANKS = 4, STEPS = 4, RUNS = 4 };

/* --- the in-process host communicator: all_ok, broadcast and barrier over threads ------- */
struct group {
    pthread_barrier_t bar;
    int world;
    int ok[MAX_RANKS];
    const void *bcast;
};

static int group_all_ok(struct comm *c, int ok)
{
    struct group *g = c->ctx;
    g->ok[c->rank] = ok != 0;
    pthread_barrier_wait(&g->bar);
    int all = 1;
    for (int r = 0; r < g->world; r++)
        all &= g->ok[r];
    pthread_barrier_wait(&g->bar);
    return all;
}

static void group_broadcast(struct comm *c, void *buf, size_t bytes)
{
    struct group *g = c->ctx;
    if (c->rank == 0)
        g->bcast = buf;
    pthread_barrier_wait(&g->bar);
    if (c->rank != 0)
        memcpy(buf, g->bcast, bytes);
    pthread_barrier_wait(&g->bar);
}

static void group_barrier(struct comm *c)
{
    pthread_barrier_wait(&((struct group *)c->ctx)->bar);
}

static void group_allreduce(struct comm *c, float *buf, size_t n)
{
    DDIM_FATAL("test_nccl_ranks: the host communicator carries no data (NCCL does)");
}

/* --- one rank ---------------------------------------------------------------------------- */
struct rank {
    int rank, time_batch;
    struct group *g;
    float *w[RUNS], *ema[RUNS], losses[RUNS][2]; /* host copies after each run */
    size_t total;
    char err[512];
};

/* run k: graph off/whole x buckets one piece / small */
static const struct {
    int graph;
    double mib;
    const char *name;
} runs[RUNS] = {{TRAINER_GRAPH_OFF, 0, "op by op, one piece"},
                {TRAINER_GRAPH_WHOLE, 0, "graph, one piece"},
                {TRAINER_GRAPH_OFF, 0.01, "op by op, 10 KiB buckets"},
                {TRAINER_GRAPH_WHOLE, 0.01, "graph, 10 KiB buckets"}};

static struct trainer *make_trainer(struct backend *be, struct comm *nccl, int size,
                                    const int *widths, int levels, int depth, int batch)
{
    struct unet_config u = config_default_model();
    u.image_size = size;
    u.num_levels = levels;
    memcpy(u.widths, widths, (size_t)levels * sizeof(int));
    u.block_depth = depth;
    struct diffusion_config dc = config_default_diffusion();
    char err[512];
    struct trainer *t = trainer_create(be, nccl, &u, &dc, batch, batch * nccl->world,
                                       nccl->rank * batch, err, sizeof err);
    if (!t)
        DDIM_FATAL("rank %d: trainer_create: %s", nccl->rank, err);
    trainer_init_weights(t);
    const float mean[3] = {0.5f, 0.5f, 0.5f}, var[3] = {0.1f, 0.1f, 0.1f};
    trainer_set_normalizer(t, mean, var);
    be->fill_uniform(be, t->images, t->batch, t->per_image, 3, 0, RNG_SHUFFLE,
                     (uint32_t)t->first_example, NULL);
    return t;
}

static void check_runs(struct rank *me, struct backend *be, struct comm *nccl)
{
    const int widths[3] = {16, 32, 48};
    for (int k = 0; k < RUNS; k++) {
        struct trainer *t = make_trainer(be, nccl, 32, widths, 3, 2, 4);
        trainer_set_buckets(t, runs[k].mib);
        trainer_set_graph(t, runs[k].graph);
        for (int s = 0; s < STEPS; s++)
            trainer_train_step(t);
        if (runs[k].graph && !t->graph)
            DDIM_FATAL("rank %d: %s: no graph was made", me->rank, runs[k].name);
        me->total = unet_params(t->net)->total;
        me->w[k] = util_xmalloc(me->total * sizeof(float));
        me->ema[k] = util_xmalloc(me->total * sizeof(float));
        be->download(be, me->w[k], t->w, me->total * sizeof(float));
        be->download(be, me->ema[k], t->ema_w, me->total * sizeof(float));
        trainer_read_losses(t, me->losses[k]);
        trainer_destroy(t);
    }
}

static double median(double *x, int n)
{
    for (int i = 1; i < n; i++) /* insertion sort: a few dozen values */
        for (int j = i; j > 0 && x[j - 1] > x[j]; j--) {
            double tmp = x[j];
            x[j] = x[j - 1], x[j - 1] = tmp;
        }
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

/* The seed network at time_batch images per rank, in each run's setting: rank 0 prints the
 * median step time (events between steps, no host wait inside the loop). */
static void time_runs(struct rank *me, struct backend *be, struct comm *nccl)
{
    const int widths[4] = {32, 64, 96, 128};
    static const double mib[2] = {0, 1};
    enum { WARMUP = 5, TIMED = 30 };
    for (int k = 0; k < 4; k++) {
        int graph = k / 2 ? TRAINER_GRAPH_WHOLE : TRAINER_GRAPH_OFF;
        struct trainer *t = make_trainer(be, nccl, 64, widths, 4, 2, me->time_batch);
        trainer_set_buckets(t, mib[k % 2]);
        trainer_set_graph(t, graph);
        for (int s = 0; s < WARMUP; s++)
            trainer_train_step(t);
        void *ev[TIMED + 1];
        double ms[TIMED];
        for (int s = 0; s <= TIMED; s++)
            ev[s] = be->event_create(be);
        nccl->barrier(nccl);
        be->event_record(be, ev[0]);
        for (int s = 0; s < TIMED; s++) {
            trainer_train_step(t);
            be->event_record(be, ev[s + 1]);
        }
        for (int s = 0; s < TIMED; s++)
            ms[s] = be->event_elapsed_ms(be, ev[s], ev[s + 1]);
        for (int s = 0; s <= TIMED; s++)
            be->event_destroy(be, ev[s]);
        if (me->rank == 0)
            printf("{\"tool\":\"test_nccl_ranks\",\"ranks\":%d,\"batch\":%d,\"cuda_graph\":\"%s\","
                   "\"bucket_mib\":%g,\"step_ms_median\":%.4f,\"images_per_s\":%.1f}\n",
                   nccl->world, me->time_batch, graph ? "whole" : "off", mib[k % 2],
                   median(ms, TIMED), me->time_batch * nccl->world / (median(ms, TIMED) * 1e-3));
        trainer_destroy(t);
    }
}

static void *rank_main(void *arg)
{
    struct rank *me = arg;
    struct comm host = {.rank = me->rank,
                        .world = me->g->world,
                        .local_rank = me->rank,
                        .ctx = me->g,
                        .allreduce_sum = group_allreduce,
                        .broadcast = group_broadcast,
                        .barrier = group_barrier,
                        .all_ok = group_all_ok};
    struct backend *be = cuda_backend_create(me->rank, me->err, sizeof me->err);
    if (!group_all_ok(&host, be != NULL)) {
        if (be)
            be->destroy(be);
        return NULL;
    }
    struct comm *nccl = comm_nccl_create(&host, be->stream, me->err, sizeof me->err);
    if (!nccl) {
        be->destroy(be);
        return NULL;
    }
    comm_set_timeout(nccl, 120); /* a hang ends the test with the ranks named */
    check_runs(me, be, nccl);
    if (me->time_batch > 0)
        time_runs(me, be, nccl);
    nccl->destroy(nccl);
    be->destroy(be);
    return NULL;
}

static void compare(const char *what, const float *a, const float *b, size_t n, int must)
{
    if (!memcmp(a, b, n * sizeof(float))) {
        printf("ok   %s: the same bits\n", what);
        return;
    }
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - b[i]) / fmax(fabs(b[i]), 1e-6));
    if (must)
        test_fail("%s: differ (largest relative difference %.3g)", what, worst);
    else
        printf("note %s: differ by up to %.3g relative (NCCL's order of addition)\n", what, worst);
}

/* GPUs a CUDA backend starts on, up to MAX_RANKS (each made and dropped again) */
static int usable_gpus(char *err, size_t errlen)
{
    int n = 0;
    for (; n < MAX_RANKS; n++) {
        struct backend *be = cuda_backend_create(n, err, errlen);
        if (!be)
            break;
        be->destroy(be);
    }
    return n;
}

int main(int argc, char **argv)
{
    char err[512] = "";
    int gpus = usable_gpus(err, sizeof err);
    if (gpus < 2) {
        printf("SKIP: %d usable GPU(s): two or more needed (%s)\n", gpus, err);
        return TEST_SKIP;
    }
    struct group g = {.world = gpus < MAX_RANKS ? gpus : MAX_RANKS};
    pthread_barrier_init(&g.bar, NULL, (unsigned)g.world);
    struct rank ranks[MAX_RANKS];
    pthread_t threads[MAX_RANKS];
    int time_batch = argc > 1 && !strcmp(argv[1], "--time") ? (argc > 2 ? atoi(argv[2]) : 8) : 0;
    for (int r = 0; r < g.world; r++) {
        ranks[r] = (struct rank){.rank = r, .time_batch = time_batch, .g = &g};
        pthread_create(&threads[r], NULL, rank_main, &ranks[r]);
    }
    for (int r = 0; r < g.world; r++)
        pthread_join(threads[r], NULL);
    printf("%d ranks, one GPU each, %d steps of a 32x32 U-Net per run\n", g.world, STEPS);
    for (int r = 0; r < g.world; r++) {
        struct rank *me = &ranks[r];
        if (me->err[0] || !me->w[0]) {
            test_fail("rank %d could not start: %s", r, me->err);
            continue;
        }
        char what[160];
        for (int k = 1; k < RUNS; k++) {
            snprintf(what, sizeof what, "rank %d: %s vs %s, weights", r, runs[k].name,
                     runs[0].name);
            compare(what, me->w[k], me->w[0], me->total, runs[k].mib == 0 || g.world == 2);
            snprintf(what, sizeof what, "rank %d: %s vs %s, EMA", r, runs[k].name, runs[0].name);
            compare(what, me->ema[k], me->ema[0], me->total, runs[k].mib == 0 || g.world == 2);
        }
        snprintf(what, sizeof what, "rank %d against rank 0, weights", r);
        compare(what, me->w[0], ranks[0].w[0], me->total, 1);
        for (int k = 0; k < RUNS; k++)
            free(me->w[k]), free(me->ema[k]);
    }
    pthread_barrier_destroy(&g.bar);
    return test_finish("test_nccl_ranks");
}
