/* test_prep.c: ddim-prep end to end, through the program itself and io/dataset.c.
 *
 * - Folder round trip: lossless PNGs already at the target size must be stored exactly; a
 *   non-square PNG must equal image_center_crop_resize of it; a solid JPEG stays solid; a
 *   truncated JPEG and a text file named .jpg are skipped, named and counted; the split
 *   sizes, the stored statistics and the seeded split's determinism are checked; the content
 *   fingerprints ddim-prep stores equal those the reader computes for a file without them.
 * - Synthetic flowers: two runs with one seed give identical files, another seed differs,
 *   images vary and span a reasonable range.
 * - Errors: empty folder, size 0, unwritable output, missing --output, only unreadable
 *   images: non-zero exit, a message naming the problem, no output file left behind.
 *
 * usage: test_prep PATH/TO/ddim-prep */
#define _POSIX_C_SOURCE 200809L
#include "dataset.h"
#include "h5_util.h"
#include "image_io.h"
#include "test_util.h"
#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { S = 16, N_RANDOM = 8 };

static const char *prep;
static char tmp[256];
static char log_text[16384];

/* Runs ddim-prep with args; its stderr+stdout go to log_text. Returns the exit status (-1,
 * a failure already recorded, after a signal). */
static int run_prep(const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s", prep, args);
    return test_run_program(cmd, log_text, sizeof log_text);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void expect_log(const char *what, const char *needle)
{
    if (!strstr(log_text, needle))
        test_fail("%s: expected '%s' in ddim-prep's output, got:\n%s", what, needle, log_text);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0)
        DDIM_FATAL("cannot write %s", path);
    fclose(f);
}

static void must(int rc, const char *err)
{
    if (rc != 0)
        DDIM_FATAL("%s", err);
}

/* The inputs: N_RANDOM random SxS PNGs, a 24x16 gradient PNG, a solid 40x30 JPEG, a
 * truncated JPEG, a text file named .jpg and a README that is not an image name. */
static uint8_t random_images[N_RANDOM][S * S * 3];
static uint8_t gradient_expected[S * S * 3];
static const uint8_t solid[3] = {200, 60, 30};

static void make_inputs(const char *dir)
{
    char path[512], err[512];
    test_seed(11);
    for (int i = 0; i < N_RANDOM; i++) {
        for (int j = 0; j < S * S * 3; j++)
            random_images[i][j] = (uint8_t)(test_uniform(0.0f, 1.0f) * 255.999f);
        snprintf(path, sizeof path, "%s/random_%d.png", dir, i);
        must(image_write_png(path, random_images[i], S, S, err, sizeof err), err);
    }
    uint8_t grad[16 * 24 * 3], block[30 * 40 * 3];
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 24; x++)
            for (int c = 0; c < 3; c++)
                grad[(y * 24 + x) * 3 + c] = (uint8_t)(x * 10 + y * 3 + c * 40);
    snprintf(path, sizeof path, "%s/gradient.png", dir);
    must(image_write_png(path, grad, 24, 16, err, sizeof err), err);
    struct image_u8 img;
    float x[S * S * 3];
    must(image_load(path, &img, err, sizeof err), err);
    image_center_crop_resize(&img, S, x);
    for (int j = 0; j < S * S * 3; j++)
        gradient_expected[j] = (uint8_t)lrintf(255.0f * x[j]);
    image_free(&img);
    for (int j = 0; j < 30 * 40 * 3; j++)
        block[j] = solid[j % 3];
    snprintf(path, sizeof path, "%s/solid.jpg", dir);
    must(image_write_jpeg(path, block, 40, 30, 95, err, sizeof err), err);
    /* a truncated JPEG: the first half of a real one */
    uint8_t big[64 * 64 * 3];
    for (int j = 0; j < 64 * 64 * 3; j++)
        big[j] = (uint8_t)(j * 7);
    snprintf(path, sizeof path, "%s/truncated.jpg", dir);
    must(image_write_jpeg(path, big, 64, 64, 90, err, sizeof err), err);
    struct stat st;
    stat(path, &st);
    must(truncate(path, st.st_size / 2), "truncate failed");
    snprintf(path, sizeof path, "%s/notimage.jpg", dir);
    write_text(path, "this is not a JPEG\n");
    snprintf(path, sizeof path, "%s/README.txt", dir);
    write_text(path, "ignored: not an image name\n");
}

