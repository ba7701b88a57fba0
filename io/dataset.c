/* dataset.c: reads the HDF5 dataset written by ddim-prep (layout in dataset.h).
 *
 * dataset_open checks everything the trainer relies on before the first step (the format
 * tag, both image datasets' type and shape, the counts and statistics attributes) so that
 * a wrong or stale file fails with one message naming the file, the object and what was
 * expected, not with a shape error deep inside training. dataset_read reads one image per
 * hyperslab (one chunk each), so a rank touches only the chunks of its share of a batch;
 * dataset_read_all reads a whole split in one, for a resident training set. */
#include "dataset.h"
#include "h5_util.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
/* xxHash as a header-only library: no shared library to link or to carry to a GPU machine */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define DATASET_HINT "(re-create it with ddim-prep; see ddim-prep --help)"

static const char *const *const split_names = dataset_split_images;

/* Reads a string attribute of "/" into out; a failure adds the hint to re-make the file. */
static int read_attr_string(hid_t file, const char *path, const char *name, char *out,
                            size_t outlen, char *err, size_t errlen)
{
    out[0] = '\0';
    if (h5u_read_attr_str(file, path, name, out, outlen, err, errlen) == 0)
        return 0;
    size_t used = strlen(err);
    snprintf(err + used, errlen - used, " %s", DATASET_HINT);
    return -1;
}

static int read_attr_long(hid_t file, const char *path, const char *name, long *out, char *err,
                          size_t errlen)
{
    double v[1];
    size_t n = 1;
    *out = 0;
    if (h5u_read_attr_doubles(file, path, "/", name, v, &n, err, errlen) != 0)
        return -1;
    /* in range before the conversion, which is undefined for NaN and huge values */
    if (!(v[0] >= -1e15 && v[0] <= 1e15) || v[0] != (double)(long)v[0])
        return util_error(err, errlen, "%s: attribute '%s' of '/' is %g, expected an integer", path,
                          name, v[0]);
    *out = (long)v[0];
    return 0;
}

