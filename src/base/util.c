/* util.c: errors, rank-0 printing and timing. */
#define _GNU_SOURCE /* program_invocation_short_name */
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/resource.h>
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

const char *util_program(void)
{
    /* glibc's name of the executable (argv[0] without its folder): each program's own */
    return program_invocation_short_name;
}

static DDIM_NORETURN void util_fatal_va(const char *file, int line, int status, const char *fmt,
                                        va_list ap)
{
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    fflush(stdout);
    fprintf(stderr, "%s: error (rank %d on %s, %s:%d): ", util_program(), util_current_rank, host,
            file, line);
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

double util_cpu_now(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
        return 0;
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

int util_memory_check(size_t bytes, char *why, size_t len)
{
    double limit = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    const char *what = "this machine's memory";
    const struct {
        int resource;
        const char *name;
    } limits[2] = {{RLIMIT_AS, "ulimit -v"}, {RLIMIT_DATA, "ulimit -d"}};
    for (int i = 0; i < 2; i++) {
        struct rlimit r;
        if (getrlimit(limits[i].resource, &r) == 0 && r.rlim_cur != RLIM_INFINITY &&
            (double)r.rlim_cur < limit) {
            limit = (double)r.rlim_cur;
            what = limits[i].name;
        }
    }
    if (limit <= 0 || (double)bytes <= limit)
        return 0;
    return util_error(why, len, "%.2f GiB of host memory, more than the %.2f GiB that %s allows",
                      bytes / 1073741824.0, limit / 1073741824.0, what);
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

int util_getopt_refused(const char *program, int c, char **argv)
{
    const char *what = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        fprintf(stderr, "%s: %s needs a value (see %s --help)\n", program, what, program);
    else
        fprintf(stderr, "%s: unknown option '%s' (see %s --help)\n", program, what, program);
    return -1;
}

int util_getopt_no_operands(const char *program, int argc, char **argv)
{
    if (optind >= argc)
        return 0;
    fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n", program, argv[optind],
            program);
    return -1;
}

int util_getopt_each(const char *program, int argc, char **argv, const struct option *options,
                     int (*on_option)(void *ctx, const char *name, const char *value), void *ctx)
{
    int c, index;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", options, &index)) != -1) {
        if (c == 'h')
            return 1;
        if (c != 0)
            return util_getopt_refused(program, c, argv);
        char name[64];
        snprintf(name, sizeof name, "--%s", options[index].name);
        if (on_option(ctx, name, options[index].has_arg == no_argument ? NULL : optarg) != 0)
            return -1;
    }
    return util_getopt_no_operands(program, argc, argv);
}

int util_parse_u64(const char *program, const char *opt, const char *text, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-') {
        fprintf(stderr, "%s: %s: expected an unsigned integer, got '%s'\n", program, opt, text);
        return -1;
    }
    *out = x;
    return 0;
}

int util_parse_double(const char *program, const char *opt, const char *text, double lo, double hi,
                      double *out)
{
    char *end;
    errno = 0;
    double x = strtod(text, &end);
    if (errno || end == text || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "%s: %s: expected a number in [%g, %g], got '%s'\n", program, opt, lo, hi,
                text);
        return -1;
    }
    *out = x;
    return 0;
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
