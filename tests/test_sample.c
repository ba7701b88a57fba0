/* test_sample.c: ddim-sample end to end. A tiny run trains one epoch (CPU), then:
 * sampling from its checkpoint writes a decodable PNG grid of the right size, and with the
 * run's defaults exactly the run's last samples/epoch_NNNN.png; the same seed gives the
 * same images and another seed other ones; an EMA export holds every weight under
 * /weights/<layer>/<weight> with its shape (bit-identical to the checkpoint's
 * /ema_weights), nothing of the optimizer, is smaller than the checkpoint, and samples
 * exactly as the checkpoint; a missing file, a file of the other kind and a truncated
 * checkpoint fail with a message naming the file.
 *
 * usage: test_sample PATH/TO/ddim-prep PATH/TO/ddim-sample */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "h5_util.h"
#include "image_grid.h"
#include "image_io.h"
#include "test_run_util.h"
#include "test_util.h"
#include "train_loop.h"
#include "unet.h"
#include "weights_h5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *sample_bin;
static char dir[] = "/tmp/ddim_sample_XXXXXX";
static char out[16384]; /* the last run's stderr and stdout */

/* Runs ddim-sample with `args` (its output into out); its exit code (-1, a failure already
 * recorded, after a signal). */
static int sample(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s", sample_bin, args);
    int rc = test_run_program(cmd, out, sizeof out);
    printf("$ ddim-sample %s\n%s", args, out);
    return rc;
}

/* Dataset /images of an --images-h5 file (malloc'd floats; NULL on error). */
static float *read_images(const char *name, size_t *count)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    hid_t f = h5u_open_read(path, err, sizeof err);
    int nd = 0;
    size_t shape[H5U_MAX_DIMS];
    float *v = NULL;
    if (f >= 0 && h5u_shape(f, path, "/images", &nd, shape, err, sizeof err) == 0 && nd == 4) {
        *count = shape[0] * shape[1] * shape[2] * shape[3];
        v = malloc(*count * sizeof(float));
        if (shape[1] != 16 || shape[2] != 16 || shape[3] != 3 ||
            h5u_read_floats(f, path, "/images", v, *count, err, sizeof err) != 0) {
            free(v);
            v = NULL;
        }
    }
    if (f >= 0)
        H5Fclose(f);
    if (!v)
        test_fail("%s: no /images of shape (N, 16, 16, 3): %s", path, err);
    return v;
}

/* 1 if the two files' images are identical. */
static int same_images(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    float *va = read_images(a, &na), *vb = read_images(b, &nb);
    int same = va && vb && na == nb && memcmp(va, vb, na * sizeof(float)) == 0;
    free(va);
    free(vb);
    return same;
}

static void expect(int ok, const char *what)
{
    if (ok)
        printf("ok   %s\n", what);
    else
        test_fail("%s", what);
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (f)
        fclose(f);
    return n;
}

/* The export: every weight at /weights/<name> with its shape (weights_read_h5 checks both),
 * equal to the checkpoint's /ema_weights; no optimizer; smaller than the checkpoint. */
static void check_export(const char *ema, const char *ckpt, const struct unet_config *model)
{
    char err[1024];
    struct unet *net = unet_create(model, err, sizeof err);
    const struct param_table *p = unet_params(net);
    float *a = malloc(p->total * sizeof(float)), *b = malloc(p->total * sizeof(float));
    hid_t fe = h5u_open_read(ema, err, sizeof err), fc = h5u_open_read(ckpt, err, sizeof err);
    if (fe < 0 || fc < 0 || weights_read_h5(fe, ema, "/weights", p, a, 0, err, sizeof err) ||
        weights_read_h5(fc, ckpt, "/ema_weights", p, b, 0, err, sizeof err))
        test_fail("%s", err);
    else
        expect(memcmp(a, b, p->total * sizeof(float)) == 0,
               "export: /weights equals the checkpoint's /ema_weights, every weight");
    int kernels = 0, shapes_ok = 1;
    for (int i = 0; fe >= 0 && i < p->count; i++) {
        const struct param *q = &p->items[i];
        if (q->kind != PARAM_KERNEL)
            continue;
        char name[128];
        int nd = 0;
        size_t shape[H5U_MAX_DIMS];
        snprintf(name, sizeof name, "/weights/%s", q->name);
        kernels++;
        if (!strstr(name, "/kernel") || h5u_shape(fe, ema, name, &nd, shape, err, sizeof err) ||
            nd != q->ndim)
            shapes_ok = 0;
        for (int d = 0; shapes_ok && d < nd; d++)
            shapes_ok = shape[d] == (size_t)q->shape[d];
    }
    expect(kernels > 0 && shapes_ok, "export: /weights/<layer>/kernel datasets in Keras shapes");
    expect(fe >= 0 && !h5u_exists(fe, "/optimizer") && !h5u_exists(fe, "/ema_weights") &&
               h5u_exists(fe, "/normalizer/mean") && h5u_exists(fe, "/normalizer/variance"),
           "export: the normalizer, no optimizer, no training weights");
    long se = file_size(ema), sc = file_size(ckpt);
    printf("     export %ld bytes, checkpoint %ld bytes\n", se, sc);
    expect(se > 0 && se < sc, "export: smaller than the checkpoint");
    if (fe >= 0)
        H5Fclose(fe);
    if (fc >= 0)
        H5Fclose(fc);
    free(a);
    free(b);
    unet_destroy(net);
}

