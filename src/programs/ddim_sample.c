/* ddim_sample.c: the ddim-sample program: images from a trained model (a checkpoint or an
 * EMA export, io/ema_weights.h) by the Keras example's DDIM sampler with the EMA network
 * (or its stochastic and second-order variants), as PNG grids, animated GIFs and HDF5; and
 * the EMA export itself. This file parses and checks the options; src/model/sample_modes.c
 * draws. */
#include "config.h"
#include "infer_model.h"
#include "sample_io.h"
#include "sample_modes.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct opts {
    const char *checkpoint, *weights, *export_path, *noise_path, *sampler;
    int have_seed, have_eta, have_num_images, modes;
    struct sample_plan plan; /* zero fields: not given */
};

/* The defaults named here are the key table's (config_defaults). */
static void usage(FILE *out)
{
    struct run_config d;
    config_defaults(&d);
    fprintf(out,
            "usage: ddim-sample (--checkpoint RUN/checkpoint.h5 | --weights EMA.h5)\n"
            "                   [--output PNG] [--gif GIF] [--images-h5 OUT.h5] [--export EMA.h5]\n"
            "                   [--sweep K1,K2,... | --interpolate N | --trajectory]\n"
            "                   [--num-images N] [--rows R] [--cols C] [--steps K] [--seed S]\n"
            "                   [--eta E] [--sampler ddim|heun] [--noise IN.h5]\n"
            "                   [--save-noise OUT.h5] [--backend auto|cpu|cuda]\n"
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
            "what to draw (default: a grid of images):\n"
            "  --sweep K1,K2,...  the same initial noises sampled with each number of steps,\n"
            "                     one row per setting (e.g. 1,2,5,10,20; at most %d)\n"
            "  --interpolate N    N images from the spherical interpolation (slerp) between two\n"
            "                     initial noises (images 0 and 1 of the seed, or of --noise);\n"
            "                     the first and last are those two noises' images exactly\n"
            "  --trajectory       the sampling process: for every step the noisy images (above)\n"
            "                     and the predicted images (below); the PNG has two rows per\n"
            "                     image and a column per step, the GIF a frame per step\n"
            "\n"
            "what to write (at least one):\n"
            "  --output FILE      a PNG grid (images under 96 px enlarged), as the run's\n"
            "                     samples/epoch_NNNN.png\n"
            "  --gif FILE         an animated GIF (with --trajectory or --interpolate)\n"
            "  --images-h5 FILE   the final images as uint8 in dataset /images, (N, S, S, 3)\n"
            "                     (a sweep: all rows, row after row)\n"
            "  --save-noise FILE  the initial noise of every image drawn, float32 in dataset\n"
            "                     /noise, (N, S, S, 3): --noise FILE draws the same images\n"
            "  --export FILE      only what sampling needs: /weights/<layer>/<weight> (the EMA\n"
            "                     network, BN moving statistics included), /normalizer/mean and\n"
            "                     /variance, the model shape and config attributes; written to\n"
            "                     FILE.tmp and renamed. Needs no backend.\n"
            "\n"
            "sampling (defaults: the run's eval.* and train.seed, so that with none given the\n"
            "grid is the one the run drew at its last epoch):\n"
            "  --num-images N     images to draw (default rows x cols; a sweep or trajectory:\n"
            "                     eval.plot_cols; with --noise, the file's count)\n"
            "  --rows R, --cols C grid shape (default eval.plot_rows x eval.plot_cols, %d x %d in\n"
            "                     the example; with --num-images only, C = min(N, plot_cols) and\n"
            "                     R = as many rows as needed); R x C must hold N\n"
            "  --steps K          diffusion steps (default eval.plot_diffusion_steps, %d)\n"
            "  --seed S           keys the initial noise and eta's noise (default the run's\n"
            "                     train.seed): image i's noise depends only on S and i, on\n"
            "                     every backend\n"
            "  --eta E            DDIM's eta in [0, 1]: 0 (default) is the deterministic sampler,\n"
            "                     bit for bit; 1 replaces the predicted noise as DDPM does\n"
            "  --sampler NAME     ddim (default) or heun: Heun's second-order method on the DDIM\n"
            "                     ODE from time 1 to 0, 2K + 1 network evaluations for K steps\n"
            "                     (DDIM: K); the count is printed\n"
            "  --noise FILE       initial noises from dataset /noise of FILE: float32, shape\n"
            "                     (N, S, S, 3), S the model's image size\n"
            "  --backend NAME     auto (the GPU when there is one), cpu or cuda (default auto)\n"
            "  -h, --help         this text\n"
            "\n"
            "examples:\n"
            "  ddim-sample --checkpoint runs/quickstart/checkpoint.h5 --output grid.png\n"
            "  ddim-sample --checkpoint runs/quickstart/checkpoint.h5 --export ema.h5\n"
            "  ddim-sample --weights ema.h5 --num-images 64 --rows 8 --seed 7 --steps 50 \\\n"
            "              --output grid.png --images-h5 images.h5 --save-noise noise.h5\n"
            "  ddim-sample --weights ema.h5 --sweep 1,2,5,10,20 --num-images 6 --output sweep.png\n"
            "  ddim-sample --weights ema.h5 --interpolate 10 --seed 3 --output i.png --gif i.gif\n"
            "  ddim-sample --weights ema.h5 --trajectory --num-images 6 --steps 40 --gif t.gif\n"
            "  ddim-sample --weights ema.h5 --trajectory --eta 1 --steps 80 --gif stochastic.gif\n"
            "  ddim-sample --weights ema.h5 --sampler heun --steps 10 --output heun.png\n"
            "  ddim-sample --weights ema.h5 --noise noise.h5 --output again.png\n",
            SAMPLE_MAX_SWEEP, d.plot_rows, d.plot_cols, d.plot_diffusion_steps);
}