/* Which input a stored image is: 0..N_RANDOM-1, 100 gradient, 200 solid, -1 unknown. */
static int identify(const uint8_t *v)
{
    for (int i = 0; i < N_RANDOM; i++)
        if (!memcmp(v, random_images[i], sizeof random_images[i]))
            return i;
    if (!memcmp(v, gradient_expected, sizeof gradient_expected))
        return 100;
    int solid_ok = 1;
    for (int j = 0; j < S * S * 3; j++)
        solid_ok &= abs((int)v[j] - (int)solid[j % 3]) <= 3;
    return solid_ok ? 200 : -1;
}

static double attr_number(const struct dataset *ds, const char *name)
{
    double v[4];
    size_t n = 4;
    char err[512];
    if (h5u_read_attr_doubles(ds->file, ds->path, "/", name, v, &n, err, sizeof err) != 0) {
        test_fail("%s", err);
        return NAN;
    }
    return v[0];
}

/* Reads a whole split as floats (malloc'd). */
static float *read_split(struct dataset *ds, enum dataset_split split)
{
    long n = ds->count[split];
    float *x = util_xmalloc((size_t)(n ? n : 1) * S * S * 3 * sizeof(float));
    long *idx = util_xmalloc((size_t)(n ? n : 1) * sizeof(long));
    char err[512];
    for (long i = 0; i < n; i++)
        idx[i] = i;
    if (dataset_read(ds, split, idx, (int)n, x, err, sizeof err) != 0)
        test_fail("dataset_read: %s", err);
    free(idx);
    return x;
}

static void check_stats(struct dataset *ds, const float *train)
{
    long n = ds->count[SPLIT_TRAIN];
    size_t pixels = (size_t)n * S * S;
    for (int c = 0; c < 3; c++) {
        double sum = 0.0, sq = 0.0;
        for (size_t p = 0; p < pixels; p++)
            sum += train[p * 3 + c];
        double mean = sum / (double)pixels;
        for (size_t p = 0; p < pixels; p++)
            sq += (train[p * 3 + c] - mean) * (train[p * 3 + c] - mean);
        double var = sq / (double)pixels;
        if (fabs(mean - ds->mean[c]) > 1e-6 || fabs(var - ds->variance[c]) > 1e-6)
            test_fail("train stats channel %d: file mean %.8f var %.8f, direct %.8f %.8f", c,
                      ds->mean[c], ds->variance[c], mean, var);
    }
}

/* The content fingerprints ddim-prep stores are those the reader computes for a file
 * without them (one made before they existed), for both splits. */
static void check_fingerprints(const char *path)
{
    char err[1024], copy[512], cmd[1200], stored[2][33];
    struct dataset ds;
    int computed = -1;
    if (dataset_open(&ds, path, err, sizeof err) ||
        dataset_fingerprint(&ds, &computed, err, sizeof err)) {
        test_fail("fingerprints of %s: %s", path, err);
        return;
    }
    memcpy(stored, ds.fingerprint, sizeof stored);
    dataset_close(&ds);
    if (computed != 0 || strlen(stored[0]) != 32 || !strcmp(stored[0], stored[1]))
        test_fail("stored fingerprints '%s' '%s' (computed %d)", stored[0], stored[1], computed);
    snprintf(copy, sizeof copy, "%s/no_fingerprint.h5", tmp);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, copy);
    hid_t f = system(cmd) == 0 ? H5Fopen(copy, H5F_ACC_RDWR, H5P_DEFAULT) : -1;
    if (f < 0 || H5Adelete(f, "train_xxh128") < 0 || H5Adelete(f, "validation_xxh128") < 0)
        test_fail("cannot remove the fingerprints from %s", copy);
    if (f >= 0)
        H5Fclose(f);
    if (dataset_open(&ds, copy, err, sizeof err) ||
        dataset_fingerprint(&ds, &computed, err, sizeof err)) {
        test_fail("fingerprints of %s: %s", copy, err);
        return;
    }
    for (int split = 0; split < 2; split++)
        if (computed != 1 || strcmp(ds.fingerprint[split], stored[split]))
            test_fail("split %d: computed fingerprint '%s' (computed %d), stored '%s'", split,
                      ds.fingerprint[split], computed, stored[split]);
    printf("ok   fingerprints: stored %s / %s, the same computed from the pixels\n", stored[0],
           stored[1]);
    dataset_close(&ds);
}

