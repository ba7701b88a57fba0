/* main_kid.c: ddim-kid, the Kernel Inception Distance between two image sets, computed as
 * the Keras example's KID metric computes it (kid.h): per batch of n real and n generated
 * images, averaged over the batches (a last partial batch is dropped, as the example's
 * validation set drops it). Prints one JSON object on stdout; progress on stderr. */
#define _POSIX_C_SOURCE 200809L
#include "comm.h"
#include "h5_util.h"
#include "image_io.h"
#include "inception.h"
#include "kid.h"
#include "launch.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

struct opts {
    const char *real, *generated, *weights, *backend;
    int batch, image_size, kid_image_size;
};

/* A loaded set: n images (n, size, size, 3) in [0, 1]. */
struct image_set {
    float *images;
    long n;
    int size;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ddim-kid --real SET --generated SET --weights INCEPTION.h5 [options]\n"
               "\n"
               "Kernel Inception Distance between two image sets, exactly as the Keras DDIM\n"
               "example's KID metric: InceptionV3 features (images x255, resized to 75 px,\n"
               "x/127.5-1, global average pool), kernel (x.y/2048 + 1)^3, the unbiased MMD^2\n"
               "per batch of n real and n generated images, averaged over the batches. Prints\n"
               "one JSON object.\n"
               "\n"
               "A SET is one of:\n"
               "  FILE.h5            ddim-prep's dataset (its validation split) or ddim-sample's\n"
               "                     --images-h5 output (/images)\n"
               "  FILE.h5:DATASET    any uint8 (N, S, S, 3) dataset of the file (0..255), or a\n"
               "                     float one in [0, 1], e.g. data.h5:train/images\n"
               "  DIR                every .png/.jpg/.jpeg in DIR, centre-cropped and resized to\n"
               "                     --image-size as ddim-prep does\n"
               "A model's samples: write them with ddim-sample --images-h5 first.\n"
               "\n"
               "options:\n"
               "  --weights FILE      Keras's inception_v3_weights_tf_dim_ordering_tf_kernels_\n"
               "                      notop.h5 (see docs/kid.md)\n"
               "  --batch N           images per KID batch (default 64, the example's batch)\n"
               "  --image-size S      size folder images are resized to (default: the other\n"
               "                      set's size, or 64)\n"
               "  --kid-image-size S  InceptionV3 input size (default 75, the example's)\n"
               "  --backend NAME      auto, cpu or cuda (default auto)\n"
               "  -h, --help          this text\n"
               "\n"
               "example:\n"
               "  ddim-sample --checkpoint runs/x/best.h5 --num-images 512 --steps 5 \\\n"
               "              --images-h5 samples.h5\n"
               "  ddim-kid --real data/flowers.h5 --generated samples.h5 \\\n"
               "           --weights inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5\n");
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
    return util_parse_int("ddim-kid", opt, v, lo, hi, out);
}

