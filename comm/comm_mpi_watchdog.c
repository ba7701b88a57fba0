/* comm_mpi_watchdog.c: see comm_mpi_watchdog.h. */
#define _POSIX_C_SOURCE 200809L
#include "comm_mpi_watchdog.h"
#include "comm.h"
#include "comm_mpi_exit.h"
#include "mpi_check.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* MPI tags of the notes "I have waited in collective #seq": one per kind of collective,
 * since MPI and NCCL collectives are counted apart. */
enum { TAG_MPI = 7301, TAG_NCCL = 7302 };

/* Where each rank runs, gathered at start-up: named in the report, and the nodes lost. */
enum { HOST_LEN = 64 };
struct place {
    char host[HOST_LEN];
    int local_rank;
};

static struct {
    pthread_t thread;
    int running, multiple, rank, world;
    MPI_Comm comm;                  /* the world's duplicate: the notes */
    atomic_int stop;                /* asks the thread to end */
    atomic_long seq;                /* MPI collectives entered so far */
    atomic_llong entered_us;        /* when the current one was entered; 0: none */
    _Atomic(const char *) what;     /* its name */
    atomic_llong timeout_us;        /* 0: no timeout */
    atomic_flag fired;              /* one report per process */
    _Atomic(struct place *) places; /* [world]; NULL until gathered */
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

/* Appends "1, 3" (the ranks r with missing[r] set and, when host is not NULL, on that
 * host) to out at *j. */
static void list_ranks(const char *missing, const char *host, char *out, size_t len, size_t *j)
{
    int first = 1;
    for (int r = 0; r < wd.world && *j + 16 < len; r++)
        if (missing[r] && (!host || !strcmp(atomic_load(&wd.places)[r].host, host))) {
            *j += (size_t)snprintf(out + *j, len - *j, "%s%d", first ? "" : ", ", r);
            first = 0;
        }
}

/* The ranks not marked in arrived, then where they are: "2, 3" and "node n2 lost (none of
 * its ranks arrived: ranks 2, 3)" per host none of whose ranks arrived, "rank 1 on host n1"
 * per other host. Returns 1 when every missing rank is on a lost node. */
static int describe_missing(const char *arrived, char *ranks, size_t rlen, char *where, size_t wlen)
{
    const struct place *places = atomic_load(&wd.places);
    char *missing = calloc((size_t)wd.world, 1);
    size_t i = 0, j = 0;
    int all_lost = 1;
    ranks[0] = where[0] = '\0';
    for (int r = 0; missing && r < wd.world; r++)
        missing[r] = !arrived[r];
    if (missing)
        list_ranks(missing, NULL, ranks, rlen, &i);
    if (!i)
        snprintf(ranks, rlen, "none (the collective was about to complete)");
    for (int r = 0; missing && places && r < wd.world && j + 64 < wlen; r++) {
        if (!missing[r])
            continue;
        const char *host = places[r].host;
        int first = 1, lost = 1; /* first missing rank of its host; no rank of it arrived */
        for (int q = 0; q < wd.world; q++) {
            if (strcmp(places[q].host, host))
                continue;
            first &= !(q < r && missing[q]);
            lost &= missing[q];
        }
        if (!first)
            continue;
        all_lost &= lost;
        if (lost)
            j += (size_t)snprintf(where + j, wlen - j,
                                  "%snode %s lost (none of its ranks arrived: ranks ",
                                  j ? "; " : "", host);
        else
            j += (size_t)snprintf(where + j, wlen - j, "%srank(s) ", j ? "; " : "");
        list_ranks(missing, host, where, wlen, &j);
        if (j + 32 < wlen)
            j += (size_t)snprintf(where + j, wlen - j, lost ? ")" : " on host %s", host);
    }
    free(missing);
    return places && i && all_lost;
}

/* The note exchange: tells every rank that this one waited in collective #seq, and
 * collects the others' notes for a grace period (the ranks that wait time out at about the
 * same moment). A note of a later collective counts: that rank got past this one. So does
 * one of the collective before: a rank can still wait there for its result when the others
 * have theirs (an all-reduce forwards the sum through the ranks: a lost one cuts some off),
 * and it is alive, waiting, not the cause. Its calls are left unchecked on purpose: they
 * run while ranks are dying, and a failure here must not hide the report that follows. */
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
        if (theirs >= seq - 1)
            arrived[st.MPI_SOURCE] = 1;
    }
    free(req); /* the sends are left to complete or to die with the job */
}