static void test_folder(void)
{
    char dir[300], out[300], out2[300], err[512];
    snprintf(dir, sizeof dir, "%s/images", tmp);
    mkdir(dir, 0700);
    make_inputs(dir);
    snprintf(out, sizeof out, "%s/out.h5", tmp);
    int rc = run_prep("--input '%s' --output '%s' --size %d --seed 7", dir, out, S);
    if (rc != 0) {
        test_fail("ddim-prep on the folder exited %d:\n%s", rc, log_text);
        return;
    }
    expect_log("truncated JPEG warning", "truncated.jpg");
    expect_log("non-image warning", "notimage.jpg");
    expect_log("skipped count", "2 skipped");
    struct dataset ds;
    if (dataset_open(&ds, out, err, sizeof err) != 0) {
        test_fail("dataset_open: %s", err);
        return;
    }
    /* 10 readable images, 20% validation */
    if (ds.count[SPLIT_TRAIN] != 8 || ds.count[SPLIT_VALIDATION] != 2 || ds.image_size != S)
        test_fail("split: %ld train + %ld validation at %d, expected 8 + 2 at %d",
                  ds.count[SPLIT_TRAIN], ds.count[SPLIT_VALIDATION], ds.image_size, S);
    if (attr_number(&ds, "skipped") != 2.0)
        test_fail("attribute skipped = %g, expected 2", attr_number(&ds, "skipped"));
    if (attr_number(&ds, "split_seed") != 7.0)
        test_fail("attribute split_seed = %g, expected 7", attr_number(&ds, "split_seed"));
    int seen[N_RANDOM + 2] = {0};
    float *x[2] = {read_split(&ds, SPLIT_TRAIN), read_split(&ds, SPLIT_VALIDATION)};
    for (int split = 0; split < 2; split++) {
        for (long i = 0; i < ds.count[split]; i++) {
            uint8_t v[S * S * 3];
            const float *xi = x[split] + (size_t)i * S * S * 3;
            for (int j = 0; j < S * S * 3; j++) {
                v[j] = (uint8_t)lrintf(xi[j] * 255.0f);
                if (xi[j] != (float)v[j] / 255.0f)
                    test_fail("image %ld value %d: %.9g is not a stored uint8 / 255", i, j, xi[j]);
            }
            int id = identify(v);
            if (id < 0)
                test_fail("split %d image %ld matches no input exactly", split, i);
            else
                seen[id < N_RANDOM ? id : (id == 100 ? N_RANDOM : N_RANDOM + 1)]++;
        }
    }
    for (int i = 0; i < N_RANDOM + 2; i++)
        if (seen[i] != 1)
            test_fail("input %d stored %d times, expected once", i, seen[i]);
    check_stats(&ds, x[0]);
    dataset_close(&ds);
    check_fingerprints(out);

    /* the same seed gives the same file content; another seed another split */
    snprintf(out2, sizeof out2, "%s/out2.h5", tmp);
    for (int seed = 7; seed <= 8; seed++) {
        if (run_prep("--input '%s' --output '%s' --size %d --seed %d", dir, out2, S, seed) ||
            dataset_open(&ds, out2, err, sizeof err)) {
            test_fail("rerun with seed %d failed: %s %s", seed, log_text, err);
            continue;
        }
        float *y = read_split(&ds, SPLIT_TRAIN);
        int same = !memcmp(x[0], y, sizeof(float) * 8 * S * S * 3);
        if (same != (seed == 7))
            test_fail("seed %d: train split %s the seed-7 run's", seed,
                      same ? "equals" : "differs from");
        free(y);
        dataset_close(&ds);
    }
    free(x[0]);
    free(x[1]);
}

