/* comm_nompi.c: comm_mpi_create for builds without MPI (-DDDIM_MPI=OFF, or AUTO with no MPI
 * found; CMake compiles this file instead of comm_mpi.c). The job is one rank: the returned
 * communicator is comm_single()'s, whose reductions and broadcasts leave buffers as they are
 * (the NCCL communicator over it needs nothing more for one rank: rank 0 makes the id).
 *
 * A launcher that started several ranks (mpirun, srun -n N) is refused: each copy would
 * otherwise train alone on the whole dataset and write the same run directory. */
#include "comm.h"
#include "util.h"

#include <stdlib.h>

/* The number of ranks a launcher says it started (1 when none says more), and which
 * variable said so. */
static long launched_ranks(const char **which)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE",
                                 "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (!v || !*v)
            continue;
        char *end;
        long n = strtol(v, &end, 10);
        if (*end == '\0' && n > 1) {
            *which = vars[i];
            return n;
        }
    }
    return 1;
}

struct comm *comm_mpi_create(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *which = NULL;
    long ranks = launched_ranks(&which);
    if (ranks > 1)
        DDIM_FATAL("this build of ddim-dist has no MPI (configured with DDIM_MPI=OFF or no MPI "
                   "found), but it was started as one of %ld ranks (%s=%ld): run one process, "
                   "or rebuild with MPI (-DDDIM_MPI=ON, e.g. Debian's libopenmpi-dev)",
                   ranks, which, ranks);
    struct comm *c = comm_single();
    util_set_rank(0);
    return c;
}

void comm_timeout_abort(long seq, const char *what, double waited, void (*release)(void *),
                        void *arg)
{
    if (release)
        release(arg);
    DDIM_FATAL("%s (collective #%ld) did not finish within %.0f s (run.collective_timeout_s)", what,
               seq, waited);
}
