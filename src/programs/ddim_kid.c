/* ddim_kid.c: ddim-kid, the Kernel Inception Distance between two image sets, computed as
 * the Keras example's KID metric computes it (kid.h): per batch of n real and n generated
 * images, averaged over the batches (a last partial batch is dropped, as the example's
 * validation set drops it). The generated set is a set of files, or a model's samples drawn
 * here by ddim-sample's own code (sample_modes.h). One JSON object on stdout; progress and
 * errors on stderr. */
#define _POSIX_C_SOURCE 200809L
#include "comm.h"
#include "config.h"
#include "inception.h"
#include "infer_model.h"
#include "kid.h"
#include "kid_sets.h"
#include "launch.h"
#include "sample_modes.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct opts {
    const char *real, *dataset, *split, *generated, *checkpoint, *model, *inception;
    const char *backend, *sampler;
    int batch, image_size, kid_image_size, steps, num_images, have_seed;
    float eta;
    uint64_t seed;
    int sampling_options; /* how many of --steps, --eta, --sampler, --num-images, --seed */
};

/* The defaults named here are the key table's (config_defaults). */
static void usage(FILE *f)
{
    struct run_config d;
    config_defaults(&d);
    fprintf(f,
            "usage: ddim-kid (--real SET | --dataset FILE.h5 [--split NAME])\n"
            "                (--generated SET | --checkpoint FILE | --weights EMA.h5)\n"
            "                [--inception-weights FILE] [options]\n"
            "\n"
            "Kernel Inception Distance between two image sets, exactly as the Keras DDIM\n"
            "example's KID metric: InceptionV3 features (images x255, resized to 75 px,\n"
            "x/127.5-1, global average pool), kernel (x.y/2048 + 1)^3, the unbiased MMD^2\n"
            "per batch of n real and n generated images, averaged over the batches. Prints\n"
            "one JSON object on stdout; progress goes to stderr.\n"
            "\n"
            "the real images (one of):\n"
            "  --real SET          a set, as below\n"
            "  --dataset FILE.h5   a dataset made by ddim-prep, with --split validation (or\n"
            "                      val, the default) or train\n"
            "the generated images (one of):\n"
            "  --generated SET     a set, as below\n"
            "  --checkpoint FILE   a model's samples, drawn here exactly as ddim-sample draws\n"
            "  --weights EMA.h5    them (a run's checkpoint.h5 or best.h5, or an EMA export),\n"
            "                      then stored as 8-bit images are: the KID equals that of\n"
            "                      ddim-sample --images-h5 of the same settings, bit for bit\n"
            "A SET is one of:\n"
            "  FILE.h5            ddim-prep's dataset (its validation split) or ddim-sample's\n"
            "                     --images-h5 output (/images)\n"
            "  FILE.h5:DATASET    any uint8 (N, S, S, 3) dataset of the file (0..255), or a\n"
            "                     float one in [0, 1], e.g. data.h5:train/images\n"
            "  DIR                every .png/.jpg/.jpeg in DIR, centre-cropped and resized to\n"
            "                     --image-size as ddim-prep does\n"
            "\n"
            "sampling, with a model (defaults from the run's stored configuration):\n"
            "  --steps K           diffusion steps (default eval.kid_diffusion_steps, %d)\n"
            "  --sampler NAME      ddim (default) or heun (2K + 1 network evaluations)\n"
            "  --eta E             DDIM's eta in [0, 1] (default 0: deterministic)\n"
            "  --num-images N      images to draw (default: as many as the real set holds)\n"
            "  --seed S            keys the initial noises (default the run's train.seed)\n"
            "\n"
            "options:\n"
            "  --inception-weights FILE  Keras's inception_v3_weights_tf_dim_ordering_tf_\n"
            "                      kernels_notop.h5 (see docs/kid.md); with a model the\n"
            "                      default is the run's eval.inception_weights\n"
            "  --batch N           images per KID batch (default train.batch_size, %d)\n"
            "  --image-size S      size folder images are resized to (default: the other\n"
            "                      set's size, or model.image_size, %d)\n"
            "  --kid-image-size S  InceptionV3 input size (default the run's\n"
            "                      eval.kid_image_size, or its default, %d)\n"
            "  --backend NAME      auto, cpu or cuda (default auto)\n"
            "  -h, --help          this text\n"
            "\n"
            "examples:\n"
            "  ddim-kid --checkpoint runs/x/best.h5 --dataset data/flowers.h5 --split val \\\n"
            "           --steps 20 --sampler heun\n"
            "  ddim-kid --real data/flowers.h5 --generated samples.h5 \\\n"
            "           --inception-weights inception_v3_weights_tf_dim_ordering_tf_kernels_"
            "notop.h5\n",
            d.kid_diffusion_steps, d.batch_size, d.model.image_size, d.kid_image_size);
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
    return util_parse_int("ddim-kid", opt, v, lo, hi, out);
}