/* Opens one split's dataset and checks it is uint8 (N, S, S, 3). */
static int open_split(struct dataset *ds, int split, char *err, size_t errlen)
{
    const char *name = split_names[split];
    int nd;
    size_t shape[H5U_MAX_DIMS];
    if (!h5u_exists(ds->file, name))
        return util_error(err, errlen,
                          "%s: dataset '%s' is missing, expected uint8 (N, %d, %d, 3) "
                          "images %s",
                          ds->path, name, ds->image_size, ds->image_size, DATASET_HINT);
    if (h5u_shape(ds->file, ds->path, name, &nd, shape, err, errlen) != 0)
        return -1;
    long s = ds->image_size;
    if (nd != 4 || (long)shape[1] != s || (long)shape[2] != s || shape[3] != 3) {
        char dims[128] = "";
        for (int i = 0; i < nd; i++) {
            size_t used = strlen(dims);
            snprintf(dims + used, sizeof dims - used, "%s%zu", i ? ", " : "", shape[i]);
        }
        return util_error(err, errlen,
                          "%s: dataset '%s' has shape (%s), expected (N, %ld, %ld, 3) "
                          "(image_size attribute = %ld) %s",
                          ds->path, name, dims, s, s, s, DATASET_HINT);
    }
    hid_t d = H5Dopen2(ds->file, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    int ok =
        H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    H5Tclose(t);
    if (!ok) {
        H5Dclose(d);
        return util_error(err, errlen, "%s: dataset '%s' must hold uint8 pixels %s", ds->path, name,
                          DATASET_HINT);
    }
    ds->images[split] = d;
    ds->count[split] = (long)shape[0];
    return 0;
}

static int check_counts_and_stats(struct dataset *ds, char *err, size_t errlen)
{
    const char *const *count_attrs = dataset_split_count;
    for (int split = 0; split < 2; split++) {
        long n;
        if (read_attr_long(ds->file, ds->path, count_attrs[split], &n, err, errlen) != 0)
            return -1;
        if (n != ds->count[split])
            return util_error(err, errlen,
                              "%s: attribute '%s' = %ld but dataset '%s' holds %ld images "
                              "(the file is inconsistent) %s",
                              ds->path, count_attrs[split], n, split_names[split], ds->count[split],
                              DATASET_HINT);
    }
    if (ds->count[SPLIT_TRAIN] < 1)
        return util_error(err, errlen,
                          "%s: dataset '/train/images' is empty, expected at least "
                          "one training image",
                          ds->path);
    size_t n = 3;
    if (h5u_read_attr_doubles(ds->file, ds->path, "/", "train_mean", ds->mean, &n, err, errlen) !=
        0)
        return -1;
    if (n != 3)
        return util_error(err, errlen, "%s: attribute 'train_mean' has %zu values, expected 3",
                          ds->path, n);
    n = 3;
    if (h5u_read_attr_doubles(ds->file, ds->path, "/", "train_variance", ds->variance, &n, err,
                              errlen) != 0)
        return -1;
    if (n != 3)
        return util_error(err, errlen, "%s: attribute 'train_variance' has %zu values, expected 3",
                          ds->path, n);
    /* pixels in [0, 1]: a mean in [0, 1], a variance at most 1/4; and above 0, since the
     * normalizer divides by its square root (0 or less diverges at once, inf trains on
     * zeros) */
    for (int c = 0; c < 3; c++) {
        if (!(ds->mean[c] >= 0.0 && ds->mean[c] <= 1.0))
            return util_error(err, errlen,
                              "%s: attribute 'train_mean' holds %g for channel %d, expected a "
                              "mean of pixels in [0, 1] %s",
                              ds->path, ds->mean[c], c, DATASET_HINT);
        if (!(ds->variance[c] > 0.0 && ds->variance[c] <= 0.25))
            return util_error(err, errlen,
                              "%s: attribute 'train_variance' holds %g for channel %d, expected "
                              "a variance of pixels in [0, 1]: more than 0 (the images must "
                              "vary: the normalizer divides by its square root) and at most "
                              "0.25 %s",
                              ds->path, ds->variance[c], c, DATASET_HINT);
    }
    return 0;
}

int dataset_open(struct dataset *ds, const char *path, char *err, size_t errlen)
{
    memset(ds, 0, sizeof *ds);
    ds->file = ds->images[0] = ds->images[1] = -1;
    snprintf(ds->path, sizeof ds->path, "%s", path);
    ds->file = h5u_open_read(path, err, errlen);
    if (ds->file < 0)
        return -1;
    char format[128];
    long size;
    if (read_attr_string(ds->file, path, "format", format, sizeof format, err, errlen) != 0)
        goto fail;
    if (strcmp(format, DATASET_FORMAT) != 0) {
        util_error(err, errlen, "%s: attribute 'format' is '%s', expected '%s' %s", path, format,
                   DATASET_FORMAT, DATASET_HINT);
        goto fail;
    }
    if (read_attr_long(ds->file, path, "image_size", &size, err, errlen) != 0)
        goto fail;
    if (size < 1 || size > 65536) {
        util_error(err, errlen, "%s: attribute 'image_size' is %ld, expected 1..65536", path, size);
        goto fail;
    }
    ds->image_size = (int)size;
    for (int split = 0; split < 2; split++)
        if (open_split(ds, split, err, errlen) != 0)
            goto fail;
    if (check_counts_and_stats(ds, err, errlen) != 0)
        goto fail;
    return 0;
fail:
    dataset_close(ds);
    return -1;
}

void dataset_close(struct dataset *ds)
{
    for (int split = 0; split < 2; split++) {
        if (ds->images[split] >= 0)
            H5Dclose(ds->images[split]);
        ds->images[split] = -1;
    }
    if (ds->file >= 0)
        H5Fclose(ds->file);
    ds->file = -1;
}

int dataset_read(struct dataset *ds, enum dataset_split split, const long *idx, int n, float *out,
                 char *err, size_t errlen)
{
    if ((split != SPLIT_TRAIN && split != SPLIT_VALIDATION) || ds->images[split] < 0)
        return util_error(err, errlen, "%s: dataset_read: invalid split %d or dataset not open",
                          ds->path, (int)split);
    const hsize_t s = (hsize_t)ds->image_size;
    const size_t per_image = (size_t)s * (size_t)s * 3;
    hsize_t mem_dims[4] = {1, s, s, 3};
    hid_t mem = H5Screate_simple(4, mem_dims, NULL);
    hid_t file_space = H5Dget_space(ds->images[split]);
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (idx[i] < 0 || idx[i] >= ds->count[split]) {
            rc = util_error(err, errlen, "%s: image index %ld out of range for '%s' (%ld images)",
                            ds->path, idx[i], split_names[split], ds->count[split]);
            break;
        }
        hsize_t start[4] = {(hsize_t)idx[i], 0, 0, 0};
        float *dst = out + (size_t)i * per_image;
        /* HDF5 converts uint8 -> float exactly; then x / 255 as the example's
         * preprocess_image does (a division, not a multiplication, to match it bit for bit) */
        if (H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, mem_dims, NULL) < 0 ||
            H5Dread(ds->images[split], H5T_NATIVE_FLOAT, mem, file_space, H5P_DEFAULT, dst) < 0) {
            char why[512];
            rc = util_error(err, errlen, "%s: cannot read image %ld of '%s': %s", ds->path, idx[i],
                            split_names[split], h5u_read_failure(why, sizeof why));
            break;
        }
        for (size_t j = 0; j < per_image; j++)
            dst[j] = dst[j] / 255.0f;
    }
    H5Sclose(file_space);
    H5Sclose(mem);
    return rc;
}

