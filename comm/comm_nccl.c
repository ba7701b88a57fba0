/* comm_nccl.c: the NCCL communicator for the CUDA backend. Reductions and broadcasts run
 * on device buffers without a host synchronization: each on a side stream that waits for
 * the backend's stream (an event) and is waited for by it, so that they sit between
 * kernels (synchronized BatchNorm's small all-reduces); the gradient's pieces
 * (allreduce_start) are not waited for until allreduce_finish, so they overlap the rest of
 * the backward pass. All collectives share the side stream: NCCL runs them in the order
 * they were issued, the same on every rank, so they cannot wait on each other across
 * ranks. MPI starts the job, carries the NCCL unique id from rank 0 to the others, and
 * answers all_ok. Built only with the CUDA backend.
 *
 * The collective timeout: NCCL collectives never block the host, so a rank that does not
 * arrive shows as a collective that never finishes. An event is recorded after each one; a
 * watchdog thread polls it and ncclCommGetAsyncError, and when the last collective has not
 * finished run.collective_timeout_s after it was enqueued (or NCCL reports an error), it
 * aborts the communicator (ncclCommAbort) and ends the job naming the ranks that never
 * arrived (comm_timeout_abort asks the others over MPI).
 *
 * CUDA graphs: collectives enqueued while the backend's stream is captured are recorded in
 * the graph (NCCL >= 2.9); the backend captures in cudaStreamCaptureModeThreadLocal, so the
 * watchdog thread's cudaEventQuery does not spoil the capture, and the trainer calls
 * comm->watch after each launch: the event then follows the whole graph. */
#define _POSIX_C_SOURCE 200809L
#include "comm.h"
#include "util.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct nccl_state {
    struct comm *mpi; /* the job's MPI communicator (not owned): start-up, all_ok, barrier */
    ncclComm_t nccl;
    cudaStream_t stream; /* the backend's: the step's work */
    cudaStream_t side;   /* every collective runs here, after fork, so that the gradient's
                          * pieces overlap the backward pass; one stream keeps NCCL's
                          * operations in the order they were issued on every rank */
    cudaEvent_t fork, join;
    int device;
    /* the watchdog */
    cudaEvent_t done;           /* recorded after the last collective */
    atomic_llong enqueued_us;   /* when the last collective was enqueued; 0: it finished */
    atomic_long seq;            /* collectives enqueued so far (the same on every rank) */
    _Atomic(const char *) what; /* the last one's name */
    atomic_llong timeout_us;    /* 0: no timeout */
    atomic_int stop;
    pthread_t thread;
    int running;
};

/* NCCL's member of the check family (mpi_check.h): rank, host, file:line (DDIM_FATAL), the
 * call, NCCL's error string and its last error message, which says what went wrong in
 * words (a peer that left, a transport that failed); COMM may be NULL before one exists. */
#define NCCL_CHECK(comm, expr)                                                                     \
    do {                                                                                           \
        ncclResult_t nccl_check_r_ = (expr);                                                       \
        if (nccl_check_r_ != ncclSuccess)                                                          \
            DDIM_FATAL("NCCL error %d in %s: %s (%s)", (int)nccl_check_r_, #expr,                  \
                       ncclGetErrorString(nccl_check_r_), ncclGetLastError(comm));                 \
    } while (0)

static struct nccl_state *state(struct comm *c)
{
    return c->ctx;
}

static long long now_us(void)
{
    return (long long)(util_now() * 1e6);
}

/* After enqueueing a collective (or launching a graph of them): the event the watchdog
 * polls. Not while the stream is captured: the work is recorded, not run, and an event
 * recorded in a capture cannot be queried; the graph's launch is watched instead. */
static void watch_collective(struct nccl_state *s, const char *what)
{
    if (!s->running)
        return;
    enum cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(s->stream, &capturing) != cudaSuccess ||
        capturing != cudaStreamCaptureStatusNone)
        return;
    cudaEventRecord(s->done, s->stream);
    atomic_store(&s->what, what);
    atomic_fetch_add(&s->seq, 1);
    atomic_store(&s->enqueued_us, now_us());
}

static void release_nccl(void *arg)
{
    ncclCommAbort(((struct nccl_state *)arg)->nccl); /* frees the kernels that wait */
}

