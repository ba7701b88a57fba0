/* image_grid.c: see image_grid.h. */
#include "image_grid.h"
#include "atomic_file.h"
#include "image_io.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { GRID_GAP = 4, GRID_MIN_CELL = 96 };

void image_to_u8(const float *x, size_t count, uint8_t *out)
{
    for (size_t i = 0; i < count; i++)
        out[i] = (uint8_t)lrintf(fminf(fmaxf(x[i], 0.0f), 1.0f) * 255.0f);
}

static int grid_zoom(int size)
{
    return size >= GRID_MIN_CELL ? 1 : (GRID_MIN_CELL + size - 1) / size;
}

void image_grid_dims(int rows, int cols, int size, int *width, int *height)
{
    int cell = size * grid_zoom(size);
    *width = cols * cell + (cols + 1) * GRID_GAP;
    *height = rows * cell + (rows + 1) * GRID_GAP;
}

uint8_t *image_grid_render(const float *images, int n, int rows, int cols, int size)
{
    int zoom = grid_zoom(size), cell = size * zoom, width, height;
    image_grid_dims(rows, cols, size, &width, &height);
    size_t per = (size_t)size * size * 3;
    uint8_t *rgb = util_xmalloc((size_t)width * height * 3), *img = util_xmalloc(per);
    memset(rgb, 255, (size_t)width * height * 3);
    for (int i = 0; i < n; i++) {
        int r = i / cols, c = i % cols;
        image_to_u8(images + (size_t)i * per, per, img);
        for (int y = 0; y < cell; y++)
            for (int x = 0; x < cell; x++) {
                const uint8_t *px = img + ((size_t)(y / zoom) * size + x / zoom) * 3;
                uint8_t *dst = rgb + ((size_t)(GRID_GAP + r * (cell + GRID_GAP) + y) * width +
                                      GRID_GAP + c * (cell + GRID_GAP) + x) *
                                         3;
                memcpy(dst, px, 3);
            }
    }
    free(img);
    return rgb;
}

int image_grid_encode_png(const char *label, const float *images, int n, int rows, int cols,
                          int size, struct image_png *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (rows < 1 || cols < 1 || size < 1 || n < 0 || n > rows * cols)
        return util_error(err, errlen, "%s: cannot place %d images of %d px in %d x %d cells",
                          label, n, size, rows, cols);
    int width, height;
    image_grid_dims(rows, cols, size, &width, &height);
    uint8_t *rgb = image_grid_render(images, n, rows, cols, size);
    int rc = image_encode_png(label, rgb, width, height, out, err, errlen);
    free(rgb);
    return rc;
}

int image_grid_write_png(const char *path, const float *images, int n, int rows, int cols, int size,
                         char *err, size_t errlen)
{
    struct image_png png;
    if (image_grid_encode_png(path, images, n, rows, cols, size, &png, err, errlen) != 0)
        return -1;
    int rc = atomic_file_write(path, png.data, png.bytes, err, errlen);
    image_png_free(&png);
    return rc;
}