/* A collective timed out: name the missing ranks and their hosts, and end the job with
 * COMM_EXIT_RANK_LOST (never returns; bounded: comm_mpi_exit.h). */
static void report(int tag, long seq, const char *what, double waited, void (*release)(void *),
                   void *arg)
{
    if (atomic_flag_test_and_set(&wd.fired)) {
        for (;;) /* another thread of this process is reporting */
            sleep_ms(1000);
    }
    char *arrived = calloc((size_t)wd.world, 1);
    char missing[1024] = "unknown (MPI without thread support cannot ask the others)";
    char where[1536] = "";
    int lowest = wd.rank, node_lost = 0;
    if (arrived && wd.multiple) {
        double grace = waited / 2 < 1 ? 1 : waited / 2 > 30 ? 30 : waited / 2;
        collect_notes(tag, seq, arrived, grace);
        node_lost = describe_missing(arrived, missing, sizeof missing, where, sizeof where);
        for (int r = wd.world - 1; r >= 0; r--)
            if (arrived[r])
                lowest = r;
    }
    free(arrived);
    if (release)
        release(arg);
    if (wd.rank != lowest)
        sleep_ms(3000); /* rank `lowest` reports; this one ends the job only if it did not */
    char cause[1800];
    if (node_lost)
        snprintf(cause, sizeof cause, "%s: down or unreachable", where);
    else
        snprintf(cause, sizeof cause, "stopped, hung, or far slower than the others%s%s%s",
                 where[0] ? " (" : "", where, where[0] ? ")" : "");
    comm_mpi_exit_set_reason(where[0] ? cause : NULL);
    DDIM_FATAL_STATUS(COMM_EXIT_RANK_LOST,
                      "rank(s) %s did not arrive at %s (collective #%ld) within %.0f s "
                      "(run.collective_timeout_s): %s; ending the job (exit status %d)",
                      missing, what, seq, waited, cause, COMM_EXIT_RANK_LOST);
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

/* Every rank's host and local rank, gathered under the watchdog (a rank that never comes
 * is named, without hosts). */
static void gather_places(int local_rank)
{
    struct place mine = {.local_rank = local_rank};
    if (gethostname(mine.host, HOST_LEN - 1) != 0)
        snprintf(mine.host, HOST_LEN, "?");
    struct place *all = util_xcalloc((size_t)wd.world, sizeof *all);
    comm_watchdog_enter("MPI_Allgather (host names)");
    MPI_CHECK(MPI_Allgather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE,
                            MPI_COMM_WORLD));
    comm_watchdog_leave();
    for (int r = 0; r < wd.world; r++)
        all[r].host[HOST_LEN - 1] = '\0';
    atomic_store(&wd.places, all);
}

void comm_watchdog_start(int multiple, int local_rank)
{
    wd.multiple = multiple;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &wd.rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &wd.world));
    comm_watchdog_set_timeout(600);
    if (wd.world < 2)
        return;
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &wd.comm));
    wd.running = pthread_create(&wd.thread, NULL, watch, NULL) == 0;
    gather_places(local_rank);
}

double comm_watchdog_timeout(void)
{
    return (double)atomic_load(&wd.timeout_us) / 1e6;
}

void comm_watchdog_log_placement(void)
{
    struct place *p = atomic_load(&wd.places);
    if (!p || wd.rank != 0)
        return;
    char line[4096];
    size_t j = 0;
    int nodes = 0;
    for (int r = 0; r < wd.world && j + 256 < sizeof line; r++) {
        int seen = 0;
        for (int q = 0; q < r; q++)
            seen |= !strcmp(p[q].host, p[r].host);
        if (seen)
            continue;
        nodes++;
        j += (size_t)snprintf(line + j, sizeof line - j, "%s%s: rank(s)", j ? "; " : "", p[r].host);
        for (int q = r; q < wd.world && j + 64 < sizeof line; q++)
            if (!strcmp(p[q].host, p[r].host))
                j += (size_t)snprintf(line + j, sizeof line - j, "%s %d (local %d)",
                                      q > r ? "," : "", q, p[q].local_rank);
    }
    util_log("ddim-dist: %d ranks on %d node(s): %s\n", wd.world, nodes, line);
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
    free(atomic_exchange(&wd.places, NULL));
}

void comm_timeout_abort(long seq, const char *what, double waited, void (*release)(void *),
                        void *arg)
{
    report(TAG_NCCL, seq, what, waited, release, arg);
    abort(); /* not reached: report ends the job */
}
