/* sample_io.h: ddim-sample's HDF5 files: the initial noises (read with --noise, written with
 * --save-noise) and the images (--images-h5). Both are one dataset of shape (N, S, S, 3),
 * so that other tools (h5py, NumPy) can reproduce or read our samples exactly. */
#ifndef DDIM_SAMPLE_IO_H
#define DDIM_SAMPLE_IO_H

#include <stddef.h>

#define SAMPLE_NOISE_DATASET "/noise"   /* float32 (N, S, S, 3), standard normal */
#define SAMPLE_IMAGES_DATASET "/images" /* uint8 (N, S, S, 3), round(255 x) */

/* Writes x (n, size, size, 3) as `dataset` of a new HDF5 file at path (replaced if it
 * exists): float32 as is, or (as_u8) images in [0, 1] as uint8. 0, or -1 with a message. */
int sample_h5_write(const char *path, const char *dataset, const float *x, int n, int size,
                    int as_u8, char *err, size_t errlen);

/* Reads SAMPLE_NOISE_DATASET of path: float32, shape (N, size, size, 3) with N >= 1, into
 * *noise (malloc'd, N * size * size * 3 floats) and *n. Anything else is an error naming
 * the file, the dataset, what it holds and the expected shape. 0 or -1. */
int sample_noise_read(const char *path, int size, float **noise, int *n, char *err, size_t errlen);

#endif
