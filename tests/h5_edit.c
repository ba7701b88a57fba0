/* h5_edit.c: the fault tests' tool for damaging a copy of a file the programs wrote, with
 * the HDF5 library (or, for a flipped bit, below it). Not a test itself.
 *
 *   h5_edit set-float FILE DATASET INDEX VALUE   element INDEX (flat) of a float dataset
 *                                               becomes VALUE (nan, inf, -1e30, ...)
 *   h5_edit set-attr FILE NAME V1 [V2 ...]      root attribute NAME becomes float64 values
 *   h5_edit float-images FILE N S VALUE          a new file with /images float32
 *                                               (N, S, S, 3), every value VALUE
 *   h5_edit zero-images FILE N S                 a new file with /images uint8 (N, S, S, 3),
 *                                               all 0, an image per chunk, deflated: a small
 *                                               file that truly holds large images
 *   h5_edit flip-bit FILE DATASET BYTE BIT      flips bit BIT of byte BYTE of the dataset's
 *                                               stored bytes (its first chunk when chunked),
 *                                               in the file itself: silent corruption
 *   h5_edit declare FILE DATASET N              DATASET becomes a dataset of the same type
 *                                               and shape but N rows (first dimension),
 *                                               chunked and never written: a file of a few KB
 *                                               that declares far more than it holds
 * Exit status 0, or 1 with a message. */
#define _POSIX_C_SOURCE 200809L
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, const char *name)
{
    fprintf(stderr, "h5_edit: %s: %s\n", what, name);
    return 1;
}

static int set_float(const char *path, const char *name, long long index, double value)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    if (d < 0)
        return fail("no such dataset", name);
    hid_t space = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(space);
    hsize_t dims[8], at[8], one = 1;
    H5Sget_simple_extent_dims(space, dims, NULL);
    for (int i = nd - 1; i >= 0; i--) { /* the flat index as coordinates */
        at[i] = (hsize_t)index % dims[i];
        index /= (long long)dims[i];
    }
    hid_t mem = H5Screate_simple(1, &one, NULL);
    int rc = H5Sselect_elements(space, H5S_SELECT_SET, 1, at) < 0 ||
             H5Dwrite(d, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, &value) < 0;
    H5Sclose(mem);
    H5Sclose(space);
    H5Dclose(d);
    H5Fclose(f);
    return rc ? fail("cannot write", name) : 0;
}

static int set_attr(const char *path, const char *name, int n, char **values)
{
    double v[16];
    hsize_t count = (hsize_t)n;
    for (int i = 0; i < n && i < 16; i++)
        v[i] = strtod(values[i], NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        return fail("cannot open", path);
    if (H5Aexists(f, name) > 0)
        H5Adelete(f, name);
    hid_t sp = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, NULL);
    hid_t a = H5Acreate2(f, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_DOUBLE, v) < 0;
    if (a >= 0)
        H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(f);
    return rc ? fail("cannot write attribute", name) : 0;
}

