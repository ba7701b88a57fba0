/* dataset_write.c: the writer of the dataset layout (dataset.h), for ddim-prep. */
#include "dataset.h"
#include "h5_util.h"
#include "util.h"

#include <hdf5.h>

#define GZIP_LEVEL 4 /* uint8 photos: level 4 is within 1% of 9's size, twice as fast */

const char *const dataset_split_group[2] = {"/train", "/validation"};
const char *const dataset_split_images[2] = {"/train/images", "/validation/images"};
const char *const dataset_split_count[2] = {"num_train", "num_validation"};
const char *const dataset_split_fingerprint[2] = {"train_xxh128", "validation_xxh128"};

static int attr_string(hid_t file, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8); /* h5py reads variable-length UTF-8 as str */
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = a < 0 ? -1 : H5Awrite(a, t, &value);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return st < 0 ? -1 : 0;
}

static int attr_numbers(hid_t file, const char *name, hid_t file_type, hid_t mem_type,
                        const void *values, hsize_t n)
{
    hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(file, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t st = a < 0 ? -1 : H5Awrite(a, mem_type, values);
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return st < 0 ? -1 : 0;
}

/* GROUP/images: uint8 (n, size, size, 3), one image per chunk, gzip, checksummed. */
static int write_split(hid_t file, const char *group, const uint8_t *images, long n, int size)
{
    hid_t g = H5Gcreate2(file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    hsize_t dims[4] = {(hsize_t)n, (hsize_t)size, (hsize_t)size, 3};
    hsize_t chunk[4] = {1, dims[1], dims[2], 3};
    hid_t d = h5u_create_dataset(g, "images", H5T_STD_U8LE, 4, dims, chunk, GZIP_LEVEL);
    herr_t st = d < 0 ? -1 : 0;
    if (st == 0 && n > 0)
        st = H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, images);
    if (d >= 0)
        H5Dclose(d);
    H5Gclose(g);
    return st < 0 ? -1 : 0;
}

int dataset_write(hid_t f, const char *label, const uint8_t *images, long n_train, long n_val,
                  int size, const struct dataset_meta *meta, char *err, size_t errlen)
{
    const size_t per_image = (size_t)size * (size_t)size * 3;
    long long ints[5] = {size, n_train, n_val, (long long)meta->split_seed, meta->skipped};
    const char *int_names[5] = {"image_size", dataset_split_count[SPLIT_TRAIN],
                                dataset_split_count[SPLIT_VALIDATION], "split_seed", "skipped"};
    int bad =
        write_split(f, dataset_split_group[SPLIT_TRAIN], images, n_train, size) ||
        write_split(f, dataset_split_group[SPLIT_VALIDATION], images + (size_t)n_train * per_image,
                    n_val, size) ||
        attr_string(f, "format", DATASET_FORMAT) || attr_string(f, "source", meta->source) ||
        attr_string(f, "preprocessing", meta->preprocessing) ||
        attr_numbers(f, "validation_fraction", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE,
                     &meta->validation_fraction, 1) ||
        attr_numbers(f, "train_mean", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, meta->mean, 3) ||
        attr_numbers(f, "train_variance", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, meta->variance, 3);
    for (int i = 0; i < 5 && !bad; i++)
        bad = attr_numbers(f, int_names[i], H5T_STD_I64LE, H5T_NATIVE_LLONG, &ints[i], 1);
    const long counts[2] = {n_train, n_val};
    const uint8_t *first = images;
    for (int split = 0; split < 2 && !bad; split++) { /* the content fingerprints */
        char hex[33];
        dataset_fingerprint_of(first, (size_t)counts[split] * per_image, hex);
        bad = attr_string(f, dataset_split_fingerprint[split], hex);
        first += (size_t)counts[split] * per_image;
    }
    if (bad)
        return util_error(err, errlen, "%s: writing the HDF5 file failed (disk full?)", label);
    return 0;
}
