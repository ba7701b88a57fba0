/* launch.c: see launch.h. */
#include "launch.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

struct backend *launch_pick_backend(const char *name, struct comm *comm, const char *program)
{
    char err[2048] = "", missing[1024];
    struct backend *be = NULL;
    if (strcmp(name, "cpu") != 0) {
        be = cuda_backend_create(comm->local_rank, err, sizeof err);
        if (be && backend_missing_ops(be, missing, sizeof missing) > 0) {
            snprintf(err, sizeof err, "the CUDA backend lacks the required ops %s", missing);
            be->destroy(be);
            be = NULL;
        }
    }
    int everyone = comm->all_ok(comm, be != NULL);
    if (be && everyone)
        return be;
    if (be)
        be->destroy(be);
    if (!strcmp(name, "cuda")) {
        int train = !strcmp(program, "ddim-dist"); /* the others take --backend */
        DDIM_FATAL("the cuda backend was asked for but %s; to run on the CPU instead, use %s "
                   "(or auto: a GPU when there is one, else the CPU)",
                   err[0] ? err : "another rank cannot use its GPU (see its error)",
                   train ? "--set run.backend=cpu" : "--backend cpu");
    }
    if (strcmp(name, "cpu") != 0)
        util_log("%s: using the CPU backend (%s)\n", program,
                 err[0] ? err : "another rank has no usable GPU");
    return cpu_backend_create();
}

struct comm *launch_comm_for_backend(struct comm *mpi, struct backend *be)
{
#ifdef DDIM_HAVE_CUDA
    if (!strcmp(be->name, "cuda")) {
        char err[1024];
        struct comm *nccl = comm_nccl_create(mpi, be->stream, err, sizeof err);
        if (!nccl)
            DDIM_FATAL("%s", err);
        return nccl;
    }
#endif
    (void)be;
    return mpi;
}

void launch_finish(struct comm *comm, struct backend *be, struct comm *mpi)
{
    if (comm && comm != mpi)
        comm->destroy(comm);
    if (be)
        be->destroy(be);
    if (mpi)
        mpi->destroy(mpi);
}