static int float_images(const char *path, hsize_t n, hsize_t s, float value)
{
    hsize_t dims[4] = {n, s, s, 3};
    size_t count = (size_t)(n * s * s * 3);
    float *v = malloc(count * sizeof *v);
    for (size_t i = 0; v && i < count; i++)
        v[i] = value;
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t d = H5Dcreate2(f, "images", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = !v || d < 0 || H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    free(v);
    return rc ? fail("cannot write", path) : 0;
}

static int zero_images(const char *path, hsize_t n, hsize_t s)
{
    hsize_t dims[4] = {n, s, s, 3}, chunk[4] = {1, s, s, 3}, start[4] = {0, 0, 0, 0};
    unsigned char *zeros = calloc((size_t)(s * s * 3), 1);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    H5Pset_deflate(dcpl, 1);
    hid_t sp = H5Screate_simple(4, dims, NULL), mem = H5Screate_simple(4, chunk, NULL);
    hid_t d = H5Dcreate2(f, "images", H5T_STD_U8LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = !zeros || d < 0;
    for (hsize_t i = 0; !rc && i < n; i++) {
        start[0] = i;
        rc = H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, chunk, NULL) < 0 ||
             H5Dwrite(d, H5T_NATIVE_UCHAR, mem, sp, H5P_DEFAULT, zeros) < 0;
    }
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(mem);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Fclose(f);
    free(zeros);
    return rc ? fail("cannot write", path) : 0;
}

/* Where the dataset's bytes (its first chunk, when chunked) start in the file. */
static haddr_t storage_address(hid_t d)
{
    hid_t dcpl = H5Dget_create_plist(d);
    int chunked = H5Pget_layout(dcpl) == H5D_CHUNKED;
    H5Pclose(dcpl);
    if (!chunked)
        return H5Dget_offset(d);
    hid_t space = H5Dget_space(d);
    hsize_t offset[8];
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    if (H5Dget_chunk_info(d, space, 0, offset, &mask, &addr, &size) < 0)
        addr = HADDR_UNDEF;
    H5Sclose(space);
    return addr;
}

static int flip_bit(const char *path, const char *name, long byte, int bit)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    if (d < 0)
        return fail("no such dataset", name);
    haddr_t addr = storage_address(d);
    H5Dclose(d);
    H5Fclose(f);
    if (addr == HADDR_UNDEF)
        return fail("no stored bytes", name);
    FILE *raw = fopen(path, "r+b");
    long at = (long)addr + byte;
    int c = raw && fseek(raw, at, SEEK_SET) == 0 ? fgetc(raw) : EOF;
    int rc = c == EOF || fseek(raw, at, SEEK_SET) != 0 || fputc(c ^ (1 << bit), raw) == EOF;
    if (raw && fclose(raw) != 0)
        rc = 1;
    if (!rc)
        printf("flipped bit %d of byte %ld (file offset %ld) of %s\n", bit, byte, at, name);
    return rc ? fail("cannot flip the bit in", path) : 0;
}

static int declare(const char *path, const char *name, hsize_t rows)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    if (d < 0)
        return fail("no such dataset", name);
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(space);
    hsize_t dims[8], chunk[8];
    H5Sget_simple_extent_dims(space, dims, NULL);
    H5Sclose(space);
    H5Dclose(d);
    H5Ldelete(f, name, H5P_DEFAULT);
    dims[0] = rows;
    for (int i = 0; i < nd; i++)
        chunk[i] = i == 0 ? 1 : dims[i];
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, nd, chunk);
    space = H5Screate_simple(nd, dims, NULL);
    d = H5Dcreate2(f, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    int rc = d < 0;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(space);
    H5Pclose(dcpl);
    H5Tclose(type);
    H5Fclose(f);
    return rc ? fail("cannot create", name) : 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "set-float") && argc == 6)
        return set_float(argv[2], argv[3], atoll(argv[4]), strtod(argv[5], NULL));
    if (!strcmp(cmd, "set-attr") && argc >= 5 && argc <= 20)
        return set_attr(argv[2], argv[3], argc - 4, argv + 4);
    if (!strcmp(cmd, "float-images") && argc == 6)
        return float_images(argv[2], (hsize_t)atoll(argv[3]), (hsize_t)atoll(argv[4]),
                            strtof(argv[5], NULL));
    if (!strcmp(cmd, "zero-images") && argc == 5)
        return zero_images(argv[2], (hsize_t)atoll(argv[3]), (hsize_t)atoll(argv[4]));
    if (!strcmp(cmd, "flip-bit") && argc == 6)
        return flip_bit(argv[2], argv[3], atol(argv[4]), atoi(argv[5]) & 7);
    if (!strcmp(cmd, "declare") && argc == 5)
        return declare(argv[2], argv[3], (hsize_t)atoll(argv[4]));
    fprintf(stderr, "usage: see the comment at the top of tests/h5_edit.c\n");
    return 2;
}
