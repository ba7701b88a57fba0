/* launch.h: what every program (ddim-dist, ddim-bench, ddim-sample, ddim-kid) does at
 * start-up: choose the backend all ranks will use, and the communicator that fits it. */
#ifndef DDIM_LAUNCH_H
#define DDIM_LAUNCH_H

#include "backend.h"
#include "comm.h"

/* The backend every rank uses: the CUDA backend on GPU local_rank when `name` is "cuda" (a
 * fatal error naming the rank if any rank cannot have a complete one) or "auto" (used only
 * if every rank can); otherwise the CPU backend. All ranks decide together. `program`
 * prefixes the note printed when auto falls back to the CPU. */
struct backend *launch_pick_backend(const char *name, struct comm *comm, const char *program);

/* NCCL over the ranks of mpi for the CUDA backend's device buffers; mpi itself (host
 * buffers) for the CPU backend. mpi stays the caller's: it must outlive the result. */
struct comm *launch_comm_for_backend(struct comm *mpi, struct backend *be);

/* The teardown that matches the calls above (and comm_mpi_create), in the reverse order of
 * creation: the backend's communicator (NCCL synchronizes and releases what it enqueued on the
 * backend's stream, so it goes while that stream exists), then the backend (its stream and
 * context), then mpi (MPI_Finalize). comm may be mpi itself (CPU backend): then it goes once. */
void launch_finish(struct comm *comm, struct backend *be, struct comm *mpi);

#endif
