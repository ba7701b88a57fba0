/* h5_util.c: see h5_util.h. */
#include "h5_util.h"
#include "util.h"

#include <string.h>

static void quiet_hdf5(void)
{
    static int done = 0;
    if (!done) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        done = 1;
    }
}

hid_t h5u_open_read(const char *path, char *err, size_t errlen)
{
    quiet_hdf5();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        util_error(err, errlen,
                   "%s: cannot open as an HDF5 file (missing, unreadable or not "
                   "HDF5)",
                   path);
    return f;
}

int h5u_exists(hid_t file, const char *name)
{
    quiet_hdf5();
    /* walk the path so that a missing intermediate group is "no", not an error */
    char buf[512];
    snprintf(buf, sizeof buf, "%s", name);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (H5Lexists(file, buf, H5P_DEFAULT) <= 0)
                return 0;
            *p = saved;
            if (saved == '\0')
                return 1;
        }
    }
}

int h5u_shape(hid_t file, const char *file_label, const char *name, int *ndim,
              size_t shape[H5U_MAX_DIMS], char *err, size_t errlen)
{
    if (!h5u_exists(file, name))
        return util_error(err, errlen, "%s: dataset '%s' is missing", file_label, name);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0)
        return util_error(err, errlen, "%s: '%s' is not a dataset", file_label, name);
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5U_MAX_DIMS];
    int rc = 0;
    if (nd < 0 || nd > H5U_MAX_DIMS) {
        rc = util_error(err, errlen, "%s: dataset '%s' has an unsupported rank %d", file_label,
                        name, nd);
    } else {
        H5Sget_simple_extent_dims(sp, dims, NULL);
        *ndim = nd;
        for (int i = 0; i < nd; i++)
            shape[i] = (size_t)dims[i];
    }
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

int h5u_read_floats(hid_t file, const char *file_label, const char *name, float *out, size_t count,
                    char *err, size_t errlen)
{
    int nd;
    size_t shape[H5U_MAX_DIMS];
    if (h5u_shape(file, file_label, name, &nd, shape, err, errlen) != 0)
        return -1;
    size_t have = 1;
    char dims[128] = "";
    for (int i = 0; i < nd; i++) {
        have *= shape[i];
        size_t used = strlen(dims);
        snprintf(dims + used, sizeof dims - used, "%s%zu", i ? "x" : "", shape[i]);
    }
    if (have != count)
        return util_error(err, errlen, "%s: dataset '%s' has shape (%s) = %zu values, expected %zu",
                          file_label, name, nd ? dims : "scalar", have, count);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    herr_t st = H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(d);
    if (st < 0)
        return util_error(err, errlen, "%s: cannot read dataset '%s' as float32", file_label, name);
    return 0;
}

int h5u_read_attr_doubles(hid_t file, const char *file_label, const char *obj, const char *attr,
                          double *out, size_t *count, char *err, size_t errlen)
{
    quiet_hdf5();
    if (H5Aexists_by_name(file, obj, attr, H5P_DEFAULT) <= 0)
        return util_error(err, errlen, "%s: attribute '%s' of '%s' is missing", file_label, attr,
                          obj);
    hid_t a = H5Aopen_by_name(file, obj, attr, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    int rc = 0;
    if (n < 1 || (size_t)n > *count) {
        rc = util_error(err, errlen, "%s: attribute '%s' of '%s' has %lld values, expected 1..%zu",
                        file_label, attr, obj, (long long)n, *count);
    } else if (H5Aread(a, H5T_NATIVE_DOUBLE, out) < 0) {
        rc = util_error(err, errlen, "%s: attribute '%s' of '%s' is not numeric", file_label, attr,
                        obj);
    } else {
        *count = (size_t)n;
    }
    H5Sclose(sp);
    H5Aclose(a);
    return rc;
}
