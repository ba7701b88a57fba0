/* ddim_prep.c: ddim-prep, the dataset preparation program. It turns a folder or an archive
 * of JPEG/PNG photos (e.g. the Oxford Flowers 102 102flowers.tgz, read directly by
 * src/programs/ddim_prep_archive.c) or procedural flowers (--synthetic N)
 * into the HDF5 file the trainer reads (layout in io/dataset.h), with the Keras example's
 * preprocessing (center crop, antialiased bilinear resize) and a seeded 80/20 split.
 * Exit codes: 0 done, 1 runtime error, 2 usage error. */
#define _POSIX_C_SOURCE 200809L
#include "ddim_prep.h"
#include "config.h"
#include "image_io.h"
#include "path_check.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct prep_options {
    const char *input, *output, *preview, *dump_in, *dump_out;
    int size;
    enum image_jpeg_dct jpeg_dct;
    uint64_t seed;
    double validation_fraction;
    long limit, synthetic;
};

/* The defaults, stated here only: the image size is the model's (the key table's
 * model.image_size, the example's 64); --help prints them from this. */
static struct prep_options prep_defaults(void)
{
    struct run_config d;
    config_defaults(&d);
    return (struct prep_options){
        .size = d.model.image_size, .seed = 42, .validation_fraction = 0.2};
}

static void usage(FILE *f)
{
    struct prep_options d = prep_defaults();
    fprintf(f,
            "usage: ddim-prep --input DIR|ARCHIVE --output FILE.h5 [options]\n"
            "       ddim-prep --synthetic N --output FILE.h5 [options]\n"
            "\n"
            "Prepares the image dataset that ddim-dist trains on: one HDF5 file with uint8\n"
            "/train/images and /validation/images (N, S, S, 3), one gzip chunk per image, and\n"
            "root attributes including the per-channel mean and variance of the training\n"
            "split (layout: io/dataset.h).\n"
            "\n"
            "  --input DIR      folder of .jpg/.jpeg/.png images (any case; decoded by content,\n"
            "                   so a PNG named .jpg works), e.g. the jpg/ folder of the Oxford\n"
            "                   Flowers 102 archive; subfolders are not searched\n"
            "  --input ARCHIVE  or a .tgz/.tar.gz/.tar/.zip of such images (e.g. 102flowers.tgz),\n"
            "                   read directly, never unpacked: images at any depth, in the order\n"
            "                   of their paths, so the dataset equals that of the unpacked folder\n"
            "  --synthetic N    instead of --input: N procedural flower images (petal rosettes\n"
            "                   on smooth backgrounds) drawn at the output size, deterministic\n"
            "                   in --seed; for demos and tests without a download\n"
            "  --output FILE    the HDF5 file to write (replaced if it exists); it is written\n"
            "                   as FILE.tmp and renamed only when complete\n"
            "  --size S         output image size in pixels (default %d, model.image_size's)\n"
            "  --seed N         seed of the split shuffle and of --synthetic (default %llu)\n"
            "  --validation-fraction F   share of images held out for validation/KID, in\n"
            "                   [0, 1) (default %g)\n"
            "  --limit N        use only N images of the folder: the first N of the seeded\n"
            "                   shuffle, i.e. a random subset (default: all)\n"
            "  --jpeg-dct tf|islow  JPEG inverse DCT: 'tf' (default) decodes exactly as\n"
            "                   TensorFlow's decode_jpeg, which the example uses through TFDS\n"
            "                   (libjpeg's fast integer DCT); 'islow' is libjpeg's own, more\n"
            "                   accurate default (pixels differ by a few levels)\n"
            "  --preview FILE.png  also write a contact sheet of the first 64 training images\n"
            "  --help           this text\n"
            "\n"
            "Preprocessing (the Keras example's preprocess_image): center crop to a square of\n"
            "side min(h, w), resize to SxS with TF's antialiased bilinear filter\n"
            "(tf.image.resize(antialias=True): triangle kernel widened by the scale factor),\n"
            "/255 and clip to [0, 1], stored as round(255 x). The trainer reads x = v / 255.\n"
            "\n"
            "Split: the example takes 80%% of each TFDS split for training. A plain folder has\n"
            "no splits, so the sorted file list is shuffled with a seeded generator (Philox,\n"
            "the same on every machine) and the first 80%% of the readable images train, the\n"
            "rest validate. The same --seed gives the same split.\n"
            "\n"
            "Unreadable, truncated or non-image files are reported by name and skipped; their\n"
            "number is printed and stored in the 'skipped' attribute. All images are held in\n"
            "memory while preparing (8189 flowers at 64x64: 100 MB).\n"
            "\n"
            "example:\n"
            "  ddim-prep --input ../shared/data/flowers102/jpg --output data/flowers64.h5\n"
            "  ddim-prep --input 102flowers.tgz --output data/flowers64.h5\n"
            "  ddim-prep --synthetic 2000 --output data/synthetic64.h5 --preview sheet.png\n",
            d.size, (unsigned long long)d.seed, d.validation_fraction);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "ddim-prep: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(ddim-prep --help explains the options)\n");
    return 2;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* One option with its value: 0, or 2 after printing a usage error. */
