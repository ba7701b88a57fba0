/* h5_util.c: see h5_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "h5_util.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int h5u_read_attr_str(hid_t f, const char *label, const char *name, char *buf, size_t len,
                      char *err, size_t errlen)
{
    quiet_hdf5();
    if (H5Aexists(f, name) <= 0)
        return util_error(err, errlen, "%s: attribute '%s' is missing", label, name);
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t type = H5Aget_type(a);
    /* one string: H5Aread writes every element of the attribute into the buffers below */
    hid_t space = H5Aget_space(a);
    hssize_t npoints = H5Sget_simple_extent_npoints(space);
    H5Sclose(space);
    int rc = 0;
    if (H5Tget_class(type) != H5T_STRING) {
        rc = util_error(err, errlen, "%s: attribute '%s' is not a string", label, name);
    } else if (npoints != 1) {
        rc = util_error(err, errlen, "%s: attribute '%s' holds %lld strings, expected one", label,
                        name, (long long)npoints);
    } else if (H5Tis_variable_str(type) > 0) {
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type)); /* h5py writes UTF-8: no conversion */
        char *s = NULL;
        if (H5Aread(a, mem, &s) < 0 || !s)
            rc = util_error(err, errlen, "%s: cannot read attribute '%s'", label, name);
        else
            snprintf(buf, len, "%s", s);
        H5free_memory(s); /* allocated by the HDF5 library */
        H5Tclose(mem);
    } else {
        size_t n = H5Tget_size(type);
        char *s = calloc(n + 1, 1);
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, n);
        H5Tset_cset(mem, H5Tget_cset(type));
        if (!s || H5Aread(a, mem, s) < 0)
            rc = util_error(err, errlen, "%s: cannot read attribute '%s'", label, name);
        else
            snprintf(buf, len, "%s", s);
        free(s);
        H5Tclose(mem);
    }
    H5Tclose(type);
    H5Aclose(a);
    return rc;
}

int h5u_write_attr_i64(hid_t file, const char *name, const long long *v, int n)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, NULL);
    hid_t a = H5Acreate2(file, name, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, H5T_NATIVE_LLONG, v) >= 0 ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    return rc;
}

int h5u_write_attr_str(hid_t file, const char *name, const char *text)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, strlen(text) + 1);
    H5Tset_strpad(type, H5T_STR_NULLTERM);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(file, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, type, text) >= 0 ? 0 : -1;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(type);
    return rc;
}

int h5u_write_floats(hid_t file, const char *name, const float *v, size_t n)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(file, name, H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc =
        d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 ? 0 : -1;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(sp);
    H5Pclose(lcpl);
    return rc;
}

static int fsync_path(const char *path, int directory)
{
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

hid_t h5u_create_tmp(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen)
{
    quiet_hdf5();
    snprintf(tmp, tmplen, "%s.tmp", path);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        util_error(err, errlen, "cannot create '%s' (check the directory and the free space)", tmp);
    return f;
}

int h5u_commit(hid_t f, const char *tmp, const char *path, int rc, char *err, size_t errlen)
{
    if (rc == 0 && H5Fflush(f, H5F_SCOPE_GLOBAL) < 0)
        rc = util_error(err, errlen, "%s: cannot flush (disk full?)", tmp);
    if (H5Fclose(f) < 0 && rc == 0)
        rc = util_error(err, errlen, "%s: cannot close (disk full?)", tmp);
    if (rc == 0 && fsync_path(tmp, 0) != 0)
        rc = util_error(err, errlen, "%s: fsync failed: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = util_error(err, errlen, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (rc != 0) {
        unlink(tmp);
        return -1;
    }
    /* the rename itself is durable once the directory is synced */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    fsync_path(slash ? dir : ".", 1);
    return 0;
}