static int parse_int(const char *name, const char *v, int lo, int hi, int *out)
{
    return util_parse_int("ddim-sample", name, v, lo, hi, out);
}

/* --sweep 1,2,5: step counts, comma-separated. */
static int parse_sweep(const char *v, struct sample_plan *p)
{
    char item[32];
    p->sweep_count = 0;
    for (const char *c = v;;) {
        size_t len = strcspn(c, ",");
        if (p->sweep_count == SAMPLE_MAX_SWEEP || len == 0 || len >= sizeof item) {
            fprintf(stderr,
                    "ddim-sample: --sweep: expected 1 to %d step counts separated by commas "
                    "(e.g. 1,2,5,10,20), got '%s'\n",
                    SAMPLE_MAX_SWEEP, v);
            return -1;
        }
        memcpy(item, c, len);
        item[len] = 0;
        if (parse_int("--sweep", item, 1, 100000, &p->sweep[p->sweep_count++]) != 0)
            return -1;
        if (!c[len])
            return 0;
        c += len + 1;
    }
}

/* One option with its value (NULL for --trajectory), for util_getopt_each. 0, or -1 after a
 * message. */
static int parse_option(void *ctx, const char *a, const char *v)
{
    struct opts *o = ctx;
    struct sample_plan *p = &o->plan;
    o->modes += !strcmp(a, "--sweep") || !strcmp(a, "--interpolate") || !strcmp(a, "--trajectory");
    if (!strcmp(a, "--trajectory")) {
        p->mode = SAMPLE_TRAJECTORY;
        return 0;
    }
    const struct {
        const char *name, **dst;
    } paths[] = {{"--checkpoint", &o->checkpoint}, {"--weights", &o->weights},
                 {"--output", &p->output},         {"--gif", &p->gif},
                 {"--images-h5", &p->images_h5},   {"--export", &o->export_path},
                 {"--noise", &o->noise_path},      {"--save-noise", &p->save_noise},
                 {"--sampler", &o->sampler},       {"--backend", &p->backend}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!strcmp(a, paths[i].name)) {
            *paths[i].dst = v;
            return 0;
        }
    if (!strcmp(a, "--num-images")) {
        o->have_num_images = 1;
        return parse_int(a, v, 1, 1 << 20, &p->num_images);
    }
    if (!strcmp(a, "--rows"))
        return parse_int(a, v, 1, 4096, &p->rows);
    if (!strcmp(a, "--cols"))
        return parse_int(a, v, 1, 4096, &p->cols);
    if (!strcmp(a, "--steps"))
        return parse_int(a, v, 1, 100000, &p->steps);
    if (!strcmp(a, "--interpolate")) {
        p->mode = SAMPLE_INTERPOLATE;
        return parse_int(a, v, 2, 4096, &p->num_images);
    }
    if (!strcmp(a, "--sweep")) {
        p->mode = SAMPLE_SWEEP;
        return parse_sweep(v, p);
    }
    double eta;
    unsigned long long seed;
    if (!strcmp(a, "--eta")) {
        o->have_eta = 1;
        if (util_parse_double("ddim-sample", a, v, 0.0, 1.0, &eta) != 0)
            return -1;
        p->eta = (float)eta;
        return 0;
    }
    if (!strcmp(a, "--seed")) {
        o->have_seed = 1;
        if (util_parse_u64("ddim-sample", a, v, &seed) != 0)
            return -1;
        p->seed = seed;
        return 0;
    }
    fprintf(stderr, "ddim-sample: unknown option '%s' (see ddim-sample --help)\n", a);
    return -1;
}

