/* launch.h: what every program that trains or times a step does at start-up: choose the
 * backend all ranks will use, and the communicator that fits it. */
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
 * buffers) for the CPU backend. Takes ownership of mpi when it wraps it. */
struct comm *launch_comm_for_backend(struct comm *mpi, struct backend *be);

#endif
