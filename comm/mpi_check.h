/* mpi_check.h: MPI_CHECK, the MPI member of the check family (CUDA_CHECK, CUDNN_CHECK,
 * NCCL_CHECK, H5_CHECK): a failed call ends the program through DDIM_FATAL, naming the
 * rank, the host, file:line, the call and MPI's error string. It can fire only because
 * mpi_errors_return() is called right after MPI_Init: MPI's default handler,
 * MPI_ERRORS_ARE_FATAL, would abort inside the library before the call returns. Internal
 * to comm/. */
#ifndef DDIM_MPI_CHECK_H
#define DDIM_MPI_CHECK_H

#include "util.h"

#include <mpi.h>

static inline void mpi_check_at(const char *file, int line, int rc, const char *call)
{
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING] = "";
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        util_fatal_at(file, line, "MPI error %d in %s: %s", rc, call, msg);
    }
}

#define MPI_CHECK(expr) mpi_check_at(__FILE__, __LINE__, (expr), #expr)

/* MPI calls on the world (and communicators duplicated from it) return their errors. */
static inline void mpi_errors_return(void)
{
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

#endif