/* 0, 1 (help) or -1 */
static int parse_args(int argc, char **argv, struct opts *o)
{
    o->batch = 64;
    o->kid_image_size = INCEPTION_INPUT_SIZE;
    o->backend = "auto";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ddim-kid: %s needs a value (see ddim-kid --help)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int rc = 0;
        if (!strcmp(a, "--real"))
            o->real = v;
        else if (!strcmp(a, "--generated"))
            o->generated = v;
        else if (!strcmp(a, "--weights"))
            o->weights = v;
        else if (!strcmp(a, "--backend"))
            o->backend = v;
        else if (!strcmp(a, "--batch"))
            rc = parse_int(a, v, 2, 1 << 20, &o->batch);
        else if (!strcmp(a, "--image-size"))
            rc = parse_int(a, v, 1, 4096, &o->image_size);
        else if (!strcmp(a, "--kid-image-size"))
            rc = parse_int(a, v, INCEPTION_INPUT_SIZE, 4096, &o->kid_image_size);
        else {
            fprintf(stderr, "ddim-kid: unknown option '%s' (see ddim-kid --help)\n", a);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    if (!o->real || !o->generated || !o->weights) {
        fprintf(stderr, "ddim-kid: give --real, --generated and --weights (see ddim-kid --help)\n");
        return -1;
    }
    if (strcmp(o->backend, "auto") && strcmp(o->backend, "cpu") && strcmp(o->backend, "cuda")) {
        fprintf(stderr, "ddim-kid: --backend: expected auto, cpu or cuda, got '%s'\n", o->backend);
        return -1;
    }
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* FILE.h5[:DATASET]: uint8 (0..255) or float ([0, 1]) images (N, S, S, 3). */
static int load_h5_set(const char *spec, struct image_set *set, char *err, size_t errlen)
{
    char path[1024], name[256] = "";
    snprintf(path, sizeof path, "%s", spec);
    char *colon = strstr(path, ".h5:"); /* FILE.h5:DATASET */
    if (colon) {
        colon += 3;
        snprintf(name, sizeof name, "%s", colon + 1);
        *colon = '\0';
    }
    hid_t f = h5u_open_read(path, err, errlen);
    if (f < 0)
        return -1;
    if (!name[0])
        snprintf(name, sizeof name, "%s",
                 h5u_exists(f, "validation/images") ? "validation/images" : "images");
    size_t shape[H5U_MAX_DIMS];
    int nd = 0, rc = h5u_shape(f, path, name, &nd, shape, err, errlen);
    if (rc == 0 && (nd != 4 || shape[1] != shape[2] || shape[3] != 3 || shape[0] < 1))
        rc = util_error(err, errlen, "%s: dataset '%s' is not images (N, S, S, 3)", path, name);
    hid_t d = rc == 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    hid_t type = d >= 0 ? H5Dget_type(d) : -1;
    int is_u8 = type >= 0 && H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 1;
    int is_float = type >= 0 && H5Tget_class(type) == H5T_FLOAT;
    if (rc == 0 && !is_u8 && !is_float)
        rc = util_error(err, errlen, "%s: dataset '%s' is neither uint8 nor float", path, name);
    if (rc == 0) {
        size_t count = shape[0] * shape[1] * shape[2] * 3;
        set->images = util_xmalloc(count * sizeof(float));
        if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, set->images) < 0)
            rc = util_error(err, errlen, "%s: cannot read dataset '%s'", path, name);
        for (size_t i = 0; rc == 0 && is_u8 && i < count; i++)
            set->images[i] /= 255.0f; /* as ddim-prep's reader: float32 division */
        set->n = (long)shape[0];
        set->size = (int)shape[1];
    }
    if (type >= 0)
        H5Tclose(type);
    if (d >= 0)
        H5Dclose(d);
    H5Fclose(f);
    return rc;
}

