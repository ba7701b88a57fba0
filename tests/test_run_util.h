/* test_run_util.h: what the tests that train for real share: a synthetic dataset made by the
 * ddim-prep binary in a fresh temporary folder, a tiny CPU run configuration (16 px
 * images, widths 8,16, depth 1, batch 8) that each test then adjusts, a run with its errors
 * captured, and "this file was left as it was" checks. */
#ifndef DDIM_TEST_RUN_UTIL_H
#define DDIM_TEST_RUN_UTIL_H

#include "backend.h"
#include "comm.h"
#include "config.h"

#include <stddef.h>

/* Makes a temporary folder from `dir_template` (mkdtemp, modified in place) and writes
 * `count` synthetic 16 px images drawn with `seed` to DIR/data.h5 (path into data).
 * 0, or -1 after printing what failed. */
int test_make_synthetic_data(const char *prep, char *dir_template, int count, int seed, char *data,
                             size_t datalen);

/* The tiny run: data at `data`, outputs in `run_dir`, CPU backend, images read per step,
 * 8 images per step, one epoch, progress after every step, a 1 x 2 grid of 2-step samples.
 * With 80 synthetic images (64 for training) an epoch is 8 steps per repetition. */
void test_tiny_run_config(struct run_config *cfg, const char *data, const char *run_dir);

/* For a test given PATH/TO/ddim-prep PATH/TO/PROGRAM: checks argc (usage on stderr, -1),
 * makes 80 synthetic images in dir_template (mkdtemp'ed) and the tiny run's cfg with its
 * outputs in DIR/run. 0, or -1 after printing what failed. */
int test_tiny_run_setup(const char *who, int argc, char **argv, char *dir_template,
                        struct run_config *cfg);

/* cfg trained to the end on the CPU backend and one rank (a fresh backend and
 * communicator, released after); 0, or -1 after printing that `who`'s run failed. */
int test_train_cpu(const char *who, const struct run_config *cfg);

/* Runs train_loop_run with its stderr captured into log_path and out (NUL-terminated; also
 * echoed to stderr). Returns its status. */
int test_run_captured(struct backend *be, struct comm *comm, const struct run_config *cfg,
                      const char *log_path, char *out, size_t len);

/* The whole file as bytes (malloc'd, NUL-terminated; *size -1 if it cannot be read whole),
 * or NULL when it cannot be opened. */
char *test_slurp(const char *path, long *size);

/* A test failure unless path still holds exactly bytes (size of them). */
void test_check_untouched(const char *path, const char *bytes, long size, const char *what);

#endif
