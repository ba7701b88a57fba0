/* test_run_util.h: what the tests that train for real share: a synthetic dataset made by the
 * ddim-prep binary in a fresh temporary folder, and a tiny CPU run configuration (16 px
 * images, widths 8,16, depth 1, batch 8) that each test then adjusts. */
#ifndef DDIM_TEST_RUN_UTIL_H
#define DDIM_TEST_RUN_UTIL_H

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

#endif