/* The first reason why the options do not go together, or NULL. */
static const char *conflict(const struct opts *o)
{
    const struct sample_plan *p = &o->plan;
    if (!o->checkpoint == !o->weights)
        return "give the model with exactly one of --checkpoint and --weights";
    if (!p->output && !p->gif && !p->images_h5 && !p->save_noise && !o->export_path)
        return "nothing to write: give --output, --gif, --images-h5, --save-noise or --export";
    if (o->modes > 1)
        return "--sweep, --interpolate and --trajectory draw different things: give one";
    if (o->sampler && strcmp(o->sampler, "ddim") && strcmp(o->sampler, "heun"))
        return "--sampler: expected ddim or heun";
    if (p->kind == SAMPLER_HEUN && p->eta > 0.0f)
        return "--eta applies to the DDIM sampler; the Heun sampler is deterministic";
    if (p->gif && p->mode != SAMPLE_TRAJECTORY && p->mode != SAMPLE_INTERPOLATE)
        return "--gif animates --trajectory or --interpolate; the grid and the sweep are PNGs";
    if (p->mode == SAMPLE_SWEEP && (p->steps || p->rows || p->cols))
        return "--sweep sets the steps of each row and the grid (one row per step count, one "
               "column per image): leave out --steps, --rows and --cols";
    if (p->mode == SAMPLE_INTERPOLATE && o->have_num_images)
        return "--interpolate N sets the number of images: leave out --num-images";
    if (p->mode == SAMPLE_TRAJECTORY && (p->rows || p->cols))
        return "--trajectory lays out its own grid: leave out --rows and --cols";
    return NULL;
}

/* 1: --help was printed; -1: an error; 0: go on. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option options[] = {{"checkpoint", required_argument, NULL, 0},
                                            {"weights", required_argument, NULL, 0},
                                            {"output", required_argument, NULL, 0},
                                            {"gif", required_argument, NULL, 0},
                                            {"images-h5", required_argument, NULL, 0},
                                            {"export", required_argument, NULL, 0},
                                            {"noise", required_argument, NULL, 0},
                                            {"save-noise", required_argument, NULL, 0},
                                            {"sampler", required_argument, NULL, 0},
                                            {"backend", required_argument, NULL, 0},
                                            {"num-images", required_argument, NULL, 0},
                                            {"rows", required_argument, NULL, 0},
                                            {"cols", required_argument, NULL, 0},
                                            {"steps", required_argument, NULL, 0},
                                            {"interpolate", required_argument, NULL, 0},
                                            {"sweep", required_argument, NULL, 0},
                                            {"eta", required_argument, NULL, 0},
                                            {"seed", required_argument, NULL, 0},
                                            {"trajectory", no_argument, NULL, 0},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int rc = util_getopt_each("ddim-sample", argc, argv, options, parse_option, o);
    if (rc == 1)
        usage(stdout);
    if (rc != 0)
        return rc;
    o->plan.kind = o->sampler && !strcmp(o->sampler, "heun") ? SAMPLER_HEUN : SAMPLER_DDIM;
    const char *why = conflict(o);
    if (why) {
        fprintf(stderr, "ddim-sample: %s (see ddim-sample --help)\n", why);
        return -1;
    }
    return 0;
}

/* The grid shape of GRID and INTERPOLATE from the options and the run. */
static int resolve_grid(struct sample_plan *p, const struct run_config *run)
{
    if (!p->num_images) {
        p->rows = p->rows ? p->rows : run->plot_rows;
        p->cols = p->cols ? p->cols : run->plot_cols;
        p->num_images = p->rows * p->cols;
    } else if (!p->rows && !p->cols) {
        int cols = p->mode == SAMPLE_INTERPOLATE ? p->num_images : run->plot_cols;
        p->cols = p->num_images < cols ? p->num_images : cols;
    }
    if (!p->rows)
        p->rows = (p->num_images + p->cols - 1) / p->cols;
    if (!p->cols)
        p->cols = (p->num_images + p->rows - 1) / p->rows;
    if ((long)p->rows * p->cols < p->num_images) {
        fprintf(stderr, "ddim-sample: a grid of %d x %d cannot hold %d images\n", p->rows, p->cols,
                p->num_images);
        return -1;
    }
    return 0;
}