/* One option with its value, for util_getopt_each: 0, or -1 after a message. */
static int parse_option(void *ctx, const char *a, const char *v)
{
    struct opts *o = ctx;
    const struct {
        const char *name, **dst;
    } paths[] = {{"--real", &o->real},
                 {"--dataset", &o->dataset},
                 {"--split", &o->split},
                 {"--generated", &o->generated},
                 {"--checkpoint", &o->checkpoint},
                 {"--weights", &o->model},
                 {"--inception-weights", &o->inception},
                 {"--backend", &o->backend},
                 {"--sampler", &o->sampler}};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (!strcmp(a, paths[i].name)) {
            *paths[i].dst = v;
            o->sampling_options += !strcmp(a, "--sampler");
            return 0;
        }
    const struct {
        const char *name;
        int lo, hi, *dst, sampling;
    } ints[] = {{"--batch", 2, 1 << 20, &o->batch, 0},
                {"--image-size", 1, 4096, &o->image_size, 0},
                {"--kid-image-size", INCEPTION_INPUT_SIZE, 4096, &o->kid_image_size, 0},
                {"--steps", 1, 100000, &o->steps, 1},
                {"--num-images", 2, 1 << 20, &o->num_images, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (!strcmp(a, ints[i].name)) {
            o->sampling_options += ints[i].sampling;
            return parse_int(a, v, ints[i].lo, ints[i].hi, ints[i].dst);
        }
    double eta;
    unsigned long long seed;
    if (!strcmp(a, "--eta")) {
        o->sampling_options++;
        if (util_parse_double("ddim-kid", a, v, 0.0, 1.0, &eta) != 0)
            return -1;
        o->eta = (float)eta;
        return 0;
    }
    if (!strcmp(a, "--seed")) {
        o->sampling_options++;
        o->have_seed = 1;
        if (util_parse_u64("ddim-kid", a, v, &seed) != 0)
            return -1;
        o->seed = seed;
        return 0;
    }
    fprintf(stderr, "ddim-kid: unknown option '%s' (see ddim-kid --help)\n", a);
    return -1;
}

/* The first reason why the options do not go together, or NULL. */
static const char *conflict(const struct opts *o)
{
    int model = !!o->checkpoint + !!o->model;
    if (o->model && o->generated)
        return "--weights is a model's EMA export, as in ddim-sample; the InceptionV3 file is "
               "--inception-weights";
    if (!o->real == !o->dataset)
        return "give the real images with exactly one of --real and --dataset";
    if (model + !!o->generated != 1)
        return "give the generated images with exactly one of --generated, --checkpoint and "
               "--weights";
    if (o->split && !o->dataset)
        return "--split names a split of --dataset";
    if (o->split && strcmp(o->split, "validation") && strcmp(o->split, "val") &&
        strcmp(o->split, "train"))
        return "--split: expected validation (or val) or train";
    if (!model && o->sampling_options)
        return "--steps, --sampler, --eta, --num-images and --seed draw a model's samples: give "
               "--checkpoint or --weights";
    if (!model && !o->inception)
        return "give --inception-weights (Keras's InceptionV3 notop file, see docs/kid.md)";
    if (o->sampler && strcmp(o->sampler, "ddim") && strcmp(o->sampler, "heun"))
        return "--sampler: expected ddim or heun";
    if (o->sampler && !strcmp(o->sampler, "heun") && o->eta > 0.0f)
        return "--eta applies to the DDIM sampler; the Heun sampler is deterministic";
    if (strcmp(o->backend, "auto") && strcmp(o->backend, "cpu") && strcmp(o->backend, "cuda"))
        return "--backend: expected auto, cpu or cuda";
    return NULL;
}

/* 0, 1 (help) or -1 */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option options[] = {{"real", required_argument, NULL, 0},
                                            {"dataset", required_argument, NULL, 0},
                                            {"split", required_argument, NULL, 0},
                                            {"generated", required_argument, NULL, 0},
                                            {"checkpoint", required_argument, NULL, 0},
                                            {"weights", required_argument, NULL, 0},
                                            {"inception-weights", required_argument, NULL, 0},
                                            {"backend", required_argument, NULL, 0},
                                            {"sampler", required_argument, NULL, 0},
                                            {"batch", required_argument, NULL, 0},
                                            {"image-size", required_argument, NULL, 0},
                                            {"kid-image-size", required_argument, NULL, 0},
                                            {"steps", required_argument, NULL, 0},
                                            {"num-images", required_argument, NULL, 0},
                                            {"eta", required_argument, NULL, 0},
                                            {"seed", required_argument, NULL, 0},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    struct run_config d; /* the key table's defaults */
    config_defaults(&d);
    o->batch = d.batch_size;
    o->backend = "auto";
    int rc = util_getopt_each("ddim-kid", argc, argv, options, parse_option, o);
    if (rc == 1)
        usage(stdout);
    if (rc != 0)
        return rc;
    const char *why = conflict(o);
    if (why) {
        fprintf(stderr, "ddim-kid: %s (see ddim-kid --help)\n", why);
        return -1;
    }
    return 0;
}

/* Features (n, 2048) of a set, batch by batch, with encoder e. */
static float *encode_set(struct kid_encoder *e, struct backend *be, const struct image_set *set,
                         long n, const char *label)
{
    int batch = kid_encoder_batch(e);
    size_t per = (size_t)set->size * set->size * 3;
    float *dev = be->alloc(be, (size_t)batch * per * sizeof(float));
    float *features = util_xmalloc((size_t)n * INCEPTION_FEATURES * sizeof(float));
    double start = util_now(), last = start;
    for (long i = 0; i < n; i += batch) {
        int m = (int)(n - i < batch ? n - i : batch);
        be->upload(be, dev, set->images + (size_t)i * per, (size_t)m * per * sizeof(float));
        kid_encode(e, dev, m, features + (size_t)i * INCEPTION_FEATURES);
        if (util_now() - last > 5 || i + m == n) {
            util_log("ddim-kid: %s: %ld/%ld images encoded (%.1f s)\n", label, i + m, n,
                     util_now() - start);
            last = util_now();
        }
    }
    be->free(be, dev);
    return features;
}

/* s as a JSON string. */
static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* stdout carries the JSON only: util_log's progress (stdout) is sent to stderr, and the JSON
 * goes to the original stdout. */
static FILE *json_stream(void)
{
    fflush(stdout);
    int fd = dup(STDOUT_FILENO);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f && dup2(STDERR_FILENO, STDOUT_FILENO) >= 0)
        return f;
    if (f)
        fclose(f);
    return stdout;
}

/* What a run of ddim-kid holds: the two sets, the model and its sampling settings. */
struct job {
    struct opts o;
    struct image_set sets[2]; /* real, generated */
    char real_name[1400];     /* the real set as given (a --dataset: FILE:SPLIT/images) */
    const char *model_path;   /* NULL: the generated set is files */
    struct infer_model ew;    /* the model, when there is one */
    const char *inception;    /* the InceptionV3 file and where its path came from */
    const char *inception_from;
    struct sample_plan plan;
    int evaluations;
    double sampling_seconds;
};

/* The model, and the defaults it gives: InceptionV3 file, KID input size. 0 or -1. */
static int open_model(struct job *j, char *err, size_t errlen)
{
    struct opts *o = &j->o;
    j->inception = o->inception;
    j->inception_from = "--inception-weights";
    if (!j->model_path) {
        struct run_config d; /* no run: the key table's default */
        config_defaults(&d);
        o->kid_image_size = o->kid_image_size ? o->kid_image_size : d.kid_image_size;
        return 0;
    }
    if (infer_model_load(j->model_path, o->checkpoint != NULL, &j->ew, err, errlen) != 0)
        return -1;
    const struct run_config *run = &j->ew.cfg;
    if (!j->inception) {
        j->inception = run->inception_weights;
        j->inception_from = "the run's eval.inception_weights";
        if (!j->inception[0])
            return util_error(err, errlen,
                              "no InceptionV3 weights: %s stores no eval.inception_weights; give "
                              "--inception-weights (Keras's notop file, see docs/kid.md)",
                              j->model_path);
    }
    if (!o->kid_image_size)
        o->kid_image_size = run->kid_image_size;
    return 0;
}

/* Loads the real set and a generated set of files: HDF5 sets first, so that a folder takes
 * the other set's size (a model's samples: the model's). 0 or -1 with a message. */
static int load_sets(struct job *j, char *err, size_t errlen)
{
    const struct opts *o = &j->o;
    int model_size = j->model_path ? j->ew.cfg.model.image_size : 0;
    struct run_config d; /* a folder beside no other size: model.image_size's default */
    config_defaults(&d);
    int default_size = d.model.image_size;
    char why[2048];
    if (o->dataset) {
        const char *group = o->split && !strcmp(o->split, "train") ? "train" : "validation";
        snprintf(j->real_name, sizeof j->real_name, "%s:%s/images", o->dataset, group);
        if (kid_set_load_h5(o->dataset, j->real_name + strlen(o->dataset) + 1, &j->sets[0], why,
                            sizeof why) != 0)
            return util_error(err, errlen, "--dataset: %s", why);
    } else {
        snprintf(j->real_name, sizeof j->real_name, "%s", o->real);
    }
    const char *specs[2] = {o->real, o->generated}, *labels[2] = {"--real", "--generated"};
    for (int pass = 0; pass < 2; pass++)
        for (int s = 0; s < 2; s++) {
            if (!specs[s] || kid_set_is_folder(specs[s]) != pass)
                continue;
            int other = s == 1 ? j->sets[0].size : model_size ? model_size : j->sets[1].size;
            int size = o->image_size ? o->image_size : other ? other : default_size;
            if (kid_set_load(specs[s], size, &j->sets[s], why, sizeof why) != 0)
                return util_error(err, errlen, "%s: %s", labels[s], why);
        }
    if (model_size && j->sets[0].size != model_size)
        return util_error(err, errlen,
                          "%s draws %d px images but %s holds %d px images: KID compares images "
                          "of one size (make the dataset with ddim-prep --size %d)",
                          j->model_path, model_size, j->real_name, j->sets[0].size, model_size);
    return 0;
}

/* The model's samples into the generated set, stored as 8-bit images are. 0, or -1 with a
 * message when the backend cannot run the model. */
static int draw_samples(struct job *j, struct backend *be, long n, char *err, size_t errlen)
{
    const struct opts *o = &j->o;
    const struct run_config *run = &j->ew.cfg;
    struct sample_plan *p = &j->plan;
    memset(p, 0, sizeof *p);
    p->mode = SAMPLE_GRID;
    p->num_images = (int)n;
    p->steps = o->steps ? o->steps : run->kid_diffusion_steps;
    p->kind = o->sampler && !strcmp(o->sampler, "heun") ? SAMPLER_HEUN : SAMPLER_DDIM;
    p->eta = o->eta;
    p->seed = o->have_seed ? o->seed : run->diffusion.seed;
    p->program = "ddim-kid";
    double start = util_now();
    j->sets[1].images = sample_images(be, p, &j->ew, &j->evaluations, err, errlen);
    if (!j->sets[1].images)
        return -1;
    j->sets[1].n = n;
    j->sets[1].size = run->model.image_size;
    /* as ddim-sample --images-h5 stores them and the two-set mode reads them back: the KID
     * of the samples is the KID of their files */
    kid_set_quantize(&j->sets[1]);
    j->sampling_seconds = util_now() - start;
    return 0;
}

/* Both sets' features, the first `used` images of each: the real set's first (which checks
 * the InceptionV3 file before any sampling), then the model's samples are drawn (n_generated
 * of them) and encoded. 0 or -1 with a message. */
static int encode_all(struct job *j, struct backend *be, long n_generated, long used,
                      float *features[2], char *err, size_t errlen)
{
    struct kid_encoder *enc[2] = {NULL, NULL};
    char why[2048];
    for (int s = 0; s < 2; s++) {
        if (s == 1 && j->model_path && draw_samples(j, be, n_generated, err, errlen) != 0)
            break;
        if (s == 1 && j->sets[1].size == j->sets[0].size) {
            enc[1] = enc[0]; /* one network for sets of one size */
        } else {
            enc[s] = kid_encoder_create(be, j->inception, j->sets[s].size, j->o.kid_image_size,
                                        j->o.batch, why, sizeof why);
            if (!enc[s]) {
                util_error(err, errlen, "InceptionV3 weights (from %s): %s", j->inception_from,
                           why);
                break;
            }
        }
        features[s] = encode_set(enc[s], be, &j->sets[s], used, s ? "generated" : "real");
    }
    int ok = enc[0] && enc[1];
    kid_encoder_destroy(enc[0]);
    if (enc[1] != enc[0])
        kid_encoder_destroy(enc[1]);
    return ok ? 0 : -1;
}

/* The KID of every batch and their mean, as one JSON object with what was compared. */
static void print_json(FILE *f, const struct job *j, float *const features[2], long nb,
                       const char *backend, double seconds)
{
    int batch = j->o.batch;
    double kid = 0.0, *per_batch = util_xcalloc((size_t)nb, sizeof(double));
    for (long b = 0; b < nb; b++) {
        double sums[3];
        size_t off = (size_t)b * batch * INCEPTION_FEATURES;
        kid_kernel_sums(features[0] + off, features[1] + off, batch, INCEPTION_FEATURES, sums);
        per_batch[b] = kid_from_sums(sums, batch);
        kid += per_batch[b] / nb;
    }
    /* %.17g: the double itself, so that two runs can be compared bit for bit */
    fprintf(f, "{\"kid\":%.17g,\"kid_batches\":[", kid);
    for (long b = 0; b < nb; b++)
        fprintf(f, "%s%.17g", b ? "," : "", per_batch[b]);
    fprintf(f,
            "],\"batch_size\":%d,\"batches\":%ld,\"images_real\":%ld,\"images_generated\":%ld,"
            "\"images_used\":%ld,\"image_size_real\":%d,\"image_size_generated\":%d,"
            "\"kid_image_size\":%d,\"real\":",
            batch, nb, j->sets[0].n, j->sets[1].n, nb * batch, j->sets[0].size, j->sets[1].size,
            j->o.kid_image_size);
    json_string(f, j->real_name);
    fputs(",\"generated\":", f);
    json_string(f, j->model_path ? j->model_path : j->o.generated);
    if (j->model_path) {
        const struct sample_plan *p = &j->plan;
        fprintf(f,
                ",\"sampler\":\"%s\",\"steps\":%d,\"eta\":%.9g,\"seed\":%llu,"
                "\"network_evaluations_per_image\":%d,\"sampling_seconds\":%.3f",
                p->kind == SAMPLER_HEUN ? "heun" : "ddim", p->steps, (double)p->eta,
                (unsigned long long)p->seed, j->evaluations, j->sampling_seconds);
    }
    fputs(",\"inception_weights\":", f);
    json_string(f, j->inception);
    fprintf(f, ",\"backend\":\"%s\",\"seconds\":%.3f}\n", backend, seconds);
    fflush(f);
    free(per_batch);
}

/* Loads, samples, encodes and prints. 0 or -1 with a message. */
static int run(struct job *j, FILE *json, char *err, size_t errlen)
{
    if (open_model(j, err, errlen) != 0 || load_sets(j, err, errlen) != 0)
        return -1;
    long n_generated =
        j->model_path ? (j->o.num_images ? j->o.num_images : j->sets[0].n) : j->sets[1].n;
    long n = j->sets[0].n < n_generated ? j->sets[0].n : n_generated;
    if (n < 2)
        return util_error(err, errlen, "KID needs at least 2 images in each set (%ld and %ld)",
                          j->sets[0].n, n_generated);
    if (n < j->o.batch)
        j->o.batch = (int)n; /* one batch of all the images */
    long nb = n / j->o.batch;
    struct comm *comm = comm_single();
    struct backend *be = launch_pick_backend(j->o.backend, comm, "ddim-kid");
    float *features[2] = {NULL, NULL};
    double start = util_now();
    int rc = encode_all(j, be, n_generated, nb * j->o.batch, features, err, errlen);
    if (rc == 0)
        print_json(json, j, features, nb, be->name, util_now() - start);
    free(features[0]);
    free(features[1]);
    be->destroy(be);
    comm->destroy(comm);
    return rc;
}

int main(int argc, char **argv)
{
    util_prefer_passive_openmp(argv);
    struct job *j = util_xcalloc(1, sizeof *j);
    int rc = parse_args(argc, argv, &j->o);
    if (rc != 0) {
        free(j);
        return rc > 0 ? 0 : 2;
    }
    j->model_path = j->o.checkpoint ? j->o.checkpoint : j->o.model;
    FILE *json = json_stream();
    char err[4096];
    rc = run(j, json, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "ddim-kid: %s\n", err);
    for (int s = 0; s < 2; s++)
        kid_set_free(&j->sets[s]);
    infer_model_free(&j->ew); /* all zero when there was no model */
    if (json != stdout)
        fclose(json);
    free(j);
    return rc ? 1 : 0;
}
