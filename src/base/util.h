/* util.h: errors, rank-0 printing and timing shared by every part of the trainer. */
#ifndef DDIM_UTIL_H
#define DDIM_UTIL_H

#include <stddef.h>
#include <stdio.h>

#if defined(__GNUC__)
#define DDIM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define DDIM_NORETURN __attribute__((noreturn))
#else
#define DDIM_PRINTF(a, b)
#define DDIM_NORETURN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The rank printed in error messages and the one that prints progress (set by comm). */
void util_set_rank(int rank);
int util_rank(void);

/* Called by util_fatal_at with the exit status instead of exit when set (MPI sets a bounded
 * MPI_Abort, so that one rank's failure ends the whole job). */
void util_set_abort_hook(void (*hook)(int code));

/* The name of the running program ("ddim-kid"), as every message begins. */
const char *util_program(void);

/* Print "PROGRAM: error (rank R on HOST, file:line): message" and exit(1). */
DDIM_NORETURN void util_fatal_at(const char *file, int line, const char *fmt, ...)
    DDIM_PRINTF(3, 4);
#define DDIM_FATAL(...) util_fatal_at(__FILE__, __LINE__, __VA_ARGS__)
/* The same with another exit status (1..125). */
DDIM_NORETURN void util_fatal_status_at(const char *file, int line, int status, const char *fmt,
                                        ...) DDIM_PRINTF(4, 5);
#define DDIM_FATAL_STATUS(status, ...) util_fatal_status_at(__FILE__, __LINE__, status, __VA_ARGS__)

/* printf on rank 0 only, flushed. */
void util_log(const char *fmt, ...) DDIM_PRINTF(1, 2);

/* Monotonic wall clock in seconds. */
double util_now(void);
/* This process's CPU time so far in seconds, all threads (0 if unknown). */
double util_cpu_now(void);

/* OpenMP threads that spin-wait between parallel regions starve everything else on a
 * shared or oversubscribed node (seen: 15x slower training on two cores). Unless the user
 * chose a policy, this sets OMP_WAIT_POLICY=PASSIVE and re-executes the program once, since
 * libgomp reads the variable only when it is loaded. Call first thing in main. */
void util_prefer_passive_openmp(char **argv);

/* Whether `bytes` more of host memory can be had at all: 0 when they fit under this
 * machine's physical memory and the process's limits (ulimit -v and -d); else -1 with why
 * ("3.2 GiB, more than the 2.0 GiB that ulimit -v allows") in why. For sizes a file
 * declares, checked before allocating so that the error can name the file. */
int util_memory_check(size_t bytes, char *why, size_t len);

/* malloc that dies with a message instead of returning NULL. */
void *util_xmalloc(size_t bytes);
void *util_xcalloc(size_t count, size_t size);

/* A command-line integer: text must be a whole number in [lo, hi]; else a message
 * "PROGRAM: OPT: expected an integer in [lo, hi], got 'text'" on stderr and -1. */
int util_parse_int(const char *program, const char *opt, const char *text, int lo, int hi,
                   int *out);

/* For the programs' getopt_long loops (opterr = 0, an optstring that starts with ':'): the
 * message of an option getopt_long refused, "PROGRAM: unknown option 'X'" (c == '?') or
 * "PROGRAM: X needs a value" (c == ':'), naming argv[optind - 1], with a pointer to --help;
 * returns -1. */
int util_getopt_refused(const char *program, int c, char **argv);

/* After a getopt_long loop: -1 with "PROGRAM: unexpected argument 'X'" when an argument
 * that is not an option is left (argv[optind]), else 0. */
int util_getopt_no_operands(const char *program, int argc, char **argv);

/* The programs' option loop: getopt_long over argv with the long options given (each with
 * flag NULL and val 0, and {"help", no_argument, NULL, 'h'}), calling on_option(ctx,
 * "--name", value) for each option in the order given (value NULL for one that takes none).
 * Returns 0, 1 when -h or --help was given (nothing after it is read), or -1 after a message:
 * an unknown option, a missing value, an operand (none is taken), or on_option's -1. */
struct option;
int util_getopt_each(const char *program, int argc, char **argv, const struct option *options,
                     int (*on_option)(void *ctx, const char *name, const char *value), void *ctx);

/* Command-line numbers, as util_parse_int: an unsigned 64-bit integer (no sign), and a real
 * number in [lo, hi]; else "PROGRAM: OPT: expected ..., got 'text'" on stderr and -1. */
int util_parse_u64(const char *program, const char *opt, const char *text, unsigned long long *out);
int util_parse_double(const char *program, const char *opt, const char *text, double lo, double hi,
                      double *out);

/* snprintf into err (if non-NULL) and return -1: for functions that report errors upward. */
int util_error(char *err, size_t errlen, const char *fmt, ...) DDIM_PRINTF(3, 4);

#ifdef __cplusplus
}
#endif

#endif