int dataset_read_all(struct dataset *ds, enum dataset_split split, uint8_t *out, char *err,
                     size_t errlen)
{
    if ((split != SPLIT_TRAIN && split != SPLIT_VALIDATION) || ds->images[split] < 0)
        return util_error(err, errlen, "%s: dataset_read_all: invalid split %d or dataset not open",
                          ds->path, (int)split);
    if (ds->count[split] == 0)
        return 0; /* an empty validation split: nothing to read (and no empty selection) */
    const hsize_t s = (hsize_t)ds->image_size;
    hsize_t dims[4] = {(hsize_t)ds->count[split], s, s, 3}, start[4] = {0, 0, 0, 0};
    hid_t mem = H5Screate_simple(4, dims, NULL);
    hid_t file_space = H5Dget_space(ds->images[split]);
    int rc = 0;
    if (H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, dims, NULL) < 0 ||
        H5Dread(ds->images[split], H5T_NATIVE_UINT8, mem, file_space, H5P_DEFAULT, out) < 0) {
        char why[512];
        rc = util_error(err, errlen, "%s: cannot read the %ld images of '%s': %s", ds->path,
                        ds->count[split], split_names[split], h5u_read_failure(why, sizeof why));
    }
    H5Sclose(file_space);
    H5Sclose(mem);
    return rc;
}

/* --- content fingerprints ------------------------------------------------------------- */

static void hex_of(XXH128_hash_t h, char hex[33])
{
    XXH128_canonical_t c; /* big-endian bytes: the digits xxh128sum prints */
    XXH128_canonicalFromHash(&c, h);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", c.digest[i]);
}

void dataset_fingerprint_of(const uint8_t *pixels, size_t bytes, char hex[33])
{
    hex_of(XXH3_128bits(pixels, bytes), hex);
}

/* One split's pixels hashed as they are stored, a block of images at a time. */
static int hash_split(struct dataset *ds, int split, char hex[33], char *err, size_t errlen)
{
    enum { BLOCK = 256 };
    const hsize_t s = (hsize_t)ds->image_size;
    const size_t per = (size_t)s * s * 3;
    XXH3_state_t *state = XXH3_createState();
    if (!state)
        DDIM_FATAL("out of host memory hashing %s", ds->path);
    XXH3_128bits_reset(state);
    uint8_t *buf = util_xmalloc(BLOCK * per);
    hid_t file_space = H5Dget_space(ds->images[split]);
    int rc = 0;
    char why[512];
    for (long i = 0; rc == 0 && i < ds->count[split]; i += BLOCK) {
        long n = ds->count[split] - i < BLOCK ? ds->count[split] - i : BLOCK;
        hsize_t start[4] = {(hsize_t)i, 0, 0, 0}, dims[4] = {(hsize_t)n, s, s, 3};
        hid_t mem = H5Screate_simple(4, dims, NULL);
        if (H5Sselect_hyperslab(file_space, H5S_SELECT_SET, start, NULL, dims, NULL) < 0 ||
            H5Dread(ds->images[split], H5T_NATIVE_UINT8, mem, file_space, H5P_DEFAULT, buf) < 0)
            rc = util_error(err, errlen, "%s: cannot read images %ld..%ld of '%s': %s", ds->path, i,
                            i + n - 1, split_names[split], h5u_read_failure(why, sizeof why));
        else
            XXH3_128bits_update(state, buf, (size_t)n * per);
        H5Sclose(mem);
    }
    if (rc == 0)
        hex_of(XXH3_128bits_digest(state), hex);
    H5Sclose(file_space);
    free(buf);
    XXH3_freeState(state);
    return rc;
}

int dataset_fingerprint(struct dataset *ds, int *computed, char *err, size_t errlen)
{
    *computed = 0;
    for (int split = 0; split < 2; split++) {
        char *hex = ds->fingerprint[split];
        const char *attr = dataset_split_fingerprint[split];
        if (H5Aexists(ds->file, attr) > 0) {
            if (h5u_read_attr_str(ds->file, ds->path, attr, hex, 33, err, errlen) != 0)
                return -1;
            if (strlen(hex) != DATASET_FINGERPRINT_HEX ||
                strspn(hex, "0123456789abcdef") != DATASET_FINGERPRINT_HEX)
                return util_error(err, errlen,
                                  "%s: attribute '%s' is '%s', expected %d hexadecimal digits %s",
                                  ds->path, attr, hex, DATASET_FINGERPRINT_HEX, DATASET_HINT);
        } else {
            if (hash_split(ds, split, hex, err, errlen) != 0)
                return -1;
            *computed = 1;
        }
    }
    return 0;
}