/* Fills in the image count, grid shape, steps and seed from the options, the noise file
 * and the run. */
static int resolve(struct opts *o, const struct run_config *run)
{
    struct sample_plan *p = &o->plan;
    if (!p->steps && p->mode != SAMPLE_SWEEP)
        p->steps = run->plot_diffusion_steps;
    if (!o->have_seed)
        p->seed = run->diffusion.seed;
    int needed = p->mode == SAMPLE_INTERPOLATE ? 2 : p->num_images;
    if (p->noise && needed > p->noise_count) {
        fprintf(stderr, "ddim-sample: --noise %s holds %d initial noises; %d are needed%s\n",
                o->noise_path, p->noise_count, needed,
                p->mode == SAMPLE_INTERPOLATE ? " (the two ends of the interpolation)" : "");
        return -1;
    }
    if (!p->num_images && p->noise)
        p->num_images = p->noise_count;
    if (p->mode == SAMPLE_SWEEP || p->mode == SAMPLE_TRAJECTORY) {
        if (!p->num_images)
            p->num_images = run->plot_cols;
        if (p->mode == SAMPLE_TRAJECTORY && p->num_images > SAMPLE_TRAJECTORY_MAX) {
            fprintf(stderr, "ddim-sample: --trajectory draws at most %d images (got %d)\n",
                    SAMPLE_TRAJECTORY_MAX, p->num_images);
            return -1;
        }
        if (p->mode == SAMPLE_TRAJECTORY &&
            (long)(p->steps + 1) * p->num_images > SAMPLE_TRAJECTORY_FRAMES) {
            fprintf(stderr,
                    "ddim-sample: --trajectory keeps every step's images: (steps + 1) x images "
                    "must be at most %d (got (%d + 1) x %d)\n",
                    SAMPLE_TRAJECTORY_FRAMES, p->steps, p->num_images);
            return -1;
        }
        return 0;
    }
    return resolve_grid(p, run);
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
    struct infer_model ew;
    const char *src = o.checkpoint ? o.checkpoint : o.weights;
    if (infer_model_load(src, o.checkpoint != NULL, &ew, err, sizeof err) != 0) {
        fprintf(stderr, "ddim-sample: %s\n", err);
        return 1;
    }
    const struct sample_plan *p = &o.plan;
    int draws = p->output || p->gif || p->images_h5 || p->save_noise;
    float *noise = NULL;
    rc = 0;
    if (draws && o.noise_path &&
        sample_noise_read(o.noise_path, ew.cfg.model.image_size, &noise, &o.plan.noise_count, err,
                          sizeof err) != 0) {
        fprintf(stderr, "ddim-sample: %s\n", err);
        rc = 1;
    }
    o.plan.noise = noise;
    if (rc == 0 && draws && resolve(&o, &ew.cfg) != 0)
        rc = 2;
    if (rc == 0 && o.export_path) {
        if (infer_model_export(&ew, o.export_path, err, sizeof err) != 0) {
            fprintf(stderr, "ddim-sample: %s\n", err);
            rc = 1;
        } else {
            util_log("ddim-sample: wrote %s (EMA weights of %s)\n", o.export_path, src);
        }
    }
    if (rc == 0 && draws && sample_run(p, &ew, err, sizeof err) != 0) {
        fprintf(stderr, "ddim-sample: %s\n", err);
        rc = 1;
    }
    free(noise);
    infer_model_free(&ew);
    return rc;
}
