/* test_kid_model.c: ddim-kid between a model's samples and a split of a dataset (label
 * lifecycle), on a tiny run trained for one epoch (CPU) and the seeded InceptionV3 fixture.
 *
 * The KID of a model's samples against the validation split must equal, bit for bit (the
 * JSON prints doubles with 17 digits), what the same settings give through ddim-sample
 * --images-h5 and ddim-kid's two-set mode: ddim-kid draws with ddim-sample's own code and
 * stores the images as 8-bit files hold them before encoding, so both paths feed the same
 * floats, in the same batches, to the same encoder. Checked for the DDIM, stochastic (eta 1)
 * and Heun samplers, and from the EMA export; the JSON reports the sampler settings and the
 * network evaluations (Heun: 2K + 1). Errors: InceptionV3 weights missing (from the option
 * or the run's eval.inception_weights) fail before any sampling; a dataset of another image
 * size, an unknown split and options that do not go together are clear errors.
 *
 * usage: test_kid_model DDIM_PREP DDIM_SAMPLE DDIM_KID WEIGHTS.h5 (relative to the working
 * directory: the run stores it as given, and one check runs from elsewhere) */
#define _POSIX_C_SOURCE 200809L
#include "backend.h"
#include "comm.h"
#include "config.h"
#include "test_run_util.h"
#include "test_util.h"
#include "train_loop.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prep_bin, *sample_bin, *kid_bin, *weights;
static char dir[] = "/tmp/ddim_kid_model_XXXXXX", data[600], ck[1200];
static char out[16384]; /* the last program's stdout and stderr */

/* Runs a command (printf-style); its exit status, its output in out. */
static int run(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = test_run_program(cmd, out, sizeof out);
    printf("$ %s\n%s", cmd, out);
    return st;
}

static void expect(int ok, const char *what)
{
    if (ok)
        printf("ok   %s\n", what);
    else
        test_fail("%s", what);
}

/* The KID and its per-batch values, `"kid":...]` of the last output, into buf ("" if none). */
static const char *kid_text(char *buf, size_t len)
{
    const char *k = strstr(out, "{\"kid\":"), *end = k ? strchr(k, ']') : NULL;
    size_t n = end ? (size_t)(end - k) + 1 : 0;
    snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), n ? k : "");
    return buf;
}

/* The model's KID against the validation split for sampler options `so`, and the same via
 * ddim-sample --images-h5 and the two-set mode: the same text. `json` must be in the first
 * output (the sampler settings). */
static void check_same_kid(const char *model_opt, const char *so, const char *json, char *model_kid,
                           size_t len)
{
    char files_kid[512], what[512];
    int rc = run("%s %s --dataset %s --split val --num-images 16 --batch 8 %s --backend cpu",
                 kid_bin, model_opt, data, so);
    kid_text(model_kid, len);
    snprintf(what, sizeof what, "ddim-kid %s %s: runs, JSON with %s", model_opt, so, json);
    expect(rc == 0 && model_kid[0] && strstr(out, json), what);
    rc = run("%s --checkpoint %s --num-images 16 %s --images-h5 %s/gen.h5 --backend cpu",
             sample_bin, ck, so, dir);
    expect(rc == 0, "ddim-sample --images-h5 with the same settings");
    rc = run("%s --real %s --generated %s/gen.h5 --batch 8 --inception-weights %s --backend cpu",
             kid_bin, data, dir, weights);
    kid_text(files_kid, sizeof files_kid);
    snprintf(what, sizeof what, "%s: the model's KID equals the saved images' bit for bit", so);
    expect(rc == 0 && files_kid[0] && !strcmp(model_kid, files_kid), what);
    if (strcmp(model_kid, files_kid))
        printf("     model: %s\n     files: %s\n", model_kid, files_kid);
}

static void test_samplers(void)
{
    char ddim[512], eta[512], heun[512], ema_kid[512], ema[700], opt[1400];
    snprintf(opt, sizeof opt, "--checkpoint %s", ck);
    /* the InceptionV3 path comes from the run (eval.inception_weights) */
    check_same_kid(opt, "--steps 3 --seed 5",
                   "\"sampler\":\"ddim\",\"steps\":3,\"eta\":0,\"seed\":5,"
                   "\"network_evaluations_per_image\":3",
                   ddim, sizeof ddim);
    check_same_kid(opt, "--steps 3 --seed 5 --eta 1", "\"sampler\":\"ddim\",\"steps\":3,\"eta\":1",
                   eta, sizeof eta);
    check_same_kid(opt, "--steps 2 --seed 5 --sampler heun",
                   "\"sampler\":\"heun\",\"steps\":2,\"eta\":0,\"seed\":5,"
                   "\"network_evaluations_per_image\":5",
                   heun, sizeof heun);
    expect(strcmp(ddim, eta) && strcmp(ddim, heun), "eta and the sampler change the images");
    snprintf(ema, sizeof ema, "%s/ema.h5", dir);
    expect(run("%s --checkpoint %s --export %s", sample_bin, ck, ema) == 0, "--export");
    snprintf(opt, sizeof opt, "--weights %s", ema);
    check_same_kid(opt, "--steps 3 --seed 5", "\"network_evaluations_per_image\":3", ema_kid,
                   sizeof ema_kid);
    expect(!strcmp(ddim, ema_kid), "the EMA export: the checkpoint's KID");
    /* the defaults: all the validation images, the run's kid_diffusion_steps and seed; stdout
     * alone (stderr dropped) is the JSON line and nothing else */
    int rc = run("(%s --checkpoint %s --dataset %s --batch 8 --backend cpu 2>/dev/null)", kid_bin,
                 ck, data);
    char *nl = strchr(out, '\n');
    expect(rc == 0 && strstr(out, "\"images_generated\":16,\"images_used\":16") &&
               strstr(out, "\"steps\":5,\"eta\":0,\"seed\":42"),
           "defaults: the split's image count, eval.kid_diffusion_steps, train.seed");
    expect(!strncmp(out, "{\"kid\":", 7) && nl && nl[-1] == '}' && !nl[1],
           "stdout holds the JSON line only (progress goes to stderr)");
    expect(run("%s --checkpoint %s --dataset %s --split train --num-images 16 --batch 8 "
               "--backend cpu",
               kid_bin, ck, data) == 0 &&
               strstr(out, "/data.h5:train/images\""),
           "--split train");
}

