/* comm_mpi_watchdog.h: the collective timeout of the MPI communicator (private to
 * comm_mpi.c and comm_timeout_abort). A thread watches the collective the rank is waiting
 * in; when it has waited longer than run.collective_timeout_s, the ranks that waited tell
 * each other so (point-to-point, on a duplicate of the world communicator), and the
 * lowest of them names the ranks that never came, with their hosts (gathered at start-up),
 * says "node H lost" for a host none of whose ranks came, and ends the job with
 * COMM_EXIT_RANK_LOST through the bounded MPI_Abort of comm_mpi_exit.h: a stopped or hung
 * rank, or a node that dropped off the network, never leaves the others waiting forever.
 * Every rank runs its own watchdog, so every rank that waits ends. Needs
 * MPI_THREAD_MULTIPLE; without it the waiting rank still ends the job, unable to name the
 * missing ranks. */
#ifndef DDIM_COMM_MPI_WATCHDOG_H
#define DDIM_COMM_MPI_WATCHDOG_H

#include <mpi.h>

/* Starts the thread (after MPI_Init_thread; `multiple`: MPI_THREAD_MULTIPLE provided), then
 * gathers every rank's host name and local rank (named when a rank is missing). Collective
 * over the world (duplicates it). Timeout 600 s until comm_watchdog_set_timeout. */
void comm_watchdog_start(int multiple, int local_rank);
void comm_watchdog_set_timeout(double seconds);
double comm_watchdog_timeout(void);
/* Rank 0 prints where the ranks run: "ddim-dist: 4 ranks on 2 node(s): n1: rank(s) 0 (local
 * 0), 1 (local 1); n2: ...". Nothing for one rank. */
void comm_watchdog_log_placement(void);
/* Around each blocking collective; `what` names it in the message. */
void comm_watchdog_enter(const char *what);
void comm_watchdog_leave(void);
/* Ends the thread and frees the duplicate (before MPI_Finalize). */
void comm_watchdog_stop(void);

#endif