static void *watch(void *arg)
{
    struct nccl_state *s = arg;
    cudaSetDevice(s->device);
    struct timespec tick = {0, 200 * 1000000L};
    while (!atomic_load(&s->stop)) {
        nanosleep(&tick, NULL);
        ncclResult_t async = ncclSuccess;
        if (ncclCommGetAsyncError(s->nccl, &async) == ncclSuccess && async != ncclSuccess &&
            async != ncclInProgress) {
            const char *last = ncclGetLastError(s->nccl); /* before the abort clears it */
            char why[512];
            snprintf(why, sizeof why, "%s", last ? last : "");
            release_nccl(s);
            DDIM_FATAL("NCCL reported an error during a collective: %s (%s; another rank failed?)",
                       ncclGetErrorString(async), why);
        }
        long long since = atomic_load(&s->enqueued_us), limit = atomic_load(&s->timeout_us);
        if (since == 0)
            continue;
        if (cudaEventQuery(s->done) == cudaSuccess) { /* finished, unless re-recorded since */
            atomic_compare_exchange_strong(&s->enqueued_us, &since, 0);
            continue;
        }
        if (limit > 0 && now_us() - since > limit)
            comm_timeout_abort(atomic_load(&s->seq), atomic_load(&s->what), limit / 1e6,
                               release_nccl, s);
    }
    return NULL;
}

static void nccl_set_timeout(struct comm *c, double seconds)
{
    struct nccl_state *s = state(c);
    atomic_store(&s->timeout_us, (long long)(seconds * 1e6));
    comm_set_timeout(s->mpi, seconds); /* all_ok and barrier go over MPI */
}

/* The side stream waits for the work enqueued so far on the backend's stream... */
static void side_fork(struct nccl_state *s)
{
    if (cudaEventRecord(s->fork, s->stream) != cudaSuccess ||
        cudaStreamWaitEvent(s->side, s->fork, 0) != cudaSuccess)
        DDIM_FATAL("cannot order NCCL's stream after the backend's (cudaEventRecord, "
                   "cudaStreamWaitEvent)");
}

/* ... and the backend's stream for every collective on the side stream so far. */
static void side_join(struct nccl_state *s)
{
    if (cudaEventRecord(s->join, s->side) != cudaSuccess ||
        cudaStreamWaitEvent(s->stream, s->join, 0) != cudaSuccess)
        DDIM_FATAL("cannot order the backend's stream after NCCL's (cudaEventRecord, "
                   "cudaStreamWaitEvent)");
}

static void nccl_allreduce(struct comm *c, float *buf, size_t n)
{
    struct nccl_state *s = state(c);
    c->calls++;
    if (c->world == 1) /* the sum of one: nothing to enqueue, not even the side stream's order */
        return;
    side_fork(s);
    NCCL_CHECK(s->nccl, ncclAllReduce(buf, buf, n, ncclFloat32, ncclSum, s->nccl, s->side));
    side_join(s);
    watch_collective(s, "ncclAllReduce");
}

static void nccl_broadcast(struct comm *c, void *buf, size_t bytes)
{
    struct nccl_state *s = state(c);
    c->calls++;
    if (c->world == 1)
        return;
    side_fork(s);
    NCCL_CHECK(s->nccl, ncclBroadcast(buf, buf, bytes, ncclUint8, 0, s->nccl, s->side));
    side_join(s);
    watch_collective(s, "ncclBroadcast");
}

/* A piece of the gradient: summed on the side stream while the backend's goes on */
static void nccl_grad_start(struct comm *c, float *buf, size_t n)
{
    struct nccl_state *s = state(c);
    side_fork(s);
    NCCL_CHECK(s->nccl, ncclAllReduce(buf, buf, n, ncclFloat32, ncclSum, s->nccl, s->side));
    c->calls++;
}

static void nccl_grad_finish(struct comm *c)
{
    struct nccl_state *s = state(c);
    side_join(s);
    watch_collective(s, "the gradient's ncclAllReduce");
}

static void nccl_watch(struct comm *c, const char *what)
{
    watch_collective(state(c), what);
}

static void nccl_barrier(struct comm *c)
{
    struct nccl_state *s = state(c);
    if (cudaStreamSynchronize(s->stream) != cudaSuccess)
        DDIM_FATAL("cudaStreamSynchronize failed before a barrier");
    s->mpi->barrier(s->mpi);
}

static int nccl_all_ok(struct comm *c, int ok)
{
    return state(c)->mpi->all_ok(state(c)->mpi, ok);
}

/* Leaves mpi and the stream to their creators. The stream still exists here (the caller
 * destroys this communicator before the backend): waiting on it makes every collective
 * enqueued there finish before the communicator goes. */
