/* h5_util.c: see h5_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "h5_util.h"
#include "atomic_file.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet_hdf5(void)
{
    static int done = 0;
    if (!done) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        done = 1;
    }
}

/* H5Ewalk2's callback: keeps the innermost error, which an upward walk visits first. */
static herr_t keep_innermost(unsigned n, const H5E_error2_t *e, void *data)
{
    char **buf = data;
    if (n == 0 && e->desc)
        snprintf(buf[0], (size_t)(buf[1] - buf[0]), "%s", e->desc);
    return 0;
}

const char *h5u_last_error(char *buf, size_t len)
{
    if (!len)
        return buf;
    buf[0] = '\0';
    char *span[2] = {buf, buf + len};
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, span);
    return buf;
}

const char *h5u_read_failure(char *buf, size_t len)
{
    h5u_last_error(buf, len);
    if (strstr(buf, "Fletcher32")) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used,
                 " (the checksum stored with the data does not match its bytes: the file is "
                 "damaged)");
    }
    return buf;
}

void h5u_check_at(const char *file, int line, long long rc, const char *call)
{
    if (rc >= 0)
        return;
    char why[512];
    util_fatal_at(file, line, "HDF5 error in %s: %s", call, h5u_last_error(why, sizeof why));
}

hid_t h5u_open_read(const char *path, char *err, size_t errlen)
{
    quiet_hdf5();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        char why[512];
        util_error(err, errlen,
                   "%s: cannot open as an HDF5 file (missing, unreadable or not HDF5: %s)", path,
                   h5u_last_error(why, sizeof why));
    }
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

/* 0 when every element dataset d declares (elements of `type_size` bytes) is stored in the
 * file: a contiguous dataset's bytes all allocated, every chunk of a chunked one written. A
 * few KB of file can declare 2^31 images that were never written (HDF5 would read them as
 * zeros): refused before anyone allocates for them. */
static int check_stored(hid_t d, const char *file_label, const char *name, hsize_t elements,
                        char *err, size_t errlen)
{
    hid_t dcpl = H5Dget_create_plist(d), type = H5Dget_type(d), space = H5Dget_space(d);
    H5D_layout_t layout = H5Pget_layout(dcpl);
    hsize_t want = elements * H5Tget_size(type), have = H5Dget_storage_size(d);
    const char *unit = "bytes";
    if (layout == H5D_CHUNKED && elements > 0) {
        hsize_t dims[H5U_MAX_DIMS], chunk[H5U_MAX_DIMS], n = 0;
        int nd = H5Sget_simple_extent_dims(space, dims, NULL);
        H5Pget_chunk(dcpl, nd, chunk);
        want = 1;
        for (int i = 0; i < nd; i++)
            want *= (dims[i] + chunk[i] - 1) / chunk[i];
        have = H5Dget_num_chunks(d, space, &n) >= 0 ? n : 0;
        unit = "chunks";
    } else if (layout != H5D_CONTIGUOUS) {
        want = have; /* compact: stored in the object header, always whole */
    }
    H5Sclose(space);
    H5Tclose(type);
    H5Pclose(dcpl);
    if (have >= want)
        return 0;
    return util_error(err, errlen,
                      "%s: dataset '%s' declares %llu elements, but the file stores only %llu of "
                      "the %llu %s they need: a damaged or incomplete file",
                      file_label, name, (unsigned long long)elements, (unsigned long long)have,
                      (unsigned long long)want, unit);
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
        hsize_t elements = 1;
        for (int i = 0; i < nd; i++) {
            shape[i] = (size_t)dims[i];
            elements *= dims[i];
        }
        rc = check_stored(d, file_label, name, elements, err, errlen);
    }
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

