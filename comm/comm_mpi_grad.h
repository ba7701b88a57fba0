/* comm_mpi_grad.h: the MPI communicator's non-blocking gradient all-reduce (comm.h's
 * allreduce_start, _progress, _finish; private to comm_mpi.c). Sums in rank order, so the
 * bits do not depend on how the buffer is cut into buckets (comm_mpi_grad.c). */
#ifndef DDIM_COMM_MPI_GRAD_H
#define DDIM_COMM_MPI_GRAD_H

#include "comm.h"

/* Sets c's allreduce_start/_progress/_finish and their state in c->ctx (after MPI_Init;
 * collective over the world: duplicates it twice). */
void comm_mpi_grad_attach(struct comm *c);
/* Frees them (before MPI_Finalize). */
void comm_mpi_grad_detach(struct comm *c);

#endif
