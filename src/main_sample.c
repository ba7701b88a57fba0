/* main_sample.c: the ddim-sample program: images from a trained model (a checkpoint or an
 * EMA export, io/ema_weights.h) by the Keras example's DDIM sampler with the EMA network,
 * as a PNG grid and optionally as uint8 in HDF5; and the EMA export itself. */
#include "config.h"
#include "ema_weights.h"
#include "h5_util.h"
#include "image_grid.h"
#include "launch.h"
#include "trainer.h"
#include "util.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SAMPLE_CHUNK = 64 }; /* images sampled at once (memory); the result is the same */

struct opts {
    const char *checkpoint, *weights, *output, *images_h5, *export_path, *backend;
    int num_images, rows, cols, steps; /* 0: not given */
    int have_seed;
    unsigned long long seed;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ddim-sample (--checkpoint RUN/checkpoint.h5 | --weights EMA.h5)\n"
            "                   [--output GRID.png] [--images-h5 OUT.h5] [--export EMA.h5]\n"
            "                   [--num-images N] [--rows R] [--cols C] [--steps K] [--seed S]\n"
            "                   [--backend auto|cpu|cuda]\n"
            "\n"
            "Draws images from a model trained by ddim-dist: the Keras example's DDIM sampler\n"
            "(reverse diffusion with the EMA network, BatchNorm in inference mode), from\n"
            "standard normal initial noise drawn from the Philox stream keyed by --seed. The\n"
            "model's shape and settings come from the file (its stored config and shape\n"
            "attributes), so nothing about the model is given here.\n"
            "\n"
            "the model (one of):\n"
            "  --checkpoint FILE  a run's checkpoint.h5 (its EMA weights and normalizer)\n"
            "  --weights FILE     an EMA export made by --export; samples exactly as the\n"
            "                     checkpoint it came from\n"
            "\n"
            "what to write (at least one):\n"
            "  --output FILE      the images as one PNG grid (rows x cols, images under 96 px\n"
            "                     enlarged), as the run's samples/epoch_NNNN.png\n"
            "  --images-h5 FILE   every image as uint8 in dataset /images, shape (N, S, S, 3)\n"
            "  --export FILE      only what sampling needs: /weights/<layer>/<weight> (the EMA\n"
            "                     network, BN moving statistics included), /normalizer/mean and\n"
            "                     /variance, the model shape and config attributes; written to\n"
            "                     FILE.tmp and renamed. Needs no backend.\n"
            "\n"
            "sampling (defaults: the run's eval.* and train.seed, so that with none given the\n"
            "grid is the one the run drew at its last epoch):\n"
            "  --num-images N     images to draw (default rows x cols)\n"
            "  --rows R, --cols C grid shape (default eval.plot_rows x eval.plot_cols, 3 x 6 in\n"
            "                     the example; with --num-images only, C = min(N, plot_cols) and\n"
            "                     R = as many rows as needed); R x C must hold N\n"
            "  --steps K          diffusion steps (default eval.plot_diffusion_steps, 20)\n"
            "  --seed S           keys the initial noise (default the run's train.seed): image\n"
            "                     i's noise depends only on S and i\n"
            "  --backend NAME     auto (the GPU when there is one), cpu or cuda (default auto)\n"
            "  -h, --help         this text\n"
            "\n"
            "examples:\n"
            "  ddim-sample --checkpoint runs/quickstart/checkpoint.h5 --output grid.png\n"
            "  ddim-sample --checkpoint runs/quickstart/checkpoint.h5 --export ema.h5\n"
            "  ddim-sample --weights ema.h5 --num-images 64 --rows 8 --seed 7 --steps 50 \\\n"
            "              --output grid.png --images-h5 images.h5\n");
}

