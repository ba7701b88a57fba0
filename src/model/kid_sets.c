/* kid_sets.c: loading ddim-kid's image sets (kid_sets.h). */
#define _POSIX_C_SOURCE 200809L
#include "kid_sets.h"
#include "h5_util.h"
#include "image_grid.h"
#include "image_io.h"
#include "image_list.h"
#include "util.h"

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int kid_set_is_folder(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int kid_set_load_h5(const char *path, const char *dataset, struct image_set *set, char *err,
                    size_t errlen)
{
    char name[256] = "";
    memset(set, 0, sizeof *set);
    if (dataset)
        snprintf(name, sizeof name, "%s", dataset);
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

/* Every image of dir (image_list.h's rule and order), centre-cropped and resized to size. */
static int load_dir_set(const char *dir, int size, struct image_set *set, char *err, size_t errlen)
{
    struct image_list l;
    char why[512];
    if (image_list_folder(dir, &l, why, sizeof why) != 0)
        return util_error(err, errlen, "cannot open folder '%s': %s", dir, why);
    int rc = l.count ? 0 : util_error(err, errlen, "folder '%s' has no .png/.jpg/.jpeg files", dir);
    size_t per = (size_t)size * size * 3;
    set->images = rc == 0 ? util_xmalloc((size_t)l.count * per * sizeof(float)) : NULL;
    for (long i = 0; i < l.count && rc == 0; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, l.names[i]);
        struct image_u8 img;
        if (image_load(path, &img, err, errlen) != 0) {
            rc = -1;
            break;
        }
        image_center_crop_resize(&img, size, set->images + (size_t)i * per);
        image_free(&img);
    }
    set->n = l.count;
    set->size = size;
    image_list_free(&l);
    return rc;
}

int kid_set_load(const char *spec, int size, struct image_set *set, char *err, size_t errlen)
{
    memset(set, 0, sizeof *set);
    if (kid_set_is_folder(spec))
        return load_dir_set(spec, size, set, err, errlen);
    char path[1024];
    snprintf(path, sizeof path, "%s", spec);
    char *colon = strstr(path, ".h5:"); /* FILE.h5:DATASET */
    if (colon)
        colon[3] = '\0';
    return kid_set_load_h5(path, colon ? colon + 4 : NULL, set, err, errlen);
}

void kid_set_quantize(struct image_set *set)
{
    size_t count = (size_t)set->n * set->size * set->size * 3;
    uint8_t *u8 = util_xmalloc(count);
    image_to_u8(set->images, count, u8); /* what sample_h5_write stores */
    for (size_t i = 0; i < count; i++)
        set->images[i] = (float)u8[i] / 255.0f; /* what load_h5_set reads back */
    free(u8);
}

void kid_set_free(struct image_set *set)
{
    free(set->images);
    memset(set, 0, sizeof *set);
}
