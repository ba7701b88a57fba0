/* comm_mpi_exit.c: see comm_mpi_exit.h. */
#define _POSIX_C_SOURCE 200809L
#include "comm_mpi_exit.h"
#include "util.h"

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char exit_reason[768];

void comm_mpi_exit_set_reason(const char *reason)
{
    snprintf(exit_reason, sizeof exit_reason, "%s", reason ? reason : "");
}

/* The rank's last words before _exit: one line, written at once (no stdio locks: another
 * thread may be inside stdio when this runs). */
static void comm_mpi_exit_last_line(int status, const char *what)
{
    char host[256] = "?", line[1400];
    gethostname(host, sizeof host - 1);
    int n = snprintf(
        line, sizeof line, "ddim-dist: rank %d on %s: %s; exiting by itself with status %d: %s\n",
        util_rank(), host, what, status, exit_reason[0] ? exit_reason : "see the error above");
    if (n > 0 && write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1))
        fsync(STDERR_FILENO); /* a pipe or terminal ignores it; a file gets the line */
}

static void comm_mpi_exit_sleep(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) /* a signal handler ran: sleep the rest */
        ;
}

static void *comm_mpi_exit_abort_thread(void *arg)
{
    MPI_Abort(MPI_COMM_WORLD, (int)(intptr_t)arg);
    return NULL;
}

void comm_mpi_exit_abort(int status)
{
    pthread_t t;
    fflush(NULL);
    if (pthread_create(&t, NULL, comm_mpi_exit_abort_thread, (void *)(intptr_t)status) != 0)
        MPI_Abort(MPI_COMM_WORLD, status); /* no thread to spare: the abort, unbounded */
    comm_mpi_exit_sleep(COMM_MPI_EXIT_GRACE_S);
    char what[128];
    snprintf(what, sizeof what, "MPI_Abort has not ended the job within %d s",
             COMM_MPI_EXIT_GRACE_S);
    comm_mpi_exit_last_line(status, what);
    _exit(status);
}

static struct {
    double limit_s;
    int status;
    atomic_int done;
} fin;

static void *comm_mpi_exit_finalize_thread(void *unused)
{
    (void)unused;
    comm_mpi_exit_sleep(fin.limit_s);
    if (atomic_load(&fin.done))
        return NULL;
    char what[160];
    snprintf(what, sizeof what,
             "MPI_Finalize has not returned within %.0f s (run.collective_timeout_s): a rank "
             "or node was lost at the end",
             fin.limit_s);
    comm_mpi_exit_last_line(fin.status, what);
    _exit(fin.status);
}

void comm_mpi_exit_finalize(double limit_s, int status)
{
    pthread_t t;
    fin.limit_s = limit_s;
    fin.status = status;
    if (limit_s > 0 && pthread_create(&t, NULL, comm_mpi_exit_finalize_thread, NULL) == 0)
        pthread_detach(t);
    MPI_Finalize();
    atomic_store(&fin.done, 1);
}
