/* test_h5_util.c: io/h5_util.c's readers of what other tools write (label unit).
 *
 * - h5u_read_attr_strings reads every encoding Keras versions have used for `layer_names`
 *   and `weight_names`: fixed- and variable-length strings, ASCII and UTF-8, and an
 *   attribute with no elements of any type as an empty list (tf_keras's save_weights stores
 *   `weight_names = []` of a layer without weights as a float64 array of length 0, h5py's
 *   encoding of numpy's []); a non-empty attribute that is not strings is refused, naming
 *   the attribute and the object. The attributes are made with the HDF5 C library in the
 *   encodings that h5dump shows in Keras's files. */
#define _POSIX_C_SOURCE 200809L
#include "h5_util.h"
#include "test_util.h"
#include "util.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const names[2] = {"conv2d/kernel:0", "batch_normalization/beta:0"};

/* Attribute `name` of f: the two names as strings of the given size (H5T_VARIABLE or
 * fixed) and character set. */
static void attr_names(hid_t f, const char *name, size_t size, H5T_cset_t cset)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, size);
    H5Tset_cset(t, cset);
    if (size != H5T_VARIABLE) /* h5py's 'S' arrays: null-padded, the longest fills its slot */
        H5Tset_strpad(t, H5T_STR_NULLPAD);
    hsize_t n = 2;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (size == H5T_VARIABLE) {
        H5Awrite(a, t, names);
    } else {
        char *flat = util_xcalloc(2 * size, 1);
        for (int i = 0; i < 2; i++)
            memcpy(flat + i * size, names[i], strlen(names[i]));
        H5Awrite(a, t, flat);
        free(flat);
    }
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

/* An attribute with no elements: type `type`, a (0,) array or a null dataspace. */
static void attr_empty(hid_t f, const char *name, hid_t type, int null_space)
{
    hsize_t n = 0;
    hid_t sp = null_space ? H5Screate(H5S_NULL) : H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Aclose(a);
    H5Sclose(sp);
}

static void expect_names(hid_t f, const char *path, const char *attr, int want)
{
    char **got = NULL, err[512] = "";
    int n = -1;
    if (h5u_read_attr_strings(f, path, "/", attr, &got, &n, err, sizeof err) != 0) {
        test_fail("%s: refused: %s", attr, err);
        return;
    }
    int ok = n == want;
    for (int i = 0; ok && i < n; i++)
        ok = !strcmp(got[i], names[i]);
    if (!ok)
        test_fail("%s: read %d name(s) '%s', expected %d", attr, n, n > 0 ? got[0] : "", want);
    else
        printf("ok   %-24s -> %d name(s)\n", attr, n);
    h5u_free_strings(got, n);
}

static void test_string_encodings(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/attrs.h5", dir);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    size_t longest = strlen(names[1]);
    attr_names(f, "fixed_ascii", longest, H5T_CSET_ASCII);     /* Keras 2.1's published file */
    attr_names(f, "fixed_utf8", longest + 3, H5T_CSET_UTF8);   /* padded with NULs */
    attr_names(f, "vlen_ascii", H5T_VARIABLE, H5T_CSET_ASCII); /* tf_keras 2.21 save_weights */
    attr_names(f, "vlen_utf8", H5T_VARIABLE, H5T_CSET_UTF8);   /* h5py's str arrays */
    attr_empty(f, "empty_float64", H5T_IEEE_F64LE, 0);         /* tf_keras: weight_names = [] */
    attr_empty(f, "empty_int32", H5T_STD_I32LE, 0);
    attr_empty(f, "empty_string", H5T_C_S1, 0);
    attr_empty(f, "null_float64", H5T_IEEE_F64LE, 1);
    double one = 1.0;
    hsize_t n = 1;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t a = H5Acreate2(f, "numbers", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &one);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);

    char err[512];
    f = h5u_open_read(path, err, sizeof err);
    if (f < 0) {
        test_fail("%s", err);
        return;
    }
    const char *two[] = {"fixed_ascii", "fixed_utf8", "vlen_ascii", "vlen_utf8"};
    for (int i = 0; i < 4; i++)
        expect_names(f, path, two[i], 2);
    const char *none[] = {"empty_float64", "empty_int32", "empty_string", "null_float64"};
    for (int i = 0; i < 4; i++)
        expect_names(f, path, none[i], 0);
    char **got = NULL;
    int count = 0;
    if (h5u_read_attr_strings(f, path, "/", "numbers", &got, &count, err, sizeof err) == 0 ||
        !strstr(err, "'numbers'") || !strstr(err, "not a list of strings"))
        test_fail("a float attribute with a value: expected a refusal naming it, got '%s'", err);
    else
        printf("ok   numbers                  -> refused: %s\n", err);
    h5u_free_strings(got, count);
    H5Fclose(f);
}

int main(void)
{
    char dir[] = "/tmp/ddim_test_h5_util_XXXXXX";
    if (!mkdtemp(dir))
        DDIM_FATAL("mkdtemp failed");
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    test_string_encodings(dir);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_h5_util: could not remove %s\n", dir);
    return test_finish("test_h5_util");
}