static void test_synthetic(void)
{
    char a[300], b[300], c[300], err[512];
    snprintf(a, sizeof a, "%s/syn_a.h5", tmp);
    snprintf(b, sizeof b, "%s/syn_b.h5", tmp);
    snprintf(c, sizeof c, "%s/syn_c.h5", tmp);
    if (run_prep("--synthetic 40 --size %d --seed 3 --output '%s'", S, a) ||
        run_prep("--synthetic 40 --size %d --seed 3 --output '%s'", S, b) ||
        run_prep("--synthetic 40 --size %d --seed 4 --output '%s'", S, c)) {
        test_fail("ddim-prep --synthetic failed:\n%s", log_text);
        return;
    }
    struct dataset ds[3];
    const char *paths[3] = {a, b, c};
    float *train[3], *val[3];
    for (int k = 0; k < 3; k++) {
        if (dataset_open(&ds[k], paths[k], err, sizeof err) != 0) {
            test_fail("dataset_open: %s", err);
            return;
        }
        train[k] = read_split(&ds[k], SPLIT_TRAIN);
        val[k] = read_split(&ds[k], SPLIT_VALIDATION);
    }
    size_t per = (size_t)S * S * 3, nt = (size_t)ds[0].count[SPLIT_TRAIN];
    if (nt != 32 || ds[0].count[SPLIT_VALIDATION] != 8)
        test_fail("synthetic split %zu + %ld, expected 32 + 8", nt, ds[0].count[SPLIT_VALIDATION]);
    if (memcmp(train[0], train[1], nt * per * sizeof(float)) ||
        memcmp(val[0], val[1], 8 * per * sizeof(float)) ||
        memcmp(ds[0].mean, ds[1].mean, sizeof ds[0].mean))
        test_fail("two --synthetic runs with seed 3 differ");
    if (!memcmp(train[0], train[2], nt * per * sizeof(float)))
        test_fail("--synthetic with seeds 3 and 4 gave the same images");
    float lo = 1.0f, hi = 0.0f;
    for (size_t i = 0; i < nt; i++) {
        const float *xi = train[0] + i * per;
        double sum = 0.0, sq = 0.0;
        for (size_t j = 0; j < per; j++) {
            lo = fminf(lo, xi[j]);
            hi = fmaxf(hi, xi[j]);
            sum += xi[j];
            sq += (double)xi[j] * xi[j];
        }
        double mean = sum / (double)per, sd = sqrt(fmax(sq / (double)per - mean * mean, 0.0));
        if (mean < 0.03 || mean > 0.97 || sd < 0.03)
            test_fail("synthetic image %zu is flat or extreme: mean %.3f sd %.3f", i, mean, sd);
        for (size_t k = 0; k < i; k++)
            if (!memcmp(xi, train[0] + k * per, per * sizeof(float)))
                test_fail("synthetic images %zu and %zu are equal", k, i);
    }
    if (lo > 0.1f || hi < 0.9f)
        test_fail("synthetic values span only [%.3f, %.3f]", lo, hi);
    check_stats(&ds[0], train[0]);
    for (int k = 0; k < 3; k++) {
        free(train[k]);
        free(val[k]);
        dataset_close(&ds[k]);
    }
}

static void expect_failure(const char *what, int want_rc, const char *needle, const char *out,
                           const char *fmt, const char *arg)
{
    int rc = run_prep(fmt, arg, out);
    if (rc != want_rc)
        test_fail("%s: exit %d, expected %d; output:\n%s", what, rc, want_rc, log_text);
    expect_log(what, needle);
    char tmp_out[400];
    snprintf(tmp_out, sizeof tmp_out, "%s.tmp", out);
    if (exists(out) || exists(tmp_out))
        test_fail("%s: left %s or its .tmp behind", what, out);
}

static void test_errors(void)
{
    char empty[300], bad[300], out[300], path[400];
    snprintf(empty, sizeof empty, "%s/empty", tmp);
    snprintf(bad, sizeof bad, "%s/bad", tmp);
    snprintf(out, sizeof out, "%s/err.h5", tmp);
    mkdir(empty, 0700);
    mkdir(bad, 0700);
    snprintf(path, sizeof path, "%s/broken.png", bad);
    write_text(path, "\x89PNG\r\n\x1a\n garbage");
    expect_failure("empty folder", 1, "no image files", out, "--input '%s' --output '%s'", empty);
    expect_failure("only unreadable images", 1, "could be read", out, "--input '%s' --output '%s'",
                   bad);
    expect_failure("size 0", 2, "--size", out, "--input '%s' --output '%s' --size 0", bad);
    expect_failure("negative size", 2, "--size", out, "--input '%s' --output '%s' --size=-3", bad);
    expect_failure("bad fraction", 2, "--validation-fraction", out,
                   "--input '%s' --output '%s' --validation-fraction 1.5", bad);
    expect_failure("unwritable output", 1, "cannot create", "/nonexistent_dir_ddim/x.h5",
                   "--synthetic 4 --seed 1%s --output '%s'", "");
    int rc = run_prep("--synthetic 4");
    if (rc != 2)
        test_fail("missing --output: exit %d, expected 2", rc);
    expect_log("missing --output", "missing --output");
    if (run_prep("--help") != 0)
        test_fail("--help exited non-zero");
    expect_log("--help", "example:");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_prep PATH/TO/ddim-prep\n");
        return 2;
    }
    prep = argv[1];
    snprintf(tmp, sizeof tmp, "/tmp/ddim_test_prep_XXXXXX");
    if (!mkdtemp(tmp))
        DDIM_FATAL("mkdtemp failed");
    test_folder();
    test_synthetic();
    test_errors();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (test_failures() == 0 && system(cmd) != 0)
        fprintf(stderr, "test_prep: could not remove %s\n", tmp);
    return test_finish("test_prep");
}
