/* comm_mpi_grad.c: the MPI communicator's non-blocking gradient all-reduce (comm.h's
 * allreduce_start / _progress / _finish), so that the backward pass goes on while a bucket
 * of gradients travels.
 *
 * The sum is made here, in a fixed order, not by the MPI library: a library's all-reduce
 * adds the ranks' values in an order that depends on the message size and its algorithm
 * (Open MPI 4.1, 3 ranks: MPI_Iallreduce of 1000-float pieces differs from one
 * MPI_Allreduce of the 5000 floats in 648 of them). Here every element is
 * ((g_0 + g_1) + g_2) + ... in rank order, whatever the buckets, so the gradients are the
 * same bits with and without overlap, for any number of ranks; with 2 ranks also the same
 * as MPI_Allreduce's (a + b = b + a). Each bucket: an MPI_Ialltoallv sends piece p of the
 * buffer to rank p (n/W floats each), rank p adds the W copies of its piece in rank order,
 * and an MPI_Iallgatherv gives every rank every sum: the volume of a ring all-reduce.
 *
 * MPI matches collectives by their order on a communicator: the exchanges run on one
 * duplicate of the world and the gathers on another, each in bucket order on every rank
 * (a bucket's gather starts only after the previous bucket's), so neither depends on when
 * a rank happens to see an exchange complete, and neither meets the blocking collectives
 * of MPI_COMM_WORLD. */
#include "comm_mpi_grad.h"
#include "comm_mpi_watchdog.h"
#include "mpi_check.h"
#include "util.h"

#include <stdlib.h>

/* One bucket in flight: exchanging pieces, then gathering the sums (req: the current one). */
struct grad_op {
    float *buf;
    int *counts, *displs; /* per rank: its piece of buf */
    float *copies;        /* (world, my piece): every rank's copy of my piece */
    MPI_Request req;
};

struct mpi_grad {
    MPI_Comm exchange, gather; /* duplicates of the world, one per phase */
    int rank, world;
    struct grad_op *ops;
    int count, cap;
    int gathering; /* ops [0, gathering) have started their gather */
};

/* The most floats one bucket sends (int counts; a larger start is cut into several). */
#define GRAD_MAX_FLOATS ((size_t)1 << 28)

static void op_exchange(struct mpi_grad *g, struct grad_op *op, float *buf, size_t n)
{
    int w = g->world;
    op->buf = buf;
    op->counts = util_xmalloc((size_t)w * sizeof(int));
    op->displs = util_xmalloc((size_t)w * sizeof(int));
    for (int p = 0; p < w; p++) {
        size_t lo = n * (size_t)p / (size_t)w, hi = n * (size_t)(p + 1) / (size_t)w;
        op->displs[p] = (int)lo;
        op->counts[p] = (int)(hi - lo);
    }
    int mine = op->counts[g->rank];
    op->copies = util_xmalloc(((size_t)w * mine + 1) * sizeof(float));
    int *rcounts = util_xmalloc((size_t)w * sizeof(int)), *rdispls = util_xmalloc(w * sizeof(int));
    for (int r = 0; r < w; r++) {
        rcounts[r] = mine;
        rdispls[r] = r * mine;
    }
    MPI_CHECK(MPI_Ialltoallv(buf, op->counts, op->displs, MPI_FLOAT, op->copies, rcounts, rdispls,
                             MPI_FLOAT, g->exchange, &op->req));
    free(rcounts);
    free(rdispls);
}

/* My piece = sum of the ranks' copies in rank order; then every rank's sums to everyone.
 * The ops' gathers start in order (g->gathering). */
static void op_gather(struct mpi_grad *g, struct grad_op *op)
{
    g->gathering++;
    int mine = op->counts[g->rank];
    float *dst = op->buf + op->displs[g->rank];
    for (int j = 0; j < mine; j++) {
        float acc = op->copies[j];
        for (int r = 1; r < g->world; r++)
            acc = acc + op->copies[(size_t)r * mine + j];
        dst[j] = acc;
    }
    MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, op->buf, op->counts, op->displs,
                              MPI_FLOAT, g->gather, &op->req));
}

static void grad_start(struct comm *c, float *buf, size_t n)
{
    struct mpi_grad *g = c->ctx;
    if (g->world == 1)
        return;
    for (size_t off = 0; off < n; off += GRAD_MAX_FLOATS) {
        if (g->count == g->cap) {
            g->cap = g->cap ? 2 * g->cap : 16;
            g->ops = realloc(g->ops, (size_t)g->cap * sizeof *g->ops);
            if (!g->ops)
                DDIM_FATAL("out of host memory for %d gradient all-reduces", g->cap);
        }
        size_t len = n - off < GRAD_MAX_FLOATS ? n - off : GRAD_MAX_FLOATS;
        op_exchange(g, &g->ops[g->count++], buf + off, len);
    }
    c->calls++;
}

/* Buckets whose pieces have arrived get their sums made and sent on, in bucket order,
 * without waiting (MPI_Test also moves the library's transfers along). */
static void grad_progress(struct comm *c)
{
    struct mpi_grad *g = c->ctx;
    while (g->gathering < g->count) {
        int done = 0;
        MPI_CHECK(MPI_Test(&g->ops[g->gathering].req, &done, MPI_STATUS_IGNORE));
        if (!done)
            break;
        op_gather(g, &g->ops[g->gathering]);
    }
}

static void grad_finish(struct comm *c)
{
    struct mpi_grad *g = c->ctx;
    double t0 = util_now();
    comm_watchdog_enter("the gradient all-reduce (MPI_Ialltoallv, MPI_Iallgatherv)");
    while (g->gathering < g->count) {
        struct grad_op *op = &g->ops[g->gathering];
        MPI_CHECK(MPI_Wait(&op->req, MPI_STATUS_IGNORE));
        op_gather(g, op);
    }
    for (int i = 0; i < g->count; i++) {
        MPI_CHECK(MPI_Wait(&g->ops[i].req, MPI_STATUS_IGNORE));
        free(g->ops[i].counts), free(g->ops[i].displs), free(g->ops[i].copies);
    }
    comm_watchdog_leave();
    g->count = g->gathering = 0;
    c->seconds += util_now() - t0;
}

void comm_mpi_grad_attach(struct comm *c)
{
    struct mpi_grad *g = util_xcalloc(1, sizeof *g);
    g->rank = c->rank;
    g->world = c->world;
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &g->exchange));
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &g->gather));
    c->ctx = g;
    c->allreduce_start = grad_start;
    c->allreduce_progress = grad_progress;
    c->allreduce_finish = grad_finish;
}

void comm_mpi_grad_detach(struct comm *c)
{
    struct mpi_grad *g = c->ctx;
    if (!g)
        return;
    MPI_Comm_free(&g->exchange);
    MPI_Comm_free(&g->gather);
    free(g->ops);
    free(g);
    c->ctx = NULL;
}
