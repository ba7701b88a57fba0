/* comm_mpi.c: the MPI communicator: job start-up, rank / world / local rank, and
 * all-reduce and broadcast on host buffers (the CPU backend's transport; the CUDA backend
 * uses NCCL for device buffers, with MPI only to start up and share the NCCL id).
 *
 * A rank that fails calls MPI_Abort through util's abort hook, so the whole job stops
 * with that rank's message instead of the others waiting forever in a collective (bounded:
 * a rank whose MPI_Abort cannot end the job exits by itself, comm_mpi_exit.h); a rank that
 * hangs or is stopped, or a node lost, is named by the others' watchdog
 * (comm_mpi_watchdog.h). */
#include "comm.h"
#include "comm_mpi_exit.h"
#include "comm_mpi_grad.h"
#include "comm_mpi_watchdog.h"
#include "mpi_check.h"
#include "util.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

static void mpi_allreduce(struct comm *c, float *buf, size_t n)
{
    double t0 = util_now();
    /* MPI counts are int: reduce in pieces of at most 2^30 floats */
    for (size_t off = 0; off < n; off += (size_t)1 << 30) {
        size_t len = n - off < ((size_t)1 << 30) ? n - off : ((size_t)1 << 30);
        comm_watchdog_enter("MPI_Allreduce (sum)");
        MPI_CHECK(
            MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)len, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
        comm_watchdog_leave();
    }
    c->seconds += util_now() - t0;
    c->calls++;
}

static void mpi_broadcast(struct comm *c, void *buf, size_t bytes)
{
    double t0 = util_now();
    for (size_t off = 0; off < bytes; off += (size_t)1 << 30) {
        size_t len = bytes - off < ((size_t)1 << 30) ? bytes - off : ((size_t)1 << 30);
        comm_watchdog_enter("MPI_Bcast");
        MPI_CHECK(MPI_Bcast((char *)buf + off, (int)len, MPI_BYTE, 0, MPI_COMM_WORLD));
        comm_watchdog_leave();
    }
    c->seconds += util_now() - t0;
    c->calls++;
}

static int mpi_all_ok(struct comm *c, int ok)
{
    int mine = ok != 0, all = 0;
    comm_watchdog_enter("MPI_Allreduce (all ranks ok?)");
    MPI_CHECK(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    comm_watchdog_leave();
    return all;
}

static void mpi_barrier(struct comm *c)
{
    comm_watchdog_enter("MPI_Barrier");
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    comm_watchdog_leave();
}

static void mpi_set_timeout(struct comm *c, double seconds)
{
    comm_watchdog_set_timeout(seconds);
}

static void mpi_destroy(struct comm *c)
{
    comm_mpi_grad_detach(c);
    double limit = c->world > 1 ? comm_watchdog_timeout() : 0;
    comm_watchdog_stop();
    util_set_abort_hook(NULL);
    /* MPI_Finalize waits for every rank: a node lost after the last collective would leave
     * the others there forever */
    comm_mpi_exit_finalize(limit, COMM_EXIT_RANK_LOST);
    free(c);
}

/* The rank on this node: from a shared-memory split of the world, else the launcher's. */
static int find_local_rank(void)
{
    MPI_Comm node;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) ==
        MPI_SUCCESS) {
        int local = 0;
        MPI_CHECK(MPI_Comm_rank(node, &local));
        MPI_CHECK(MPI_Comm_free(&node));
        return local;
    }
    const char *vars[] = {"SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return atoi(v);
    }
    return 0;
}

struct comm *comm_mpi_create(int *argc, char ***argv)
{
    int provided;
    /* MULTIPLE: the watchdog thread exchanges its notes while the main thread waits */
    MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    struct comm *c = util_xcalloc(1, sizeof *c);
    mpi_errors_return();
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &c->rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &c->world));
    c->local_rank = find_local_rank();
    c->allreduce_sum = mpi_allreduce;
    c->broadcast = mpi_broadcast;
    c->barrier = mpi_barrier;
    c->all_ok = mpi_all_ok;
    c->destroy = mpi_destroy;
    util_set_rank(c->rank);
    if (c->world > 1) {
        util_set_abort_hook(comm_mpi_exit_abort);
        c->set_timeout = mpi_set_timeout;
    }
    comm_watchdog_start(provided >= MPI_THREAD_MULTIPLE, c->local_rank);
    comm_watchdog_log_placement();
    comm_mpi_grad_attach(c);
    return c;
}
