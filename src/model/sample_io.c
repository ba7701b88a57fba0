/* sample_io.c: see sample_io.h. */
#include "sample_io.h"
#include "h5_util.h"
#include "image_grid.h"
#include "util.h"

#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sample_h5_write(const char *path, const char *dataset, const float *x, int n, int size,
                    int as_u8, char *err, size_t errlen)
{
    size_t count = (size_t)n * size * size * 3;
    uint8_t *u8 = NULL;
    if (as_u8) {
        u8 = util_xmalloc(count);
        image_to_u8(x, count, u8);
    }
    char tmp[4096];
    hid_t f = h5u_create_tmp(path, tmp, sizeof tmp, err, errlen); /* in memory, then renamed */
    int rc = -1;
    if (f >= 0) {
        hsize_t dims[4] = {(hsize_t)n, (hsize_t)size, (hsize_t)size, 3};
        hsize_t chunk[4] = {1, dims[1], dims[2], 3}; /* an image per chunk, checksummed */
        hid_t type = as_u8 ? H5T_STD_U8LE : H5T_IEEE_F32LE;
        hid_t d = h5u_create_dataset(f, dataset, type, 4, dims, chunk, 0);
        if (d >= 0 && H5Dwrite(d, as_u8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL,
                               H5P_DEFAULT, as_u8 ? (const void *)u8 : (const void *)x) >= 0)
            rc = 0;
        else
            util_error(err, errlen, "%s: HDF5 cannot store dataset '%s'", path, dataset);
        if (d >= 0)
            H5Dclose(d);
        rc = h5u_commit(f, tmp, path, rc, err, errlen);
    }
    free(u8);
    return rc;
}

/* 1 if dataset `name` of f is stored as 32-bit floats. */
static int is_float32(hid_t f, const char *name)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return 0;
    hid_t t = H5Dget_type(d);
    int ok = H5Tget_class(t) == H5T_FLOAT && H5Tget_size(t) == 4;
    H5_CHECK(H5Tclose(t));
    H5Dclose(d);
    return ok;
}

int sample_noise_read(const char *path, int size, float **noise, int *n, char *err, size_t errlen)
{
    *noise = NULL;
    *n = 0;
    char expected[128];
    snprintf(expected, sizeof expected, "float32 of shape (N, %d, %d, 3), N >= 1", size, size);
    hid_t f = h5u_open_read(path, err, errlen);
    if (f < 0)
        return -1;
    int nd = 0, rc = -1;
    size_t shape[H5U_MAX_DIMS];
    if (!h5u_exists(f, SAMPLE_NOISE_DATASET)) {
        util_error(err, errlen, "--noise %s: no dataset '%s' (expected %s)", path,
                   SAMPLE_NOISE_DATASET, expected);
    } else if (h5u_shape(f, path, SAMPLE_NOISE_DATASET, &nd, shape, err, errlen) != 0) {
        /* err says why */
    } else if (nd != 4 || shape[0] < 1 || shape[0] > (1u << 20) || shape[1] != (size_t)size ||
               shape[2] != (size_t)size || shape[3] != 3) {
        char dims[128] = "";
        for (int i = 0; i < nd; i++) {
            size_t used = strlen(dims);
            snprintf(dims + used, sizeof dims - used, "%s%zu", i ? ", " : "", shape[i]);
        }
        util_error(err, errlen,
                   "--noise %s: dataset '%s' has shape (%s), expected %s (the model's "
                   "image size)",
                   path, SAMPLE_NOISE_DATASET, dims, expected);
    } else if (!is_float32(f, SAMPLE_NOISE_DATASET)) {
        util_error(err, errlen, "--noise %s: dataset '%s' is not float32 (expected %s)", path,
                   SAMPLE_NOISE_DATASET, expected);
    } else {
        size_t count = shape[0] * shape[1] * shape[2] * 3;
        *noise = h5u_alloc_for(path, SAMPLE_NOISE_DATASET, count * sizeof(float), err, errlen);
        rc = *noise ? h5u_read_floats(f, path, SAMPLE_NOISE_DATASET, *noise, count, err, errlen)
                    : -1;
        *n = (int)shape[0];
        for (size_t i = 0; rc == 0 && i < count; i++)
            if (!isfinite((*noise)[i]))
                rc = util_error(err, errlen,
                                "--noise %s: dataset '%s' holds %g at noise %zu, element %zu "
                                "(expected finite numbers)",
                                path, SAMPLE_NOISE_DATASET, (double)(*noise)[i],
                                i / (shape[1] * shape[2] * 3), i % (shape[1] * shape[2] * 3));
    }
    H5Fclose(f);
    if (rc != 0) {
        free(*noise);
        *noise = NULL;
        *n = 0;
    }
    return rc;
}