static void check_grid(const char *png, int rows, int cols)
{
    struct image_u8 img = {0};
    char err[512];
    int w, h;
    image_grid_dims(rows, cols, 16, &w, &h);
    if (image_load(png, &img, err, sizeof err) != 0)
        test_fail("%s", err);
    else if (img.width != w || img.height != h)
        test_fail("%s: %d x %d pixels, expected %d x %d", png, img.width, img.height, w, h);
    else
        printf("ok   %s decodes, %d x %d pixels\n", png, w, h);
    image_free(&img);
}

static void check_errors(const char *ckpt, const char *data)
{
    char args[4096], path[512];
    snprintf(path, sizeof path, "%s/missing.h5", dir);
    snprintf(args, sizeof args, "--checkpoint %s --output %s/x.png", path, dir);
    expect(sample(args) != 0 && strstr(out, path) && strstr(out, "No such file"),
           "a missing checkpoint: non-zero exit, the message names the file");
    snprintf(args, sizeof args, "--checkpoint %s --output %s/x.png", data, dir);
    expect(sample(args) != 0 && strstr(out, data) && strstr(out, "not a ddim-dist checkpoint"),
           "a dataset given as --checkpoint: names the file, says it is not a checkpoint");
    snprintf(args, sizeof args, "--weights %s --output %s/x.png", ckpt, dir);
    expect(sample(args) != 0 && strstr(out, ckpt) && strstr(out, "use --checkpoint"),
           "a checkpoint given as --weights: names the file and the right option");
    char cmd[2048];
    snprintf(path, sizeof path, "%s/cut.h5", dir);
    snprintf(cmd, sizeof cmd, "head -c %ld %s > %s", file_size(ckpt) / 2, ckpt, path);
    if (system(cmd) != 0)
        test_fail("'%s' failed", cmd);
    snprintf(args, sizeof args, "--checkpoint %s --output %s/x.png", path, dir);
    expect(sample(args) != 0 && strstr(out, path), "a truncated checkpoint: names the file");
    expect(sample("--checkpoint") == 2 && sample("--output x.png") == 2,
           "usage errors: exit code 2");
    expect(sample("--help") == 0 && strstr(out, "--export") && strstr(out, "example"),
           "--help explains the options with examples");
}

int main(int argc, char **argv)
{
    struct run_config cfg;
    if (test_tiny_run_setup("test_sample", argc, argv, dir, &cfg) != 0 ||
        test_train_cpu("test_sample", &cfg) != 0)
        return 1;
    sample_bin = argv[2];
    const char *data = cfg.data_path;
    char cmd[2048];

    char ck[1200], ema[600], a[4096];
    snprintf(ck, sizeof ck, "%s/checkpoint.h5", cfg.run_dir);
    snprintf(ema, sizeof ema, "%s/ema.h5", dir);
    const char *common = "--num-images 5 --rows 2 --cols 3 --steps 3 --backend cpu";
    snprintf(a, sizeof a, "--checkpoint %s %s --seed 1 --output %s/g.png --images-h5 %s/a.h5", ck,
             common, dir, dir);
    expect(sample(a) == 0, "sampling from the checkpoint");
    snprintf(a, sizeof a, "%s/g.png", dir);
    check_grid(a, 2, 3);
    snprintf(a, sizeof a, "--checkpoint %s %s --seed 1 --images-h5 %s/b.h5", ck, common, dir);
    expect(sample(a) == 0 && same_images("a.h5", "b.h5"), "the same seed: the same images");
    snprintf(a, sizeof a, "--checkpoint %s %s --seed 2 --images-h5 %s/c.h5", ck, common, dir);
    expect(sample(a) == 0 && !same_images("a.h5", "c.h5"), "another seed: other images");

    snprintf(a, sizeof a, "--checkpoint %s --backend cpu --output %s/default.png", ck, dir);
    snprintf(cmd, sizeof cmd, "cmp %s/default.png %s/samples/epoch_0001.png", dir, cfg.run_dir);
    expect(sample(a) == 0 && system(cmd) == 0,
           "the run's defaults: the run's last grid (samples/epoch_0001.png), byte for byte");

    snprintf(a, sizeof a, "--checkpoint %s --export %s", ck, ema);
    expect(sample(a) == 0, "--export");
    check_export(ema, ck, &cfg.model);
    snprintf(a, sizeof a, "--weights %s %s --seed 1 --images-h5 %s/d.h5", ema, common, dir);
    expect(sample(a) == 0 && same_images("a.h5", "d.h5"),
           "sampling from the export: the checkpoint's images");

    check_errors(ck, data);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (test_failures() == 0 && system(cmd) != 0)
        fprintf(stderr, "test_sample: could not remove %s\n", dir);
    return test_finish("test_sample");
}
