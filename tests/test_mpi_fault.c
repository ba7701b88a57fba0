/* test_mpi_fault.c: a rank that fails must end the whole job (driven by
 * tests/mpi/test_rank_dies.sh). Rank 1 fails through the trainer's one error path,
 * DDIM_FATAL, after a few all-reduces; the other ranks keep calling all-reduce, where they
 * would wait forever if the failure did not abort the job.
 * With --bad-call (one rank): an MPI call that fails (a broadcast from a rank that does not
 * exist) must be reported by MPI_CHECK with the rank, host and call, which it can only be
 * when the communicator has set MPI_ERRORS_RETURN (tests/CMakeLists.txt: test_mpi_check).
 * With --fail-when FILE: rank 1 fails once FILE exists (the test stops the launcher first,
 * so that MPI_Abort cannot end the job: rank 1 must then exit by itself). */
#define _POSIX_C_SOURCE 200809L
#include "comm.h"
#include "mpi_check.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct comm *comm = comm_mpi_create(&argc, &argv);
    float x[4] = {1, 2, 3, 4};
    if (argc > 1 && !strcmp(argv[1], "--bad-call")) {
        MPI_CHECK(MPI_Bcast(x, 4, MPI_FLOAT, comm->world + 7, MPI_COMM_WORLD));
        fprintf(stderr, "test_mpi_fault: the bad broadcast returned success\n");
        return 0; /* expect_exit.sh wants an error */
    }
    const char *when = argc > 2 && !strcmp(argv[1], "--fail-when") ? argv[2] : NULL;
    if (when && comm->rank == 1) {
        printf("test_mpi_fault: rank 1 waits for %s\n", when);
        fflush(stdout);
        struct timespec tick = {0, 50 * 1000000L};
        while (access(when, F_OK) != 0)
            nanosleep(&tick, NULL);
    }
    for (int i = 0;; i++) {
        if (comm->rank == 1 && i == 3)
            DDIM_FATAL("test_mpi_fault: rank 1 fails on purpose at iteration %d", i);
        comm->allreduce_sum(comm, x, 4);
        if (i > 1000000)
            break; /* unreachable in a passing run: the job is aborted long before */
    }
    comm->destroy(comm);
    return 0;
}
