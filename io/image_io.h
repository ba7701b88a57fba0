/* image_io.h: image files through libjpeg and libpng, and the resampling the Keras example
 * applies to them. Pixels are interleaved RGB, row-major. */
#ifndef DDIM_IMAGE_IO_H
#define DDIM_IMAGE_IO_H

#include <stddef.h>
#include <stdint.h>

struct image_u8 {
    int width, height;
    uint8_t *pixels; /* (height, width, 3) */
};

/* Decodes a JPEG or PNG (by content, not extension) to RGB (grey and palette images are
 * expanded, alpha dropped). 0, or -1 with a message naming the file in err. */
int image_load(const char *path, struct image_u8 *out, char *err, size_t errlen);

/* JPEG IDCT choice. TensorFlow's decode_jpeg (and so TFDS, which the Keras example reads
 * through) uses libjpeg's JDCT_IFAST with fancy upsampling: IMAGE_JPEG_DCT_TF reproduces its
 * pixels exactly and is what image_load uses. IMAGE_JPEG_DCT_ISLOW is libjpeg's own default
 * (more accurate; 6-9 levels away from TF's at most on the flowers). */
enum image_jpeg_dct { IMAGE_JPEG_DCT_TF = 0, IMAGE_JPEG_DCT_ISLOW = 1 };
int image_load_dct(const char *path, struct image_u8 *out, enum image_jpeg_dct dct, char *err,
                   size_t errlen);
/* The same from the file's bytes in memory (an archive entry); label names it in errors. */
int image_decode(const char *label, const unsigned char *data, size_t size, struct image_u8 *out,
                 enum image_jpeg_dct dct, char *err, size_t errlen);
void image_free(struct image_u8 *img);

/* A PNG file in memory. */
struct image_png {
    unsigned char *data; /* malloc'd */
    size_t bytes;
    int width, height;
};

/* Encodes RGB uint8 pixels (height, width, 3) as a PNG in memory; label names it in
 * messages. 0, or -1 with a message (out is then empty). */
int image_encode_png(const char *label, const uint8_t *rgb, int width, int height,
                     struct image_png *out, char *err, size_t errlen);
void image_png_free(struct image_png *png);

/* Writes RGB uint8 pixels (height, width, 3) as PNG, atomically (atomic_file.h: encoded in
 * memory, then path.tmp, fsync, rename). 0 or -1 with a message that says the cause. */
int image_write_png(const char *path, const uint8_t *rgb, int width, int height, char *err,
                    size_t errlen);

/* Writes RGB uint8 pixels as a baseline JPEG of the given quality (1..100); for tests and
 * tools. 0 or -1 with a message. */
int image_write_jpeg(const char *path, const uint8_t *rgb, int width, int height, int quality,
                     char *err, size_t errlen);

/* The example's preprocessing: center crop to a square (offsets (h-s)/2, (w-s)/2 with
 * s = min(h, w)), then TF's tf.image.resize(antialias=True, bilinear) to size x size,
 * /255 and clip to [0, 1]. out: (size, size, 3) floats. */
void image_center_crop_resize(const struct image_u8 *img, int size, float *out);

#endif
