/* fuzz_h5_edit.c: the libFuzzer driver that fuzzes an HDF5 loader through the file's
 * structure rather than its bytes. Mutated bytes mostly break HDF5's own parser (whose
 * crashes run_fuzzers.sh lists as third-party) before our checks see anything; here the
 * input is read as a list of edits made with the HDF5 library to a copy of a valid file,
 * FUZZ_EDIT_BASE (a seed of the loader's corpus), so that every input is a well-formed
 * file that tests what the loader does with what it finds in it: root or object attributes
 * replaced by other types, shapes, strings, NaNs and huge numbers, or deleted; datasets
 * replaced by others of another type or shape (up to 2^40 elements, chunked and unwritten)
 * or deleted; numeric datasets overwritten with NaN, infinities or huge values. An empty
 * input is the base file itself. Unknown or impossible edits are skipped. */
#include "fuzz_util.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_EDIT_BASE
#error "FUZZ_EDIT_BASE: the HDF5 file the edits start from (tests/fuzz/fuzz.cmake)"
#endif

enum { MAX_NAMES = 512, NAME_LEN = 256 };

/* the object-info calls took a third version in HDF5 1.12 (Debian 12 has 1.10) */
#if H5_VERSION_GE(1, 12, 0)
typedef H5O_info2_t obj_info;
#define visit_objects(f, cb, arg)                                                                  \
    H5Ovisit3(f, H5_INDEX_NAME, H5_ITER_NATIVE, cb, arg, H5O_INFO_BASIC)
#define get_obj_info(o, info) H5Oget_info3(o, info, H5O_INFO_NUM_ATTRS)
#else
typedef H5O_info_t obj_info;
#define visit_objects(f, cb, arg)                                                                  \
    H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, cb, arg, H5O_INFO_BASIC)
#define get_obj_info(o, info) H5Oget_info2(o, info, H5O_INFO_NUM_ATTRS)
#endif

struct edit {
    const uint8_t *data;
    size_t size, pos;
    hid_t file;
    char objects[MAX_NAMES][NAME_LEN]; /* every group and dataset, "/" first */
    int num_objects;
};

static unsigned next(struct edit *e)
{
    return e->pos < e->size ? e->data[e->pos++] : 0;
}

static uint64_t next64(struct edit *e)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | next(e);
    return v;
}

static herr_t note_object(hid_t obj, const char *name, const obj_info *info, void *arg)
{
    struct edit *e = arg;
    if ((info->type == H5O_TYPE_GROUP || info->type == H5O_TYPE_DATASET) &&
        e->num_objects < MAX_NAMES && strlen(name) + 2 < NAME_LEN)
        snprintf(e->objects[e->num_objects++], NAME_LEN, "%s%s", name[0] == '.' ? "" : "/",
                 name[0] == '.' ? "/" : name);
    return 0;
}

static const char *pick_object(struct edit *e)
{
    return e->objects[next(e) % e->num_objects];
}

/* An attribute name: one the object has, one the loaders read, or "note" (none reads it). */
static void pick_attr_name(struct edit *e, hid_t obj, char *name)
{
    static const char *known[] = {"format",         "image_size",     "widths",    "block_depth",
                                  "embedding_dims", "config",         "num_train", "num_validation",
                                  "train_mean",     "train_variance", "epoch",     "global_step",
                                  "step_in_epoch",  "optimizer_step", "note"};
    unsigned k = next(e);
    obj_info info;
    if (k & 1 && get_obj_info(obj, &info) >= 0 && info.num_attrs > 0 &&
        H5Aget_name_by_idx(obj, ".", H5_INDEX_NAME, H5_ITER_NATIVE,
                           (hsize_t)(k >> 1) % info.num_attrs, name, NAME_LEN, H5P_DEFAULT) > 0)
        return;
    snprintf(name, NAME_LEN, "%s", known[(k >> 1) % (sizeof known / sizeof *known)]);
}

static double pick_double(struct edit *e)
{
    static const double special[] = {0.0,   -0.0, 1.0,  -1.0,  3.0,    8.0,    16.0,        0.5,
                                     255.0, 1e6,  1e15, 1e300, -1e300, 9.3e18, 2147483648.0};
    unsigned k = next(e);
    if (k < 16)
        return k < 8 ? NAN : (k < 12 ? INFINITY : -INFINITY);
    if (k < 128)
        return special[k % (sizeof special / sizeof *special)];
    uint64_t bits = next64(e);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static void pick_string(struct edit *e, char *s, size_t len)
{
    static const char *known[] = {"ddim-dist dataset 1", "ddim-dist checkpoint 1",
                                  "ddim-dist ema weights 1", "",
                                  "model: {image_size: 8, widths: [4, 8]}"};
    unsigned k = next(e);
    if (k < 128) {
        snprintf(s, len, "%s", known[k % (sizeof known / sizeof *known)]);
        return;
    }
    size_t n = next(e) % (len - 1);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(next(e) % 95 + 32);
    s[n] = '\0';
}

/* Writes attribute `name` of obj anew: a number, numbers, a string or strings. */
static void set_attr(struct edit *e, hid_t obj, const char *name)
{
    unsigned kind = next(e) % 7;
    hsize_t n = kind == 2 || kind == 6 ? next(e) % 10 : kind == 5 ? next(e) % 4 : 1;
    hid_t space = kind == 0 || kind == 1 || kind == 3 || kind == 4 ? H5Screate(H5S_SCALAR)
                  : n == 0                                         ? H5Screate(H5S_NULL)
                                                                   : H5Screate_simple(1, &n, NULL);
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    double d[16];
    long long v[16];
    char text[4][128];
    const char *ptrs[4];
    for (hsize_t i = 0; i < n && i < 16; i++) {
        d[i] = pick_double(e);
        v[i] = (long long)next64(e);
    }
    hid_t type = -1, mem = -1;
    const void *buf = d;
    if (kind == 0 || kind == 6) {
        type = H5Tcopy(H5T_STD_I64LE), mem = H5Tcopy(H5T_NATIVE_LLONG), buf = v;
    } else if (kind == 1 || kind == 2) {
        type = H5Tcopy(H5T_IEEE_F64LE), mem = H5Tcopy(H5T_NATIVE_DOUBLE);
    } else {
        for (hsize_t i = 0; i < n && i < 4; i++) {
            pick_string(e, text[i], sizeof text[i]);
            ptrs[i] = text[i];
        }
        type = H5Tcopy(H5T_C_S1);
        H5Tset_size(type, kind == 3 ? strlen(text[0]) + 1 : H5T_VARIABLE);
        mem = H5Tcopy(type);
        buf = kind == 3 ? (const void *)text[0] : (const void *)ptrs;
    }
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        if (n > 0)
            H5Awrite(a, mem, buf);
        H5Aclose(a);
    }
    H5Tclose(type);
    H5Tclose(mem);
    H5Sclose(space);
}