static void test_errors(void)
{
    const char *base = "--dataset %s --num-images 16 --batch 8 --backend cpu";
    char args[2048];
    snprintf(args, sizeof args, base, data);
    int rc = run("%s --checkpoint %s %s --inception-weights %s/missing.h5", kid_bin, ck, args, dir);
    expect(rc != 0 && strstr(out, "missing.h5") && strstr(out, "--inception-weights") &&
               !strstr(out, "images of 16 px"),
           "missing InceptionV3 weights (--inception-weights): an error naming the file, before "
           "sampling");
    rc = run("cd / && %s --checkpoint %s %s", kid_bin, ck, args);
    expect(rc != 0 && strstr(out, weights) && strstr(out, "eval.inception_weights") &&
               !strstr(out, "images of 16 px"),
           "missing InceptionV3 weights (the run's relative path, elsewhere): named, before "
           "sampling");
    char small[700];
    snprintf(small, sizeof small, "%s/small.h5", dir);
    expect(run("%s --synthetic 20 --size 8 --output %s", prep_bin, small) == 0, "an 8 px dataset");
    rc = run("%s --checkpoint %s --dataset %s --backend cpu", kid_bin, ck, small);
    expect(rc != 0 && strstr(out, "16 px") && strstr(out, "8 px") && strstr(out, "small.h5"),
           "a dataset of another image size: an error naming both sizes");
    rc = run("%s --checkpoint %s --dataset %s --split test", kid_bin, ck, data);
    expect(rc != 0 && strstr(out, "--split"), "an unknown split");
    rc = run("%s --checkpoint %s --dataset %s/none.h5", kid_bin, ck, dir);
    expect(rc != 0 && strstr(out, "none.h5"), "a missing dataset file is named");
    rc = run("%s --checkpoint %s/none.h5 --dataset %s", kid_bin, dir, data);
    expect(rc != 0 && strstr(out, "none.h5"), "a missing checkpoint is named");
    rc = run("%s --real %s --generated %s --steps 3 --inception-weights %s", kid_bin, data, data,
             weights);
    expect(rc != 0 && strstr(out, "--checkpoint"), "sampling options need a model");
    rc = run("%s --real %s --generated %s --weights %s", kid_bin, data, data, weights);
    expect(rc != 0 && strstr(out, "--inception-weights"),
           "--weights is the model, as in ddim-sample: the message points to --inception-weights");
    rc = run("%s --checkpoint %s --dataset %s --sampler heun --eta 0.5", kid_bin, ck, data);
    expect(rc != 0 && strstr(out, "deterministic"), "--eta with the Heun sampler");
    rc = run("%s --help", kid_bin);
    expect(rc == 0 && strstr(out, "--checkpoint") && strstr(out, "--split"), "--help");
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s DDIM_PREP DDIM_SAMPLE DDIM_KID WEIGHTS.h5\n", argv[0]);
        return 2;
    }
    prep_bin = argv[1];
    sample_bin = argv[2];
    kid_bin = argv[3];
    weights = argv[4];
    char run_dir[700];
    if (test_make_synthetic_data(prep_bin, dir, 80, 5, data, sizeof data) != 0)
        return 1;
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    struct run_config cfg;
    test_tiny_run_config(&cfg, data, run_dir);
    cfg.kid_every = 0; /* KID is not measured in training, but the path is stored */
    snprintf(cfg.inception_weights, sizeof cfg.inception_weights, "%s", weights);
    struct backend *be = cpu_backend_create();
    struct comm *comm = comm_single();
    if (train_loop_run(&cfg, be, comm) != 0) {
        fprintf(stderr, "test_kid_model: the training run failed\n");
        return 1;
    }
    comm->destroy(comm);
    be->destroy(be);
    snprintf(ck, sizeof ck, "%s/checkpoint.h5", run_dir);
    test_samplers();
    test_errors();
    if (test_failures() == 0 && run("rm -rf %s", dir) != 0)
        fprintf(stderr, "test_kid_model: could not remove %s\n", dir);
    return test_finish("test_kid_model");
}
