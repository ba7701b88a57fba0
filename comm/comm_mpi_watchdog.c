/* comm_mpi_watchdog.c: see comm_mpi_watchdog.h. */
#define _POSIX_C_SOURCE 200809L
#include "comm_mpi_watchdog.h"
#include "comm.h"
#include "mpi_check.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* MPI tags of the notes "I have waited in collective #seq": one per kind of collective,
 * since MPI and NCCL collectives are counted apart. */
enum { TAG_MPI = 7301, TAG_NCCL = 7302 };

static struct {
    pthread_t thread;
    int running, multiple, rank, world;
    MPI_Comm comm;              /* the world's duplicate: the notes */
    atomic_int stop;            /* asks the thread to end */
    atomic_long seq;            /* MPI collectives entered so far */
    atomic_llong entered_us;    /* when the current one was entered; 0: none */
    _Atomic(const char *) what; /* its name */
    atomic_llong timeout_us;    /* 0: no timeout */
    atomic_flag fired;          /* one report per process */
} wd = {.fired = ATOMIC_FLAG_INIT};

static long long now_us(void)
{
    return (long long)(util_now() * 1e6);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void comm_watchdog_set_timeout(double seconds)
{
    atomic_store(&wd.timeout_us, (long long)(seconds * 1e6));
}

void comm_watchdog_enter(const char *what)
{
    atomic_store(&wd.what, what);
    atomic_fetch_add(&wd.seq, 1);
    atomic_store(&wd.entered_us, now_us());
}

void comm_watchdog_leave(void)
{
    atomic_store(&wd.entered_us, 0);
}

/* "1, 3" of the ranks not marked in arrived, into out. */
static void list_missing(const char *arrived, char *out, size_t len)
{
    size_t j = 0;
    out[0] = '\0';
    for (int r = 0; r < wd.world && j + 16 < len; r++)
        if (!arrived[r])
            j += (size_t)snprintf(out + j, len - j, "%s%d", j ? ", " : "", r);
    if (!j)
        snprintf(out, len, "none (the collective was about to complete)");
}

/* The note exchange: tells every rank that this one waited in collective #seq, and
 * collects the others' notes for a grace period (the ranks that wait time out at about the
 * same moment). A note of a later collective counts: that rank got past this one. Its calls
 * are left unchecked on purpose: they run while ranks are dying, and a failure here must
 * not hide the report that follows. */
static void collect_notes(int tag, long seq, char *arrived, double grace)
{
    static long long note;
    note = seq;
    MPI_Request *req = calloc((size_t)wd.world, sizeof *req);
    for (int r = 0; req && r < wd.world; r++)
        if (r != wd.rank)
            MPI_Isend(&note, 1, MPI_LONG_LONG, r, tag, wd.comm, &req[r]);
    arrived[wd.rank] = 1;
    double end = util_now() + grace;
    while (util_now() < end) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, tag, wd.comm, &flag, &st);
        if (!flag) {
            sleep_ms(20);
            continue;
        }
        long long theirs = 0;
        MPI_Recv(&theirs, 1, MPI_LONG_LONG, st.MPI_SOURCE, tag, wd.comm, MPI_STATUS_IGNORE);
        if (theirs >= seq)
            arrived[st.MPI_SOURCE] = 1;
    }
    free(req); /* the sends are left to complete or to die with the job */
}

/* A collective timed out: name the missing ranks and end the job (never returns). */
static void report(int tag, long seq, const char *what, double waited, void (*release)(void *),
                   void *arg)
{
    if (atomic_flag_test_and_set(&wd.fired)) {
        for (;;) /* another thread of this process is reporting */
            sleep_ms(1000);
    }
    char *arrived = calloc((size_t)wd.world, 1);
    char missing[1024] = "unknown (MPI without thread support cannot ask the others)";
    int lowest = wd.rank;
    if (arrived && wd.multiple) {
        double grace = waited / 2 < 1 ? 1 : waited / 2 > 30 ? 30 : waited / 2;
        collect_notes(tag, seq, arrived, grace);
        list_missing(arrived, missing, sizeof missing);
        for (int r = wd.world - 1; r >= 0; r--)
            if (arrived[r])
                lowest = r;
    }
    if (release)
        release(arg);
    if (wd.rank != lowest)
        sleep_ms(3000); /* rank `lowest` reports; this one ends the job only if it did not */
    DDIM_FATAL("rank(s) %s did not arrive at %s (collective #%ld) within %.0f s "
               "(run.collective_timeout_s): stopped, hung, or far slower than the others; "
               "ending the job",
               missing, what, seq, waited);
}

static void *watch(void *unused)
{
    (void)unused;
    while (!atomic_load(&wd.stop)) {
        sleep_ms(200);
        long long since = atomic_load(&wd.entered_us), limit = atomic_load(&wd.timeout_us);
        if (since == 0 || limit <= 0 || now_us() - since < limit)
            continue;
        report(TAG_MPI, atomic_load(&wd.seq), atomic_load(&wd.what), limit / 1e6, NULL, NULL);
    }
    return NULL;
}

void comm_watchdog_start(int multiple)
{
    wd.multiple = multiple;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &wd.rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &wd.world));
    comm_watchdog_set_timeout(600);
    if (wd.world < 2)
        return;
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &wd.comm));
    wd.running = pthread_create(&wd.thread, NULL, watch, NULL) == 0;
}

void comm_watchdog_stop(void)
{
    if (wd.running) {
        atomic_store(&wd.stop, 1);
        pthread_join(wd.thread, NULL);
        wd.running = 0;
    }
    if (wd.world >= 2)
        MPI_CHECK(MPI_Comm_free(&wd.comm));
}

void comm_timeout_abort(long seq, const char *what, double waited, void (*release)(void *),
                        void *arg)
{
    report(TAG_NCCL, seq, what, waited, release, arg);
    abort(); /* not reached: report ends the job */
}