/* Replaces dataset `name` by one of another type and shape, chunked and left unwritten
 * (so that dimensions up to 2^40 cost nothing). */
static void replace_dataset(struct edit *e, const char *name)
{
    /* the H5T_NATIVE_* names are function calls (the library's ids), not constants */
    unsigned k = next(e) % 5;
    hid_t type = k == 0   ? H5T_NATIVE_UINT8
                 : k == 1 ? H5T_NATIVE_FLOAT
                 : k == 2 ? H5T_NATIVE_DOUBLE
                 : k == 3 ? H5T_NATIVE_INT64
                          : H5T_C_S1;
    int rank = (int)(next(e) % 6);
    hsize_t dims[5], chunk[5];
    for (int i = 0; i < rank; i++) {
        unsigned b = next(e);
        dims[i] = b & 0x80 ? (hsize_t)1 << (b % 41) : b % 20;
        chunk[i] = 1;
    }
    H5Ldelete(e->file, name, H5P_DEFAULT);
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (rank > 0)
        H5Pset_chunk(dcpl, rank, chunk);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(e->file, name, type, space, lcpl, dcpl, H5P_DEFAULT);
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(space);
}

/* Overwrites a numeric dataset with one value: NaN, an infinity, a huge number, ... */
static void fill_dataset(struct edit *e, const char *name)
{
    hid_t d = H5Dopen2(e->file, name, H5P_DEFAULT);
    if (d < 0)
        return;
    hid_t space = H5Dget_space(d), type = H5Dget_type(d);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    double v = pick_double(e);
    if (H5Tget_class(type) == H5T_FLOAT && n > 0 && n <= (1 << 20)) {
        double *buf = malloc((size_t)n * sizeof *buf);
        for (hssize_t i = 0; i < n; i++)
            buf[i] = v;
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        free(buf);
    }
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(d);
}

static void apply_edit(struct edit *e)
{
    unsigned op = next(e) % 5;
    const char *obj_name = op == 0 || op == 1 ? "/" : pick_object(e);
    char attr[NAME_LEN];
    if (op == 0 || op == 1 || op == 2) {
        hid_t obj = H5Oopen(e->file, obj_name, H5P_DEFAULT);
        if (obj < 0)
            return;
        pick_attr_name(e, obj, attr);
        if (op == 1)
            H5Adelete(obj, attr);
        else
            set_attr(e, obj, attr);
        H5Oclose(obj);
    } else if (op == 3) {
        if (next(e) & 1)
            replace_dataset(e, obj_name);
        else
            fill_dataset(e, obj_name);
    } else if (strcmp(obj_name, "/") != 0) {
        H5Ldelete(e->file, obj_name, H5P_DEFAULT);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t *base;
    static size_t base_size;
    if (!base) {
        FILE *f = fopen(FUZZ_EDIT_BASE, "rb");
        if (!f || fseek(f, 0, SEEK_END) != 0 || (base_size = (size_t)ftell(f)) == 0 ||
            fseek(f, 0, SEEK_SET) != 0 || !(base = malloc(base_size)) ||
            fread(base, 1, base_size, f) != base_size) {
            fprintf(stderr, "fuzz_h5_edit: cannot read %s\n", FUZZ_EDIT_BASE);
            exit(2);
        }
        fclose(f);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    }
    struct fuzz_file f;
    fuzz_file_open(&f, base, base_size);
    static struct edit e; /* the object list is large */
    e.data = data, e.size = size, e.pos = 0, e.num_objects = 0;
    e.file = H5Fopen(f.path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (e.file < 0) {
        fprintf(stderr, "fuzz_h5_edit: cannot open the copy of %s\n", FUZZ_EDIT_BASE);
        exit(2);
    }
    visit_objects(e.file, note_object, &e);
    while (e.pos < e.size && e.num_objects > 0)
        apply_edit(&e);
    H5Fclose(e.file);
    fuzz_load(f.path);
    fuzz_file_close(&f);
    return 0;
}