void *h5u_alloc_for(const char *file_label, const char *name, size_t bytes, char *err,
                    size_t errlen)
{
    char why[256] = "";
    void *p = util_memory_check(bytes, why, sizeof why) == 0 ? malloc(bytes ? bytes : 1) : NULL;
    if (!p && !why[0])
        snprintf(why, sizeof why, "%.2f GiB of host memory, more than can be had now",
                 bytes / 1073741824.0);
    if (!p)
        util_error(err, errlen, "%s: dataset '%s' needs %s", file_label, name, why);
    return p;
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
    int rc = 0;
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
        char why[512]; /* before the next call clears HDF5's error stack */
        rc = util_error(err, errlen, "%s: cannot read dataset '%s' as float32: %s", file_label,
                        name, h5u_read_failure(why, sizeof why));
    }
    H5Dclose(d);
    return rc;
}

int h5u_read_finite_floats(hid_t file, const char *file_label, const char *name, float *out,
                           size_t count, char *err, size_t errlen)
{
    if (h5u_read_floats(file, file_label, name, out, count, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(out[i]))
            return util_error(err, errlen,
                              "%s: dataset '%s' holds %g at element %zu of %zu: not a finite "
                              "number (the file is damaged, or was saved from a run that had "
                              "diverged)",
                              file_label, name, (double)out[i], i, count);
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

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = util_xcalloc(n + 1, 1);
    memcpy(d, s, n);
    return d;
}

/* The strings of an open string attribute, fixed or variable length, into a malloc'd array. */
static int read_string_array(hid_t a, hid_t type, char ***out, int count)
{
    char **res = util_xcalloc(count ? (size_t)count : 1, sizeof *res);
    hid_t mem = H5Tcopy(H5T_C_S1);
    H5Tset_cset(mem, H5Tget_cset(type));
    int rc = 0;
    if (H5Tis_variable_str(type) > 0) {
        char **vl = util_xcalloc(count ? (size_t)count : 1, sizeof *vl);
        H5Tset_size(mem, H5T_VARIABLE);
        rc = H5Aread(a, mem, vl) < 0 ? -1 : 0;
        for (int i = 0; i < count; i++) {
            res[i] = dup_str(vl[i] ? vl[i] : "");
            H5free_memory(vl[i]); /* allocated by the HDF5 library */
        }
        free(vl);
    } else {
        /* one more byte than the file's size: h5py's null-padded strings may fill it all */
        size_t n = H5Tget_size(type) + 1;
        char *flat = util_xcalloc((size_t)count * n + 1, 1);
        H5Tset_size(mem, n);
        rc = H5Aread(a, mem, flat) < 0 ? -1 : 0;
        for (int i = 0; i < count; i++) {
            res[i] = util_xcalloc(n + 1, 1);
            memcpy(res[i], flat + (size_t)i * n, n);
        }
        free(flat);
    }
    H5Tclose(mem);
    *out = res;
    return rc;
}

int h5u_read_attr_strings(hid_t f, const char *label, const char *obj, const char *attr,
                          char ***out, int *count, char *err, size_t errlen)
{
    quiet_hdf5();
    *out = NULL;
    *count = 0;
    if (H5Aexists_by_name(f, obj, attr, H5P_DEFAULT) <= 0)
        return util_error(err, errlen, "%s: attribute '%s' of '%s' is missing", label, attr, obj);
    hid_t a = H5Aopen_by_name(f, obj, attr, H5P_DEFAULT, H5P_DEFAULT);
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    int ndim = H5Sget_simple_extent_ndims(space);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    int rc = 0;
    if (n == 0) /* Keras writes an empty list as a float64 array of length 0 (numpy's []) */
        *out = util_xcalloc(1, sizeof **out);
    else if (H5Tget_class(type) != H5T_STRING || ndim > 1 || n < 0 || n > 1000000)
        rc = util_error(err, errlen, "%s: attribute '%s' of '%s' is not a list of strings", label,
                        attr, obj);
    else if (read_string_array(a, type, out, (int)n) != 0) {
        h5u_free_strings(*out, (int)n);
        *out = NULL;
        rc = util_error(err, errlen, "%s: cannot read attribute '%s' of '%s'", label, attr, obj);
    } else
        *count = (int)n;
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(a);
    return rc;
}

void h5u_free_strings(char **strings, int count)
{
    if (!strings)
        return;
    for (int i = 0; i < count; i++)
        free(strings[i]);
    free(strings);
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

static int checksums = 1;
enum { ISTORE_K = 4 };

void h5u_set_checksums(int on)
{
    checksums = on;
}

hid_t h5u_create_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                         const hsize_t *chunk, int gzip)
{
    hsize_t elements = 1;
    for (int i = 0; i < rank; i++)
        elements *= dims[i];
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    /* filters need chunks, and chunks need elements; without checksums (only to measure
     * them) a dataset without compression or a chunk shape is contiguous, as before them */
    if (elements > 0 && rank > 0 && (checksums || gzip > 0 || chunk)) {
        H5Pset_chunk(dcpl, rank, chunk ? chunk : dims);
        if (gzip > 0)
            H5Pset_deflate(dcpl, (unsigned)gzip);
        if (checksums) /* last: it checks the bytes as stored, before they are inflated */
            H5Pset_fletcher32(dcpl);
    }
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, type, sp, lcpl, dcpl, H5P_DEFAULT);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
    return d;
}