static int parse_int(const char *name, const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "ddim-sample: %s: expected an integer in %d..%d, got '%s'\n", name, lo, hi,
                v);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* 1: --help was printed; -1: an error; 0: go on. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "ddim-sample: unknown option or missing value: '%s' (see --help)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--checkpoint")) {
            o->checkpoint = v;
        } else if (!strcmp(a, "--weights")) {
            o->weights = v;
        } else if (!strcmp(a, "--output")) {
            o->output = v;
        } else if (!strcmp(a, "--images-h5")) {
            o->images_h5 = v;
        } else if (!strcmp(a, "--export")) {
            o->export_path = v;
        } else if (!strcmp(a, "--num-images")) {
            rc = parse_int(a, v, 1, 1 << 20, &o->num_images);
        } else if (!strcmp(a, "--rows")) {
            rc = parse_int(a, v, 1, 4096, &o->rows);
        } else if (!strcmp(a, "--cols")) {
            rc = parse_int(a, v, 1, 4096, &o->cols);
        } else if (!strcmp(a, "--steps")) {
            rc = parse_int(a, v, 1, 100000, &o->steps);
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            o->have_seed = 1;
            if (errno || end == v || *end || v[0] == '-') {
                fprintf(stderr, "ddim-sample: --seed: expected an unsigned integer, got '%s'\n", v);
                rc = -1;
            }
        } else if (!strcmp(a, "--backend")) {
            o->backend = v;
            if (strcmp(v, "cpu") && strcmp(v, "cuda") && strcmp(v, "auto")) {
                fprintf(stderr, "ddim-sample: --backend: expected auto, cpu or cuda, got '%s'\n",
                        v);
                rc = -1;
            }
        } else {
            fprintf(stderr, "ddim-sample: unknown option '%s' (see ddim-sample --help)\n", a);
            rc = -1;
        }
        if (rc != 0)
            return -1;
    }
    const char *why = NULL;
    if (!o->checkpoint == !o->weights)
        why = "give the model with exactly one of --checkpoint and --weights";
    else if (!o->output && !o->images_h5 && !o->export_path)
        why = "nothing to write: give --output, --images-h5 or --export";
    if (why) {
        fprintf(stderr, "ddim-sample: %s (see ddim-sample --help)\n", why);
        return -1;
    }
    return 0;
}

/* Fills in the grid shape, image count, steps and seed from the options and the run. */
static int resolve(struct opts *o, const struct run_config *run)
{
    if (!o->steps)
        o->steps = run->plot_diffusion_steps;
    if (!o->have_seed)
        o->seed = run->diffusion.seed;
    if (!o->num_images) {
        o->rows = o->rows ? o->rows : run->plot_rows;
        o->cols = o->cols ? o->cols : run->plot_cols;
        o->num_images = o->rows * o->cols;
    } else if (!o->rows && !o->cols) {
        o->cols = o->num_images < run->plot_cols ? o->num_images : run->plot_cols;
    }
    if (!o->rows)
        o->rows = (o->num_images + o->cols - 1) / o->cols;
    if (!o->cols)
        o->cols = (o->num_images + o->rows - 1) / o->rows;
    if ((long)o->rows * o->cols < o->num_images) {
        fprintf(stderr, "ddim-sample: a grid of %d x %d cannot hold %d images\n", o->rows, o->cols,
                o->num_images);
        return -1;
    }
    return 0;
}

/* images (n, S, S, 3) in [0, 1] as uint8 dataset /images of a new HDF5 file. */
static int write_images_h5(const char *path, const float *images, int n, int size, char *err,
                           size_t errlen)
{
    size_t count = (size_t)n * size * size * 3;
    uint8_t *u8 = util_xmalloc(count);
    image_to_u8(images, count, u8);
    char tmp[4096];
    hid_t f = h5u_create_tmp(path, tmp, sizeof tmp, err, errlen); /* in memory, then renamed */
    int rc = -1;
    if (f >= 0) {
        hsize_t dims[4] = {(hsize_t)n, (hsize_t)size, (hsize_t)size, 3};
        hid_t sp = H5Screate_simple(4, dims, NULL);
        hid_t d = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0 && H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, u8) >= 0)
            rc = 0;
        else
            util_error(err, errlen, "%s: HDF5 cannot store the images", path);
        if (d >= 0)
            H5Dclose(d);
        H5Sclose(sp);
        rc = h5u_commit(f, tmp, path, rc, err, errlen);
    }
    free(u8);
    return rc;
}