static int parse_option(const char *name, const char *value, struct prep_options *o)
{
    long n = 0;
    if (!strcmp(name, "--input")) {
        o->input = value;
    } else if (!strcmp(name, "--output")) {
        o->output = value;
    } else if (!strcmp(name, "--jpeg-dct")) {
        if (strcmp(value, "tf") && strcmp(value, "islow"))
            return usage_error("--jpeg-dct %s: expected 'tf' or 'islow'", value);
        o->jpeg_dct = strcmp(value, "tf") ? IMAGE_JPEG_DCT_ISLOW : IMAGE_JPEG_DCT_TF;
    } else if (!strcmp(name, "--preview")) {
        o->preview = value;
    } else if (!strcmp(name, "--size")) {
        if (parse_long(value, &n) || n < 1 || n > 4096)
            return usage_error("--size %s: expected an integer from 1 to 4096 (e.g. 64)", value);
        o->size = (int)n;
    } else if (!strcmp(name, "--seed")) {
        if (parse_long(value, &n) || n < 0)
            return usage_error("--seed %s: expected a non-negative integer", value);
        o->seed = (uint64_t)n;
    } else if (!strcmp(name, "--validation-fraction")) {
        char *end;
        o->validation_fraction = strtod(value, &end);
        if (end == value || *end || !(o->validation_fraction >= 0.0) ||
            !(o->validation_fraction < 1.0))
            return usage_error("--validation-fraction %s: expected a number in [0, 1), e.g. 0.2",
                               value);
    } else if (!strcmp(name, "--limit") || !strcmp(name, "--synthetic")) {
        if (parse_long(value, &n) || n < 1) {
            char arg[128];
            snprintf(arg, sizeof arg, "%s %s", name, value);
            return usage_error("%s: expected a positive integer", arg);
        }
        *(!strcmp(name, "--limit") ? &o->limit : &o->synthetic) = n;
    }
    return 0;
}

/* Accepts "--name value" and "--name=value" (getopt_long). Returns 0, or 2 after printing a
 * usage error. */