static void nccl_destroy(struct comm *c)
{
    struct nccl_state *s = state(c);
    if (s->running) { /* the watchdog first: it polls the stream's event */
        atomic_store(&s->stop, 1);
        pthread_join(s->thread, NULL);
    }
    cudaError_t e = cudaStreamSynchronize(s->stream);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(s->side);
    if (e != cudaSuccess)
        fprintf(stderr,
                "ddim-dist: warning: rank %d: cudaStreamSynchronize before ncclCommDestroy: %s\n",
                c->rank, cudaGetErrorString(e));
    if (s->running)
        cudaEventDestroy(s->done);
    cudaEventDestroy(s->fork);
    cudaEventDestroy(s->join);
    cudaStreamDestroy(s->side);
    ncclResult_t r = ncclCommDestroy(s->nccl);
    if (r != ncclSuccess)
        fprintf(stderr, "ddim-dist: warning: rank %d: ncclCommDestroy: %s (%s)\n", c->rank,
                ncclGetErrorString(r), ncclGetLastError(NULL));
    free(s);
    free(c);
}

/* Version check: the library found at run time must be at least the one built against. */
static int nccl_version_ok(char *err, size_t errlen)
{
    int runtime = 0;
    if (ncclGetVersion(&runtime) != ncclSuccess)
        return util_error(err, errlen, "ncclGetVersion failed: is libnccl.so.2 loadable?");
    if (runtime < NCCL_VERSION_CODE)
        return util_error(err, errlen,
                          "NCCL %d at run time is older than the %d this ddim-dist was built "
                          "with: load a newer NCCL (LD_LIBRARY_PATH) or rebuild",
                          runtime, NCCL_VERSION_CODE);
    return 0;
}

struct comm *comm_nccl_create(struct comm *mpi, void *stream, char *err, size_t errlen)
{
    int ok = nccl_version_ok(err, errlen) == 0;
    if (!mpi->all_ok(mpi, ok)) {
        if (ok)
            util_error(err, errlen, "NCCL is unusable on another rank (see its error)");
        return NULL;
    }
    ncclUniqueId id;
    if (mpi->rank == 0)
        NCCL_CHECK(NULL, ncclGetUniqueId(&id));
    mpi->broadcast(mpi, &id, sizeof id); /* host memory: the MPI communicator */
    struct nccl_state *s = util_xcalloc(1, sizeof *s);
    s->mpi = mpi;
    s->stream = (cudaStream_t)stream;
    cudaError_t ce = cudaStreamCreateWithFlags(&s->side, cudaStreamNonBlocking);
    if (ce == cudaSuccess)
        ce = cudaEventCreateWithFlags(&s->fork, cudaEventDisableTiming);
    if (ce == cudaSuccess)
        ce = cudaEventCreateWithFlags(&s->join, cudaEventDisableTiming);
    ncclResult_t r =
        ce == cudaSuccess ? ncclCommInitRank(&s->nccl, mpi->world, id, mpi->rank) : ncclSystemError;
    if (!mpi->all_ok(mpi, r == ncclSuccess)) {
        util_error(err, errlen, "ncclCommInitRank failed on rank %d: %s (%s; CUDA: %s)", mpi->rank,
                   ncclGetErrorString(r), ncclGetLastError(NULL), cudaGetErrorString(ce));
        if (r == ncclSuccess) /* this rank's init worked, another's did not: release it */
            ncclCommAbort(s->nccl);
        if (s->join)
            cudaEventDestroy(s->join);
        if (s->fork)
            cudaEventDestroy(s->fork);
        if (s->side)
            cudaStreamDestroy(s->side);
        free(s);
        return NULL;
    }
    struct comm *c = util_xcalloc(1, sizeof *c);
    c->rank = mpi->rank;
    c->world = mpi->world;
    c->local_rank = mpi->local_rank;
    c->ctx = s;
    c->allreduce_sum = nccl_allreduce;
    c->broadcast = nccl_broadcast;
    c->barrier = nccl_barrier;
    c->all_ok = nccl_all_ok;
    c->destroy = nccl_destroy;
    c->set_timeout = nccl_set_timeout;
    c->watch = nccl_watch;
    c->allreduce_start = nccl_grad_start;
    c->allreduce_finish = nccl_grad_finish;
    atomic_store(&s->timeout_us, 600LL * 1000000);
    cudaGetDevice(&s->device);
    if (mpi->world > 1 &&
        cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming) == cudaSuccess) {
        s->running = pthread_create(&s->thread, NULL, watch, s) == 0;
        if (!s->running) /* no watchdog: nccl_destroy frees the event only when one runs */
            cudaEventDestroy(s->done);
    }
    return c;
}
