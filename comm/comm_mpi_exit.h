/* comm_mpi_exit.h: ending an MPI job from one rank, in bounded time (private to comm/).
 *
 * MPI_Abort asks the launcher (mpirun's daemons, Slurm's slurmstepd) to kill every rank. A
 * launcher that cannot reach a node (it dropped off the network) may never finish that, and
 * MPI_Abort never returns. So the abort runs on a thread of its own, and a rank that is still
 * alive COMM_MPI_EXIT_GRACE_S later says so and exits by itself (_exit) with the status it
 * was ending with: every rank that can still run ends, whatever the launcher can reach.
 * MPI_Finalize, which waits for every rank, is bounded the same way. */
#ifndef DDIM_COMM_MPI_EXIT_H
#define DDIM_COMM_MPI_EXIT_H

enum { COMM_MPI_EXIT_GRACE_S = 10 };

/* What the rank's last line says if it has to exit by itself (copied; NULL or "": "see the
 * error above"): e.g. "node n2 lost (ranks 2, 3)". */
void comm_mpi_exit_set_reason(const char *reason);

/* util's abort hook: MPI_Abort(MPI_COMM_WORLD, status) on a thread; if this process still
 * lives COMM_MPI_EXIT_GRACE_S later, a last line on stderr and _exit(status). */
void comm_mpi_exit_abort(int status);

/* MPI_Finalize; if it has not returned within limit_s seconds (0: no limit), a last line
 * naming the reason and _exit(status). */
void comm_mpi_exit_finalize(double limit_s, int status);

#endif
