/* comm.h: the communicator every rank talks through. One interface, two transports: MPI
 * on host buffers (CPU backend) and NCCL on device buffers (CUDA backend). A single
 * process without MPI uses comm_single(), whose reductions do nothing. */
#ifndef DDIM_COMM_H
#define DDIM_COMM_H

#include <stddef.h>

struct comm {
    int rank, world; /* this rank and the number of ranks */
    int local_rank;  /* rank on this node: picks the GPU */
    void *ctx;       /* transport state */
    /* buf (n floats, backend memory) = sum over ranks of buf, in place */
    void (*allreduce_sum)(struct comm *c, float *buf, size_t n);
    /* buf (bytes, backend memory) = rank 0's buf */
    void (*broadcast)(struct comm *c, void *buf, size_t bytes);
    void (*barrier)(struct comm *c);
    /* 1 if every rank passed ok != 0, else 0 (host values; lets all ranks stop together
     * when one of them cannot start, instead of the others waiting in a collective) */
    int (*all_ok)(struct comm *c, int ok);
    void (*destroy)(struct comm *c);
    /* run.collective_timeout_s: a rank that has not reached a collective this many seconds
     * after another did ends the job with an error naming it (0: wait forever). NULL
     * where no rank can be missing (one rank). */
    void (*set_timeout)(struct comm *c, double seconds);
    /* Transports whose collectives can be recorded in a CUDA graph (NCCL; NULL elsewhere):
     * called after such a graph was launched, it times the launched work as the collective
     * timeout times one collective (an event recorded after it, which the watchdog polls).
     * Collectives enqueued while the stream is being captured are not watched one by one. */
    void (*watch)(struct comm *c, const char *what);
    /* The gradient's all-reduce in pieces, overlapped with the backward pass (NULL where a
     * transport has none: then allreduce_sum after the backward pass). start begins buf (n
     * floats, backend memory) = the sum over ranks and returns at once; progress lets it move
     * on (MPI: the library progresses only inside its calls; NULL for NCCL, whose kernels
     * run by themselves); finish completes every started one before the caller's next work
     * (NCCL: the stream waits; MPI: waits). MPI sums in rank order, so the bits do not depend
     * on the pieces (comm_mpi_grad.c); NCCL's own sum may for more than 2 ranks. */
    void (*allreduce_start)(struct comm *c, float *buf, size_t n);
    void (*allreduce_progress)(struct comm *c);
    void (*allreduce_finish)(struct comm *c);
    /* time spent in allreduce_sum and broadcast, and their count, for the report */
    double seconds;
    long calls;
};

/* The exit status of a job ended because a rank or node did not reach a collective within
 * run.collective_timeout_s (sysexits' EX_TEMPFAIL: the job may be started again, e.g.
 * requeued; slurm/train.sh waits for Slurm to requeue it). */
enum { COMM_EXIT_RANK_LOST = 75 };

/* The collective timeout where the transport has one (see set_timeout). */
static inline void comm_set_timeout(struct comm *c, double seconds)
{
    if (c->set_timeout)
        c->set_timeout(c, seconds);
}

/* comm->watch where the transport has it. */
static inline void comm_watch(struct comm *c, const char *what)
{
    if (c->watch)
        c->watch(c, what);
}

/* For transports that wait asynchronously (NCCL): a collective, the seq-th of its kind on
 * every rank, has not finished `waited` seconds after it was started. Learns from the other
 * ranks (over MPI) which ranks never reached it, calls release(arg) (e.g. ncclCommAbort),
 * prints an error naming them and ends the job. Never returns. */
void comm_timeout_abort(long seq, const char *what, double waited, void (*release)(void *),
                        void *arg);

/* A one-rank communicator: reductions and broadcasts leave buffers as they are. */
struct comm *comm_single(void);

/* Initializes MPI (a program started without mpirun is a job of one rank) and returns the
 * host-buffer communicator over MPI_COMM_WORLD. Sets util's rank and abort hook. In a build
 * without MPI (comm_nompi.c) it returns a one-rank communicator, and stops with an error
 * if the launcher started several ranks. */
struct comm *comm_mpi_create(int *argc, char ***argv);

/* The device-buffer communicator for the CUDA backend: NCCL over the ranks of `mpi`, its
 * collectives enqueued on `stream` (the backend's cudaStream_t). mpi and the stream stay
 * their creators': both must outlive it (destroy it first; launch_finish does). NULL with
 * a message (e.g. a run-time NCCL older than the one built against) on every rank if any
 * rank fails. Only in builds with the CUDA backend. */
struct comm *comm_nccl_create(struct comm *mpi, void *stream, char *err, size_t errlen);

#endif
