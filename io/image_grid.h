/* image_grid.h: float images in [0, 1] as bytes and as one PNG grid (the training run's
 * samples/epoch_NNNN.png and ddim-sample's output share it). */
#ifndef DDIM_IMAGE_GRID_H
#define DDIM_IMAGE_GRID_H

#include "image_io.h"

#include <stddef.h>
#include <stdint.h>

/* out[i] = round(clip(x[i], 0, 1) * 255), for count values. */
void image_to_u8(const float *x, size_t count, uint8_t *out);

/* Writes images (n, size, size, 3) in [0, 1] as a PNG of rows x cols cells, row by row,
 * on white with 4-pixel gaps; images smaller than 96 pixels are enlarged by an integer
 * factor (nearest neighbour). n <= rows * cols; cells past n stay white. 0, or -1 with a
 * message naming the file. */
int image_grid_write_png(const char *path, const float *images, int n, int rows, int cols, int size,
                         char *err, size_t errlen);

/* The same grid as a PNG file in memory (label names it in messages). 0, or -1 with a
 * message. */
int image_grid_encode_png(const char *label, const float *images, int n, int rows, int cols,
                          int size, struct image_png *out, char *err, size_t errlen);

/* The same grid as RGB pixels (height, width, 3) of image_grid_dims' size, malloc'd: for
 * the frames of an animated GIF. The arguments must be valid (see above). */
uint8_t *image_grid_render(const float *images, int n, int rows, int cols, int size);

/* The grid's size in pixels for the arguments above. */
void image_grid_dims(int rows, int cols, int size, int *width, int *height);

#endif