static int has_image_ext(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot &&
           (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every PNG/JPEG of dir (sorted by name), centre-cropped and resized to size. */
static int load_dir_set(const char *dir, int size, struct image_set *set, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return util_error(err, errlen, "cannot open folder '%s': %s", dir, strerror(errno));
    char **names = NULL;
    long n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!has_image_ext(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            names = realloc(names, (size_t)cap * sizeof *names);
            if (!names)
                DDIM_FATAL("out of host memory listing '%s'", dir);
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = util_xmalloc(len);
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    int rc = n ? 0 : util_error(err, errlen, "folder '%s' has no .png/.jpg/.jpeg files", dir);
    if (n)
        qsort(names, (size_t)n, sizeof *names, cmp_names);
    size_t per = (size_t)size * size * 3;
    set->images = rc == 0 ? util_xmalloc((size_t)n * per * sizeof(float)) : NULL;
    for (long i = 0; i < n && rc == 0; i++) {
        struct image_u8 img;
        if (image_load(names[i], &img, err, errlen) != 0) {
            rc = -1;
            break;
        }
        image_center_crop_resize(&img, size, set->images + (size_t)i * per);
        image_free(&img);
    }
    for (long i = 0; i < n; i++)
        free(names[i]);
    free(names);
    set->n = n;
    set->size = size;
    return rc;
}

/* Features (n, 2048) of a set, batch by batch. */
static float *encode_set(struct backend *be, const struct opts *o, const struct image_set *set,
                         long n, const char *label, char *err, size_t errlen)
{
    struct kid_encoder *e =
        kid_encoder_create(be, o->weights, set->size, o->kid_image_size, o->batch, err, errlen);
    if (!e)
        return NULL;
    size_t per = (size_t)set->size * set->size * 3;
    float *dev = be->alloc(be, (size_t)o->batch * per * sizeof(float));
    float *features = util_xmalloc((size_t)n * INCEPTION_FEATURES * sizeof(float));
    double start = util_now(), last = start;
    for (long i = 0; i < n; i += o->batch) {
        int m = (int)(n - i < o->batch ? n - i : o->batch);
        be->upload(be, dev, set->images + (size_t)i * per, (size_t)m * per * sizeof(float));
        kid_encode(e, dev, m, features + (size_t)i * INCEPTION_FEATURES);
        if (util_now() - last > 5 || i + m == n) {
            util_log("ddim-kid: %s: %ld/%ld images encoded (%.1f s)\n", label, i + m, n,
                     util_now() - start);
            last = util_now();
        }
    }
    be->free(be, dev);
    kid_encoder_destroy(e);
    return features;
}

static int load_set(const char *spec, int size, struct image_set *set, char *err, size_t errlen)
{
    if (is_dir(spec))
        return load_dir_set(spec, size, set, err, errlen);
    return load_h5_set(spec, set, err, errlen);
}

int main(int argc, char **argv)
{
    util_prefer_passive_openmp(argv);
    struct opts o;
    memset(&o, 0, sizeof o);
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    char err[2048];
    struct image_set sets[2];
    memset(sets, 0, sizeof sets);
    const char *specs[2] = {o.real, o.generated}, *labels[2] = {"real", "generated"};
    /* HDF5 sets first, so that a folder takes the other set's size */
    for (int pass = 0; pass < 2 && rc == 0; pass++)
        for (int s = 0; s < 2 && rc == 0; s++) {
            if (is_dir(specs[s]) != pass)
                continue;
            int size = o.image_size ? o.image_size : sets[1 - s].size ? sets[1 - s].size : 64;
            if (load_set(specs[s], size, &sets[s], err, sizeof err) != 0) {
                fprintf(stderr, "ddim-kid: --%s: %s\n", labels[s], err);
                rc = 1;
            }
        }
    long n = sets[0].n < sets[1].n ? sets[0].n : sets[1].n;
    if (rc == 0 && n < 2) {
        fprintf(stderr, "ddim-kid: KID needs at least 2 images in each set (%ld and %ld)\n",
                sets[0].n, sets[1].n);
        rc = 1;
    }
    if (rc == 0 && n < o.batch)
        o.batch = (int)n; /* one batch of all the images */
    long nb = rc == 0 ? n / o.batch : 0, used = nb * o.batch;
    struct comm *comm = comm_single();
    struct backend *be = rc == 0 ? launch_pick_backend(o.backend, comm, "ddim-kid") : NULL;
    float *features[2] = {NULL, NULL};
    double start = util_now();
    for (int s = 0; s < 2 && rc == 0; s++) {
        features[s] = encode_set(be, &o, &sets[s], used, labels[s], err, sizeof err);
        if (!features[s]) {
            fprintf(stderr, "ddim-kid: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0) {
        double kid = 0;
        printf("{\"kid\":");
        double *per_batch = util_xcalloc((size_t)nb, sizeof(double));
        for (long b = 0; b < nb; b++) {
            double sums[3];
            size_t off = (size_t)b * o.batch * INCEPTION_FEATURES;
            kid_kernel_sums(features[0] + off, features[1] + off, o.batch, INCEPTION_FEATURES,
                            sums);
            per_batch[b] = kid_from_sums(sums, o.batch);
            kid += per_batch[b] / nb;
        }
        printf("%.8g,\"kid_batches\":[", kid);
        for (long b = 0; b < nb; b++)
            printf("%s%.8g", b ? "," : "", per_batch[b]);
        printf("],\"batch_size\":%d,\"batches\":%ld,\"images_real\":%ld,\"images_generated\":%ld,"
               "\"images_used\":%ld,\"image_size_real\":%d,\"image_size_generated\":%d,"
               "\"kid_image_size\":%d,\"backend\":\"%s\",\"seconds\":%.3f}\n",
               o.batch, nb, sets[0].n, sets[1].n, used, sets[0].size, sets[1].size,
               o.kid_image_size, be->name, util_now() - start);
        free(per_batch);
    }
    for (int s = 0; s < 2; s++) {
        free(sets[s].images);
        free(features[s]);
    }
    if (be)
        be->destroy(be);
    comm->destroy(comm);
    return rc;
}