static int parse_args(int argc, char **argv, struct prep_options *o)
{
    *o = prep_defaults();
    static const struct option options[] = {
        {"input", required_argument, NULL, 0},
        {"output", required_argument, NULL, 0},
        {"jpeg-dct", required_argument, NULL, 0},
        {"preview", required_argument, NULL, 0},
        {"size", required_argument, NULL, 0},
        {"seed", required_argument, NULL, 0},
        {"limit", required_argument, NULL, 0},
        {"synthetic", required_argument, NULL, 0},
        {"validation-fraction", required_argument, NULL, 0},
        {"dump-resize", required_argument, NULL, 0}, /* hidden: tools/check_resize.py */
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c, index;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, &index)) != -1) {
        if (c == 'h') {
            usage(stdout);
            exit(0);
        }
        if (c == ':')
            return usage_error("option %s needs a value", argv[optind - 1]);
        if (c != 0)
            return usage_error("unknown option '%s'", argv[optind - 1]);
        char name[64];
        snprintf(name, sizeof name, "--%s", options[index].name);
        const char *value = optarg;
        if (!strcmp(name, "--dump-resize")) { /* IN.jpg OUT.bin */
            if (optind >= argc)
                return usage_error("%s needs IN.jpg OUT.bin", name);
            o->dump_in = value;
            o->dump_out = argv[optind++];
        } else if (parse_option(name, value, o) != 0) {
            return 2;
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (o->dump_in)
        return 0;
    if (!o->output)
        return usage_error("%s", "missing --output FILE.h5 (where to write the dataset)");
    if (!o->input == !o->synthetic)
        return usage_error("%s", "give exactly one of --input DIR|ARCHIVE or --synthetic N");
    if (o->synthetic && o->limit)
        return usage_error("%s", "--limit applies to --input; with --synthetic, choose N");
    return 0;
}

/* Writes the first min(n, 64) images as an 8-column contact sheet. */
static void write_preview(const char *path, const uint8_t *images, long n, int size)
{
    int cols = 8, count = n < 64 ? (int)n : 64, rows = (count + cols - 1) / cols;
    if (count < 1)
        return;
    int w = cols * size, h = rows * size;
    uint8_t *sheet = util_xcalloc((size_t)w * (size_t)h * 3, 1);
    for (int i = 0; i < count; i++)
        for (int y = 0; y < size; y++)
            memcpy(sheet + (((size_t)(i / cols) * size + y) * w + (size_t)(i % cols) * size) * 3,
                   images + ((size_t)i * size + y) * size * 3, (size_t)size * 3);
    char err[512];
    if (image_write_png(path, sheet, w, h, err, sizeof err) != 0)
        fprintf(stderr, "ddim-prep: warning: preview not written: %s\n", err);
    else
        fprintf(stderr, "ddim-prep: preview of %d training images in %s\n", count, path);
    free(sheet);
}

/* Decodes and preprocesses files[order[i]] into slot i, in parallel; ok[i] says whether it
 * worked. Unreadable files are reported as they come. Returns the number skipped. */
static long load_folder(const struct prep_options *o, char **files, const long *order, long n,
                        uint8_t *images, char *ok)
{
    const size_t per_image = (size_t)o->size * (size_t)o->size * 3;
    const double t0 = util_now();
    double last = t0;
    long done = 0, skipped = 0;
#pragma omp parallel
    {
        float *x = util_xmalloc(per_image * sizeof(float));
        char path[4096], err[1024];
#pragma omp for schedule(dynamic, 4)
        for (long i = 0; i < n; i++) {
            struct image_u8 img;
            snprintf(path, sizeof path, "%s/%s", o->input, files[order[i]]);
            ok[i] = image_load_dct(path, &img, o->jpeg_dct, err, sizeof err) == 0;
            if (ok[i]) {
                image_center_crop_resize(&img, o->size, x);
                prep_quantize(x, per_image, images + (size_t)i * per_image);
                image_free(&img);
            }
#pragma omp critical(prep_progress)
            {
                done++;
                if (!ok[i]) {
                    skipped++;
                    fprintf(stderr, "ddim-prep: warning: skipping %s\n", err);
                }
                double now = util_now();
                if (now - last >= 1.0 || done == n) {
                    fprintf(stderr, "ddim-prep: %ld/%ld images, %.0f images/s\n", done, n,
                            (double)done / (now - t0 + 1e-9));
                    last = now;
                }
            }
        }
        free(x);
    }
    return skipped;
}

/* --synthetic: flowers order[0..n) of the seed's generator into images. */
static void draw_synthetic(const struct prep_options *o, const long *order, long n, uint8_t *images,
                           char *ok, char *source, size_t source_len, char *preprocessing,
                           size_t preprocessing_len)
{
    const size_t per_image = (size_t)o->size * (size_t)o->size * 3;
    fprintf(stderr, "ddim-prep: drawing %ld synthetic flowers at %dx%d\n", n, o->size, o->size);
#pragma omp parallel
    {
        float *x = util_xmalloc(per_image * sizeof(float));
#pragma omp for schedule(dynamic, 4)
        for (long i = 0; i < n; i++) {
            prep_synthetic_image(o->seed, order[i], o->size, x);
            prep_quantize(x, per_image, images + (size_t)i * per_image);
            ok[i] = 1;
        }
        free(x);
    }
    snprintf(source, source_len, "synthetic (ddim-prep procedural flowers, seed %llu)",
             (unsigned long long)o->seed);
    snprintf(preprocessing, preprocessing_len,
             "procedural flowers drawn at %dx%d (3x3 supersampling), stored as round(255 x)",
             o->size, o->size);
}

/* The readable images (ok) compacted in their shuffled order, split into training and
 * validation, and written with their description; the exit code. */
static int write_dataset(const struct prep_options *o, struct prep_output *out, uint8_t *images,
                         const char *ok, long n, long skipped, int failed, const char *source,
                         const char *preprocessing)
{
    const size_t per_image = (size_t)o->size * (size_t)o->size * 3;
    char err[2048];
    long kept = 0; /* compact the readable images, keeping the shuffled order */
    for (long i = 0; i < n; i++) {
        if (ok[i] && kept != i)
            memmove(images + (size_t)kept * per_image, images + (size_t)i * per_image, per_image);
        kept += ok[i] ? 1 : 0;
    }
    int rc = 0;
    long n_val = (long)(kept * o->validation_fraction + 0.5);
    if (o->validation_fraction > 0.0 && n_val == 0 && kept >= 2)
        n_val = 1; /* keep a validation image whenever one was asked for */
    long n_train = kept - n_val;
    if (failed) {
        rc = 1;
    } else if (kept == 0) {
        fprintf(stderr,
                "ddim-prep: error: none of the %ld image files in %s could be read "
                "(%ld skipped, see the warnings above)\n",
                n, o->input, skipped);
        rc = 1;
    } else if (n_train < 1) {
        fprintf(stderr, "ddim-prep: error: %ld readable images leave no training image\n", kept);
        rc = 1;
    } else {
        struct dataset_meta meta = {.source = source,
                                    .preprocessing = preprocessing,
                                    .split_seed = o->seed,
                                    .validation_fraction = o->validation_fraction,
                                    .skipped = skipped};
        if (prep_output_write(out, images, n_train, n_val, o->size, &meta, err, sizeof err) != 0 ||
            prep_output_commit(out, err, sizeof err) != 0) {
            fprintf(stderr, "ddim-prep: error: %s\n", err);
            rc = 1;
        } else {
            fprintf(stderr,
                    "ddim-prep: wrote %s: %ld train + %ld validation images at %dx%d, %ld "
                    "skipped\n",
                    o->output, n_train, n_val, o->size, o->size, skipped);
            if (o->preview)
                write_preview(o->preview, images, n_train, o->size);
        }
    }
    return rc;
}

/* Neither --output nor --preview is an input: the archive, or an image file of the folder
 * (files[0..n)), or the other output. 0, or -1 after a message. */
static int check_outputs(const struct prep_options *o, char **files, long n, int archive)
{
    const struct path_use outputs[2] = {{"--output", o->output}, {"--preview", o->preview}};
    long count = archive || !o->input ? 1 : n;
    struct path_use *inputs = util_xcalloc((size_t)count, sizeof *inputs);
    char **paths = util_xcalloc((size_t)count, sizeof *paths);
    inputs[0] = (struct path_use){"--input", archive ? o->input : NULL};
    for (long i = 0; !archive && o->input && i < n; i++) {
        size_t len = strlen(o->input) + strlen(files[i]) + 2;
        paths[i] = util_xmalloc(len);
        snprintf(paths[i], len, "%s/%s", o->input, files[i]);
        inputs[i] = (struct path_use){"the input image", paths[i]};
    }
    char err[4096];
    int rc = path_check_outputs(outputs, 2, inputs, (int)count, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "ddim-prep: error: %s\n", err);
    for (long i = 0; i < count; i++)
        free(paths[i]);
    free(paths);
    free(inputs);
    return rc;
}

static int run(const struct prep_options *o, struct prep_output *out)
{
    char err[2048], source[1536], preprocessing[512];
    const size_t per_image = (size_t)o->size * (size_t)o->size * 3;
    char **files = NULL;
    long nfiles = 0, skipped = 0;
    int failed = 0; /* the archive could not be read: the error is printed */
    int archive = o->input && prep_input_is_archive(o->input);
    if (o->input) {
        int listed = archive ? prep_archive_list(o->input, &files, &nfiles, err, sizeof err)
                             : prep_list_images(o->input, &files, &nfiles, err, sizeof err);
        if (listed != 0) {
            fprintf(stderr, "ddim-prep: error: %s\n", err);
            return 1;
        }
    } else {
        nfiles = o->synthetic;
    }
    /* before anything is written: the output may not replace an input */
    int refused = check_outputs(o, files, nfiles, archive) != 0 ? 2 : 0; /* a usage error */
    if (!refused && prep_output_create(out, o->output, err, sizeof err) != 0) {
        fprintf(stderr, "ddim-prep: error: %s\n", err);
        refused = 1;
    }
    if (refused) {
        for (long i = 0; files && i < nfiles; i++)
            free(files[i]);
        free(files);
        return refused;
    }
    long *order = util_xmalloc((size_t)nfiles * sizeof(long));
    for (long i = 0; i < nfiles; i++)
        order[i] = i;
    prep_shuffle(order, nfiles, o->seed);
    long n = o->limit && o->limit < nfiles ? o->limit : nfiles;
    uint8_t *images = util_xmalloc((size_t)n * per_image);
    char *ok = util_xcalloc((size_t)n, 1);
    if (o->input) {
        fprintf(stderr, "ddim-prep: %ld images from %s%s\n", n, o->input,
                n < nfiles ? " (a seeded random subset, --limit)" : "");
        skipped = archive ? prep_archive_load(o->input, files, nfiles, order, n, o->size,
                                              o->jpeg_dct, images, ok, err, sizeof err)
                          : load_folder(o, files, order, n, images, ok);
        if (skipped < 0) {
            fprintf(stderr, "ddim-prep: error: %s\n", err);
            failed = 1;
            skipped = n;
            memset(ok, 0, (size_t)n);
        }
        snprintf(source, sizeof source, "%s %s (%ld image files, %ld used)",
                 archive ? "archive" : "folder", o->input, nfiles, n - skipped);
        snprintf(preprocessing, sizeof preprocessing,
                 "JPEG decoded with the %s IDCT; center crop to min(h, w); TF-compatible "
                 "antialiased bilinear resize (scale_and_translate, triangle kernel) to %dx%d; "
                 "/255, clip [0, 1]; stored as round(255 x)",
                 o->jpeg_dct == IMAGE_JPEG_DCT_TF ? "TF (libjpeg ifast)" : "libjpeg islow", o->size,
                 o->size);
    } else {
        draw_synthetic(o, order, n, images, ok, source, sizeof source, preprocessing,
                       sizeof preprocessing);
    }
    int rc = write_dataset(o, out, images, ok, n, skipped, failed, source, preprocessing);
    for (long i = 0; files && i < nfiles; i++)
        free(files[i]);
    free(files);
    free(order);
    free(images);
    free(ok);
    return rc;
}

int main(int argc, char **argv)
{
    util_prefer_passive_openmp(argv);
    struct prep_options o;
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (o.dump_in) {
        const struct path_use out = {"--dump-resize OUT", o.dump_out};
        const struct path_use in = {"--dump-resize IN", o.dump_in};
        char err[2048];
        if (path_check_outputs(&out, 1, &in, 1, err, sizeof err) != 0) {
            fprintf(stderr, "ddim-prep: error: %s\n", err);
            return 2;
        }
        return prep_dump_resize(o.dump_in, o.dump_out, o.size, o.jpeg_dct);
    }
    struct prep_output out = {.file = -1};
    rc = run(&o, &out);
    prep_output_abort(&out); /* no-op after a successful commit */
    return rc;
}