int h5u_write_floats(hid_t file, const char *name, const float *v, size_t n)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t d = h5u_create_dataset(file, name, H5T_IEEE_F32LE, 1, dims, NULL, 0);
    int rc =
        d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 ? 0 : -1;
    if (d >= 0)
        H5Dclose(d);
    return rc;
}

hid_t h5u_create_mem(const char *name, char *err, size_t errlen)
{
    quiet_hdf5();
    /* the core driver without a backing store: HDF5 writes nothing to disk, so a full disk
     * can never fail one of its own writes (HDF5 1.10 cannot close a file whose flush
     * failed: its handle stays half-open and crashes the library's clean-up at exit), and
     * h5u_commit's plain writes report the system's cause */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), fcpl = H5Pcreate(H5P_FILE_CREATE);
    hid_t f = -1;
    /* every dataset is chunked (h5u_create_dataset); in the file format every HDF5 version
     * reads (the newer formats' images come out of H5Fget_file_image with a superblock that
     * fails its checksum in HDF5 1.10), each has a B-tree of its chunks, whose nodes hold 2K
     * entries: HDF5's K of 32 makes 3.6 KB per weight, so that a small model's checkpoint
     * grows 2.2 times; K = ISTORE_K keeps nodes small and a dataset's 8189 image chunks a
     * few levels deep */
    if (fapl >= 0 && fcpl >= 0 && H5Pset_fapl_core(fapl, (size_t)4 << 20, 0) >= 0 &&
        H5Pset_istore_k(fcpl, ISTORE_K) >= 0)
        f = H5Fcreate(name, H5F_ACC_TRUNC, fcpl, fapl); /* name: unique, for messages */
    if (fapl >= 0)
        H5Pclose(fapl);
    if (fcpl >= 0)
        H5Pclose(fcpl);
    if (f < 0)
        util_error(err, errlen, "%s: HDF5 cannot create the file in memory (out of memory?)", name);
    return f;
}

hid_t h5u_create_tmp(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen)
{
    snprintf(tmp, tmplen, "%s.tmp", path);
    return h5u_create_mem(tmp, err, errlen);
}

int h5u_commit(hid_t f, const char *tmp, const char *path, int rc, char *err, size_t errlen)
{
    void *image = NULL;
    ssize_t size = -1;
    if (rc == 0 && H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0)
        size = H5Fget_file_image(f, NULL, 0);
    if (rc == 0 && size > 0) {
        image = malloc((size_t)size);
        if (!image || H5Fget_file_image(f, image, (size_t)size) != size)
            size = -1;
    }
    if (rc == 0 && size <= 0)
        rc = util_error(err, errlen, "%s: HDF5 cannot serialize the file (out of host memory?)",
                        tmp);
    if (H5Fclose(f) < 0 && rc == 0) /* in memory: nothing that can fail for lack of disk */
        rc = util_error(err, errlen, "%s: cannot close the in-memory file (HDF5)", tmp);
    if (rc == 0) /* atomic_file_write writes to path.tmp, the name given to tmp */
        rc = atomic_file_write(path, image, (size_t)size, err, errlen);
    free(image);
    return rc;
}
