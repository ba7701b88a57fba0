/* util.c: errors, rank-0 printing and timing. */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int util_current_rank = 0;
static void (*util_abort_hook)(int code) = NULL;

void util_set_abort_hook(void (*hook)(int code))
{
    util_abort_hook = hook;
}

void util_set_rank(int rank)
{
    util_current_rank = rank;
}

int util_rank(void)
{
    return util_current_rank;
}

static DDIM_NORETURN void util_fatal_va(const char *file, int line, int status, const char *fmt,
                                        va_list ap)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    fflush(stdout);
    fprintf(stderr, "ddim-dist: error (rank %d on %s, %s:%d): ", util_current_rank, host, file,
            line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    fflush(stderr);
    if (util_abort_hook)
        util_abort_hook(status);
    exit(status);
}

void util_fatal_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    util_fatal_va(file, line, 1, fmt, ap);
}

void util_fatal_status_at(const char *file, int line, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    util_fatal_va(file, line, status, fmt, ap);
}

void util_log(const char *fmt, ...)
{
    if (util_current_rank != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

double util_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void util_prefer_passive_openmp(char **argv)
{
    if (getenv("OMP_WAIT_POLICY"))
        return;
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc?): carry on with the default policy */
}

void *util_xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        DDIM_FATAL("out of host memory allocating %zu bytes", bytes);
    return p;
}

void *util_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        DDIM_FATAL("out of host memory allocating %zu x %zu bytes", count, size);
    return p;
}

int util_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int util_parse_int(const char *program, const char *opt, const char *text, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(text, &end, 10);
    if (errno || end == text || *end || x < lo || x > hi) {
        fprintf(stderr, "%s: %s: expected an integer in [%d, %d], got '%s'\n", program, opt, lo, hi,
                text);
        return -1;
    }
    *out = (int)x;
    return 0;
}
