/* kid_sets.h: the image sets ddim-kid compares: an HDF5 dataset of images (ddim-prep's
 * splits, ddim-sample's --images-h5, any (N, S, S, 3) uint8 or float dataset) or a folder of
 * PNG/JPEG files, all loaded as float images in [0, 1] the way ddim-prep's reader sees them. */
#ifndef DDIM_KID_SETS_H
#define DDIM_KID_SETS_H

#include <stddef.h>

/* n images (n, size, size, 3) in [0, 1], host memory. */
struct image_set {
    float *images;
    long n;
    int size;
};

/* spec: FILE.h5 (its validation/images, else its /images), FILE.h5:DATASET, or a folder
 * (every .png/.jpg/.jpeg, sorted by name, centre-cropped and resized to `size` as ddim-prep
 * does). uint8 datasets are divided by 255 in float32, as ddim-prep's reader does. 0, or
 * -1 with a message naming the file or folder and what is wrong. */
int kid_set_load(const char *spec, int size, struct image_set *set, char *err, size_t errlen);

/* Dataset `dataset` of the HDF5 file at path (NULL: validation/images if there is one, else
 * /images): uint8 (0..255) or float ([0, 1]) images (N, S, S, 3). 0 or -1 as above. */
int kid_set_load_h5(const char *path, const char *dataset, struct image_set *set, char *err,
                    size_t errlen);

/* Whether spec names a folder (its images take another set's size). */
int kid_set_is_folder(const char *spec);

/* The images of a model's samples as 8-bit files hold them: x -> round(255 clip(x)) / 255,
 * the values ddim-sample --images-h5 writes and kid_set_load reads back. */
void kid_set_quantize(struct image_set *set);

void kid_set_free(struct image_set *set);

#endif
