/* test_dataset.c: io/dataset.c's validation and reads, and io/image_io.c's decoders, on
 * small files made here.
 *
 * - A valid file written with the HDF5 C API opens, and dataset_read returns uint8 / 255 for
 *   the requested indices; an out-of-range index is an error naming it.
 * - Broken variants (missing /validation/images, wrong shape, wrong format tag, counts that
 *   disagree with the datasets, missing statistics, not HDF5 at all) each fail with a
 *   message naming the object.
 * - image_io: PNG round trip is exact; JPEG round trip is close; a truncated JPEG, a
 *   truncated PNG and a non-image fail with the file's name; a same-size resize is the
 *   identity. */
#define _POSIX_C_SOURCE 200809L
#include "dataset.h"
#include "h5_util.h"
#include "image_io.h"
#include "test_util.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { S = 8, NT = 3, NV = 2 };

enum variant {
    VALID,
    NO_VALIDATION,
    WRONG_SHAPE,
    WRONG_FORMAT,
    WRONG_COUNT,
    NO_MEAN,
    FLOAT_PIXELS,
};

static void attr_long(hid_t f, const char *name, long long v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    H5Sclose(sp);
}

static void attr_doubles(hid_t f, const char *name, const double *v, hsize_t n)
{
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, v);
    H5Aclose(a);
    H5Sclose(sp);
}

