/* test_kid_tool.c: the ddim-kid program (label lifecycle), with the seeded InceptionV3
 * fixture: a set against itself gives a KID near 0, against uniform noise a large one; the
 * three kinds of sets (ddim-prep's dataset, FILE.h5:DATASET, a folder of PNGs) are read; bad
 * input (a missing file, a missing option) is a clear error with a non-zero exit.
 * "Near 0": |KID(set, set)| < 2% of KID(set, noise). With the same images on both sides
 * the unbiased estimate is 2 (mean of k off the diagonal - mean of k over all pairs), a
 * small negative number; noise is far from synthetic flowers in feature space.
 * usage: test_kid_tool DDIM_PREP DDIM_KID WEIGHTS.h5 */
#define _POSIX_C_SOURCE 200809L
#include "image_io.h"
#include "test_run_util.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *kid_prog, *weights;

/* Runs ddim-kid on the two sets; the "kid" of its JSON, NaN on failure; the output in out. */
static double run_kid(const char *real, const char *gen, char *out, size_t outlen, int *status)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s --real '%s' --generated '%s' --inception-weights '%s' --batch 20 "
             "--backend cpu 2>&1",
             kid_prog, real, gen, weights);
    FILE *p = popen(cmd, "r");
    size_t len = 0;
    out[0] = '\0';
    while (p && len + 1 < outlen && fgets(out + len, (int)(outlen - len), p))
        len = strlen(out);
    int st = p ? pclose(p) : -1;
    if (status)
        *status = st;
    const char *k = strstr(out, "{\"kid\":");
    return st == 0 && k ? strtod(k + 7, NULL) : NAN;
}

/* n noise PNGs (16 px, uniform pixels) into dir. */
static void write_noise_folder(const char *dir, int n)
{
    uint8_t px[16 * 16 * 3];
    for (int i = 0; i < n; i++) {
        for (size_t j = 0; j < sizeof px; j++)
            px[j] = (uint8_t)(test_uniform(0, 1) * 255.99f);
        char path[1200], err[256];
        snprintf(path, sizeof path, "%s/noise_%03d.png", dir, i);
        if (image_write_png(path, px, 16, 16, err, sizeof err) != 0)
            test_fail("%s", err);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s DDIM_PREP DDIM_KID WEIGHTS.h5\n", argv[0]);
        return 2;
    }
    kid_prog = argv[2];
    weights = argv[3];
    test_seed(12);
    char dir[] = "/tmp/ddim_test_kid_XXXXXX", data[1100], out[8192];
    if (test_make_synthetic_data(argv[1], dir, 100, 3, data, sizeof data) != 0)
        return 1;
    char noise_dir[1100], train[1200];
    snprintf(noise_dir, sizeof noise_dir, "%s/noise", dir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", noise_dir);
    if (system(cmd) != 0)
        test_fail("mkdir %s", noise_dir);
    write_noise_folder(noise_dir, 20);
    snprintf(train, sizeof train, "%s:train/images", data);

    double self = run_kid(data, data, out, sizeof out, NULL);
    printf("kid(validation, validation) = %g\n%s", self, out);
    double noise = run_kid(data, noise_dir, out, sizeof out, NULL);
    printf("kid(validation, noise folder) = %g\n%s", noise, out);
    double split = run_kid(train, data, out, sizeof out, NULL);
    printf("kid(train, validation) = %g\n", split);
    if (!isfinite(self) || !isfinite(noise) || !isfinite(split))
        test_fail("ddim-kid failed on a valid input");
    else if (!(noise > 0 && fabs(self) < 0.02 * noise && fabs(split) < 0.1 * noise))
        test_fail("expected |kid(set, set)| << kid(set, noise): %g, %g (train vs validation %g)",
                  self, noise, split);
    else
        printf("ok   set vs itself near 0, vs noise large\n");

    int st = 0;
    run_kid("/nonexistent/x.h5", data, out, sizeof out, &st);
    if (st == 0 || !strstr(out, "/nonexistent/x.h5"))
        test_fail("a missing set: expected an error naming it, got status %d: %s", st, out);
    snprintf(cmd, sizeof cmd, "%s --real '%s' >/dev/null 2>&1", kid_prog, data);
    if (system(cmd) == 0)
        test_fail("ddim-kid without --generated and --inception-weights succeeded");
    snprintf(cmd, sizeof cmd, "%s --help >/dev/null 2>&1", kid_prog);
    if (system(cmd) != 0)
        test_fail("ddim-kid --help failed");
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        test_fail("cannot remove %s", dir);
    return test_finish("test_kid_tool");
}
