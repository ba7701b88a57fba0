/* comm_mpi_watchdog.h: the collective timeout of the MPI communicator (private to
 * comm_mpi.c and comm_timeout_abort). A thread watches the collective the rank is waiting
 * in; when it has waited longer than run.collective_timeout_s, the ranks that waited tell
 * each other so (point-to-point, on a duplicate of the world communicator), and the
 * lowest of them names the ranks that never came and ends the job with MPI_Abort: a
 * stopped or hung rank never leaves the others waiting forever. Needs
 * MPI_THREAD_MULTIPLE; without it the waiting rank still ends the job, unable to name the
 * missing ranks. */
#ifndef DDIM_COMM_MPI_WATCHDOG_H
#define DDIM_COMM_MPI_WATCHDOG_H

#include <mpi.h>

/* Starts the thread (after MPI_Init_thread; `multiple`: MPI_THREAD_MULTIPLE provided).
 * Collective over the world (duplicates it). Timeout 600 s until comm_watchdog_set_timeout. */
void comm_watchdog_start(int multiple);
void comm_watchdog_set_timeout(double seconds);
/* Around each blocking collective; `what` names it in the message. */
void comm_watchdog_enter(const char *what);
void comm_watchdog_leave(void);
/* Ends the thread and frees the duplicate (before MPI_Finalize). */
void comm_watchdog_stop(void);

#endif