/* A fixed-length string attribute (ddim-prep writes variable-length; both must work). */
static void attr_string(hid_t f, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(v) + 1);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void images(hid_t f, const char *group, long n, int last_dim, hid_t type)
{
    hid_t g = H5Gcreate2(f, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {(hsize_t)n, S, S, (hsize_t)last_dim};
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t d = H5Dcreate2(g, "images", type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    size_t count = (size_t)n * S * S * (size_t)last_dim;
    uint8_t *v = util_xmalloc(count);
    for (size_t i = 0; i < count; i++) /* value = (image index * 37 + element) mod 256 */
        v[i] = (uint8_t)((i / ((size_t)S * S * last_dim)) * 37 + i % ((size_t)S * S * last_dim));
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    free(v);
    H5Dclose(d);
    H5Sclose(sp);
    H5Gclose(g);
}

static void write_file(const char *path, enum variant v)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    double mean[3] = {0.5, 0.4, 0.3}, var[3] = {0.05, 0.06, 0.07};
    attr_string(f, "format", v == WRONG_FORMAT ? "something else 2" : "ddim-dist dataset 1");
    attr_long(f, "image_size", S);
    attr_long(f, "num_train", NT);
    attr_long(f, "num_validation", v == WRONG_COUNT ? NV + 1 : NV);
    if (v != NO_MEAN)
        attr_doubles(f, "train_mean", mean, 3);
    attr_doubles(f, "train_variance", var, 3);
    images(f, "train", NT, v == WRONG_SHAPE ? 4 : 3,
           v == FLOAT_PIXELS ? H5T_IEEE_F32LE : H5T_STD_U8LE);
    if (v != NO_VALIDATION)
        images(f, "validation", NV, 3, H5T_STD_U8LE);
    H5Fclose(f);
}

static void expect_open_error(const char *path, enum variant v, const char *what,
                              const char *needle1, const char *needle2)
{
    struct dataset ds;
    char err[1024] = "";
    write_file(path, v);
    if (dataset_open(&ds, path, err, sizeof err) == 0) {
        test_fail("%s: dataset_open succeeded, expected an error", what);
        dataset_close(&ds);
        return;
    }
    if (!strstr(err, needle1) || !strstr(err, needle2) || !strstr(err, path))
        test_fail("%s: error '%s' should name '%s', '%s' and the file", what, err, needle1,
                  needle2);
    else
        printf("  %-28s -> %s\n", what, err);
}

static void test_dataset_file(const char *dir)
{
    char path[512], err[1024];
    snprintf(path, sizeof path, "%s/valid.h5", dir);
    write_file(path, VALID);
    struct dataset ds;
    if (dataset_open(&ds, path, err, sizeof err) != 0) {
        test_fail("valid file: %s", err);
    } else {
        if (ds.count[SPLIT_TRAIN] != NT || ds.count[SPLIT_VALIDATION] != NV || ds.image_size != S ||
            ds.mean[1] != 0.4 || ds.variance[2] != 0.07)
            test_fail("valid file: counts %ld/%ld, size %d, mean[1] %g, var[2] %g", ds.count[0],
                      ds.count[1], ds.image_size, ds.mean[1], ds.variance[2]);
        long idx[2] = {2, 0};
        float x[2 * S * S * 3];
        if (dataset_read(&ds, SPLIT_TRAIN, idx, 2, x, err, sizeof err) != 0)
            test_fail("dataset_read: %s", err);
        for (int k = 0; k < 2; k++)
            for (int j = 0; j < S * S * 3; j++) {
                float want = (float)(uint8_t)(idx[k] * 37 + j) / 255.0f;
                if (x[k * S * S * 3 + j] != want) {
                    test_fail("dataset_read image %ld element %d: %g, expected %g", idx[k], j,
                              x[k * S * S * 3 + j], want);
                    break;
                }
            }
        long bad = NV;
        if (dataset_read(&ds, SPLIT_VALIDATION, &bad, 1, x, err, sizeof err) == 0 ||
            !strstr(err, "out of range"))
            test_fail("index %ld of validation: expected 'out of range', got '%s'", bad, err);
        dataset_close(&ds);
    }
    snprintf(path, sizeof path, "%s/broken.h5", dir);
    expect_open_error(path, NO_VALIDATION, "missing validation", "/validation/images", "missing");
    expect_open_error(path, WRONG_SHAPE, "wrong shape", "/train/images", "(3, 8, 8, 4)");
    expect_open_error(path, WRONG_FORMAT, "wrong format tag", "format", "ddim-dist dataset 1");
    expect_open_error(path, WRONG_COUNT, "inconsistent count", "num_validation", "holds 2");
    expect_open_error(path, NO_MEAN, "missing train_mean", "train_mean", "missing");
    expect_open_error(path, FLOAT_PIXELS, "float pixels", "/train/images", "uint8");
    snprintf(path, sizeof path, "%s/not_hdf5.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("not an HDF5 file", f);
    fclose(f);
    if (dataset_open(&ds, path, err, sizeof err) == 0 || !strstr(err, path))
        test_fail("a text file: expected an error naming it, got '%s'", err);
}

static void expect_load_error(const char *path, const char *needle)
{
    struct image_u8 img;
    char err[1024] = "";
    if (image_load(path, &img, err, sizeof err) == 0) {
        test_fail("image_load(%s) succeeded, expected an error", path);
        image_free(&img);
    } else if (!strstr(err, path) || !strstr(err, needle)) {
        test_fail("image_load(%s): error '%s' should name the file and '%s'", path, err, needle);
    } else {
        printf("  %s\n", err);
    }
}

static void test_images(const char *dir)
{
    enum { W = 23, H = 17 };
    uint8_t rgb[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++)
                rgb[(y * W + x) * 3 + c] = (uint8_t)(x * 4 + y * 3 + c * 40);
    char png[512], jpg[512], err[1024];
    snprintf(png, sizeof png, "%s/a.png", dir);
    snprintf(jpg, sizeof jpg, "%s/a.jpg", dir);
    struct image_u8 img;
    if (image_write_png(png, rgb, W, H, err, sizeof err) ||
        image_load(png, &img, err, sizeof err)) {
        test_fail("PNG round trip: %s", err);
    } else {
        if (img.width != W || img.height != H || memcmp(img.pixels, rgb, sizeof rgb))
            test_fail("PNG round trip changed the image (%dx%d)", img.width, img.height);
        image_free(&img);
    }
    if (image_write_jpeg(jpg, rgb, W, H, 98, err, sizeof err) ||
        image_load(jpg, &img, err, sizeof err)) {
        test_fail("JPEG round trip: %s", err);
    } else {
        int worst = 0;
        for (int i = 0; i < W * H * 3; i++)
            worst =
                abs((int)img.pixels[i] - rgb[i]) > worst ? abs((int)img.pixels[i] - rgb[i]) : worst;
        if (img.width != W || img.height != H || worst > 24)
            test_fail("JPEG round trip: %dx%d, max difference %d", img.width, img.height, worst);
        image_free(&img);
    }
    /* a square image resized to its own size is unchanged (x / 255) */
    struct image_u8 sq = {W, W, util_xmalloc(W * W * 3)};
    for (int i = 0; i < W * W * 3; i++)
        sq.pixels[i] = (uint8_t)(i * 13);
    float out[W * W * 3];
    image_center_crop_resize(&sq, W, out);
    for (int i = 0; i < W * W * 3; i++)
        if (out[i] != (float)sq.pixels[i] / 255.0f) {
            test_fail("same-size resize changed element %d: %g vs %g", i, out[i],
                      sq.pixels[i] / 255.0);
            break;
        }
    image_free(&sq);
    /* truncated files (the JPEG large enough that the cut falls in its scan data, where
     * libjpeg only warns) and a non-image */
    uint8_t *big = util_xmalloc(96 * 64 * 3);
    for (int i = 0; i < 96 * 64 * 3; i++)
        big[i] = (uint8_t)((i * 2654435761u) >> 24);
    if (image_write_jpeg(jpg, big, 96, 64, 90, err, sizeof err) != 0)
        test_fail("%s", err);
    free(big);
    struct stat st;
    stat(jpg, &st);
    if (truncate(jpg, st.st_size * 3 / 5) != 0)
        test_fail("truncate %s failed", jpg);
    expect_load_error(jpg, "JPEG");
    stat(png, &st);
    if (truncate(png, st.st_size / 2) != 0)
        test_fail("truncate %s failed", png);
    expect_load_error(png, "PNG");
    snprintf(png, sizeof png, "%s/text.png", dir);
    FILE *f = fopen(png, "w");
    fputs("hello", f);
    fclose(f);
    expect_load_error(png, "not a JPEG or PNG");
    snprintf(png, sizeof png, "%s/does_not_exist.jpg", dir);
    expect_load_error(png, "cannot open");
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--h5-check")) { /* test_h5_check: H5_CHECK must fire */
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        H5_CHECK(H5Sclose(-1));
        return 0;
    }
    char dir[] = "/tmp/ddim_test_dataset_XXXXXX";
    if (!mkdtemp(dir))
        DDIM_FATAL("mkdtemp failed");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    test_dataset_file(dir);
    test_images(dir);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_dataset: could not remove %s\n", dir);
    return test_finish("test_dataset");
}