/* All n images (n, S, S, 3) in [0, 1] into host memory, SAMPLE_CHUNK at a time. */
static float *sample_images(const struct opts *o, const struct ema_weights *ew)
{
    struct comm *comm = comm_single();
    struct backend *be = launch_pick_backend(o->backend ? o->backend : "auto", comm, "ddim-sample");
    const struct run_config *run = &ew->cfg;
    int chunk = o->num_images < SAMPLE_CHUNK ? o->num_images : SAMPLE_CHUNK;
    char err[2048];
    struct trainer *t =
        trainer_create(be, comm, &run->model, &run->diffusion, 1, 1, 0, err, sizeof err);
    if (!t)
        DDIM_FATAL("%s", err);
    be->upload(be, t->ema_w, ew->w, unet_params(ew->net)->total * sizeof(float));
    trainer_set_normalizer(t, ew->norm, ew->norm + 3);
    size_t per = t->per_image;
    float *noise = be->alloc(be, (size_t)chunk * per * sizeof(float));
    float *dev = be->alloc(be, (size_t)chunk * per * sizeof(float));
    float *host = util_xmalloc((size_t)o->num_images * per * sizeof(float));
    double start = util_now();
    for (int first = 0; first < o->num_images; first += chunk) {
        int n = o->num_images - first < chunk ? o->num_images - first : chunk;
        be->fill_normal(be, noise, n, per, (uint64_t)o->seed, 0, RNG_SAMPLE_NOISE, (uint32_t)first);
        trainer_sample(t, noise, n, o->steps, NULL, dev);
        be->download(be, host + (size_t)first * per, dev, (size_t)n * per * sizeof(float));
    }
    util_log("ddim-sample: %d images of %d px, %d steps, seed %llu, %s backend: %.2f s\n",
             o->num_images, run->model.image_size, o->steps, o->seed, be->name, util_now() - start);
    be->free(be, noise);
    be->free(be, dev);
    trainer_destroy(t);
    launch_finish(comm, be, comm);
    return host;
}

int main(int argc, char **argv)
{
    util_prefer_passive_openmp(argv);
    struct opts o;
    memset(&o, 0, sizeof o);
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    char err[4096];
    struct ema_weights ew;
    const char *src = o.checkpoint ? o.checkpoint : o.weights;
    if (ema_weights_read(src, o.checkpoint != NULL, &ew, err, sizeof err) != 0) {
        fprintf(stderr, "ddim-sample: %s\n", err);
        return 1;
    }
    if ((o.output || o.images_h5) && resolve(&o, &ew.cfg) != 0) {
        ema_weights_free(&ew);
        return 2;
    }
    if (o.export_path) {
        if (ema_weights_export(o.export_path, &ew, err, sizeof err) != 0) {
            fprintf(stderr, "ddim-sample: %s\n", err);
            ema_weights_free(&ew);
            return 1;
        }
        util_log("ddim-sample: wrote %s (EMA weights of %s)\n", o.export_path, src);
    }
    rc = 0;
    if (o.output || o.images_h5) {
        float *images = sample_images(&o, &ew);
        int size = ew.cfg.model.image_size;
        if (o.output && image_grid_write_png(o.output, images, o.num_images, o.rows, o.cols, size,
                                             err, sizeof err) != 0)
            rc = 1;
        else if (o.output)
            util_log("ddim-sample: wrote %s (%d x %d grid)\n", o.output, o.rows, o.cols);
        if (rc == 0 && o.images_h5 &&
            write_images_h5(o.images_h5, images, o.num_images, size, err, sizeof err) != 0)
            rc = 1;
        else if (rc == 0 && o.images_h5)
            util_log("ddim-sample: wrote %s (/images, uint8 %d x %d x %d x 3)\n", o.images_h5,
                     o.num_images, size, size);
        if (rc != 0)
            fprintf(stderr, "ddim-sample: %s\n", err);
        free(images);
    }
    ema_weights_free(&ew);
    return rc;
}
