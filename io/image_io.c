/* image_io.c: JPEG/PNG decoding (libjpeg, libpng), PNG/JPEG writing, and the example's
 * center crop + antialiased resize.
 *
 * Decoding: both libraries report fatal errors by calling back into us; we longjmp out so
 * that a corrupt or truncated file becomes an error message, never a crash or an exit.
 * libjpeg treats a truncated stream as a *warning* and pads the image with grey; we turn
 * every libjpeg warning into an error so such files are skipped, as TF's decode_jpeg
 * (try_recover_truncated=False) would refuse them. JPEGs are decoded by default with the
 * settings TF's decode_jpeg uses (JDCT_IFAST, fancy upsampling), which the example reads
 * its images through (TFDS): the pixels are identical to TF's (checked on the flowers by
 * tools/check_resize.py); libjpeg's own default, JDCT_ISLOW, differs by up to ~9 levels.
 *
 * Resize: our own C port of the algorithm of TensorFlow's ScaleAndTranslate CPU kernel
 * (tensorflow/core/kernels/image/scale_and_translate_op.cc), which is what
 * tf.image.resize(method=bilinear, antialias=True) runs: per axis, "spans" of input pixels
 * with triangle-kernel weights widened by 1/scale when downscaling, sampled at half-pixel
 * centres and normalised to sum 1; rows are gathered first into a float buffer, then
 * columns, accumulating in float32 in the same order as TF. tools/check_resize.py compares
 * it with tf.image.resize (TF 2.21) on random PNGs (7x9 to 1000x667, down- and upscaling) and
 * Oxford flowers, at sizes 64, 37 and 200: the float outputs are bit-identical (max
 * difference 0), so the stored uint8 values are too. */
#include "image_io.h"
#include "atomic_file.h"
#include "util.h"

#include <errno.h>
#include <jpeglib.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refuse absurd headers before allocating (about 800 MB of RGB). */
#define IMAGE_MAX_PIXELS (1L << 28)

static int read_file(const char *path, unsigned char **data, size_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return util_error(err, errlen, "%s: cannot open (%s)", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = util_xmalloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            unsigned char *grown = realloc(buf, cap);
            if (!grown) {
                free(buf);
                fclose(f);
                return util_error(err, errlen, "%s: out of memory reading the file", path);
            }
            buf = grown;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return util_error(err, errlen, "%s: read error", path);
    }
    *data = buf;
    *size = n;
    return 0;
}

/* ---- JPEG ------------------------------------------------------------------------------ */

struct jpeg_error_ctx {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

static void jpeg_error_exit_cb(j_common_ptr cinfo)
{
    struct jpeg_error_ctx *ctx = (struct jpeg_error_ctx *)cinfo->err;
    ctx->mgr.format_message(cinfo, ctx->message);
    longjmp(ctx->jump, 1);
}

/* level -1 is a warning (corrupt data, premature end of file): treat it as fatal. */
static void jpeg_emit_message_cb(j_common_ptr cinfo, int level)
{
    if (level < 0)
        jpeg_error_exit_cb(cinfo);
}

static int decode_jpeg(const char *path, const unsigned char *data, size_t size,
                       enum image_jpeg_dct dct, struct image_u8 *out, char *err, size_t errlen)
{
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_ctx ctx;
    uint8_t *volatile pixels = NULL;
    cinfo.err = jpeg_std_error(&ctx.mgr);
    ctx.mgr.error_exit = jpeg_error_exit_cb;
    ctx.mgr.emit_message = jpeg_emit_message_cb;
    ctx.message[0] = '\0';
    if (setjmp(ctx.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return util_error(err, errlen, "%s: corrupt or truncated JPEG (libjpeg: %s)", path,
                          ctx.message);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&cinfo);
        return util_error(err, errlen, "%s: CMYK JPEGs are not supported (convert to RGB)", path);
    }
    cinfo.out_color_space = JCS_RGB;
    /* TF's decode_jpeg: JDCT_IFAST (its dct_method "" default) and fancy upsampling (on by
     * default here too); this reproduces its pixels bit for bit (tools/check_resize.py) */
    cinfo.dct_method = dct == IMAGE_JPEG_DCT_ISLOW ? JDCT_ISLOW : JDCT_IFAST;
    cinfo.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&cinfo);
    long w = cinfo.output_width, h = cinfo.output_height;
    if (w < 1 || h < 1 || w * h > IMAGE_MAX_PIXELS || cinfo.output_components != 3) {
        jpeg_destroy_decompress(&cinfo);
        return util_error(err, errlen, "%s: unsupported JPEG (%ldx%ld, %d components)", path, w, h,
                          cinfo.output_components);
    }
    pixels = util_xmalloc((size_t)w * (size_t)h * 3);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + (size_t)cinfo.output_scanline * (size_t)w * 3;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    out->width = (int)w;
    out->height = (int)h;
    out->pixels = pixels;
    return 0;
}

/* ---- PNG ------------------------------------------------------------------------------- */

struct png_source {
    const unsigned char *data;
    size_t size, pos;
};

static void png_error_cb(png_structp png, png_const_charp msg)
{
    char *message = png_get_error_ptr(png);
    snprintf(message, 256, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* benign (unknown chunks, gamma); real damage arrives as an error */
}

static void png_read_cb(png_structp png, png_bytep dst, png_size_t n)
{
    struct png_source *src = png_get_io_ptr(png);
    if (src->size - src->pos < n)
        png_error(png, "file is truncated");
    memcpy(dst, src->data + src->pos, n);
    src->pos += n;
}

/* Expands palette and grey to RGB, strips 16-bit to 8 and drops alpha, as TF's decode_png
 * with channels=3 does. */
static void png_set_rgb8(png_structp png, png_infop info)
{
    int color = png_get_color_type(png, info);
    if (png_get_bit_depth(png, info) == 16)
        png_set_strip_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(png);
    if (color & PNG_COLOR_MASK_ALPHA)
        png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
}

static int decode_png(const char *path, const unsigned char *data, size_t size,
                      struct image_u8 *out, char *err, size_t errlen)
{
    char message[256] = "";
    struct png_source src = {data, size, 0};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, message, png_error_cb, png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return util_error(err, errlen, "%s: cannot initialise libpng", path);
    }
    uint8_t *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return util_error(err, errlen, "%s: corrupt or truncated PNG (libpng: %s)", path, message);
    }
    png_set_read_fn(png, &src, png_read_cb);
    png_read_info(png, info);
    long w = (long)png_get_image_width(png, info), h = (long)png_get_image_height(png, info);
    if (w < 1 || h < 1 || w * h > IMAGE_MAX_PIXELS)
        png_error(png, "image dimensions out of range");
    png_set_rgb8(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8)
        png_error(png, "cannot convert to 8-bit RGB");
    pixels = util_xmalloc((size_t)w * (size_t)h * 3);
    rows = util_xmalloc((size_t)h * sizeof(png_bytep));
    for (long y = 0; y < h; y++)
        rows[y] = pixels + (size_t)y * (size_t)w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    out->width = (int)w;
    out->height = (int)h;
    out->pixels = pixels;
    return 0;
}

int image_load(const char *path, struct image_u8 *out, char *err, size_t errlen)
{
    return image_load_dct(path, out, IMAGE_JPEG_DCT_TF, err, errlen);
}

int image_load_dct(const char *path, struct image_u8 *out, enum image_jpeg_dct dct, char *err,
                   size_t errlen)
{
    out->width = out->height = 0;
    out->pixels = NULL;
    unsigned char *data = NULL;
    size_t size = 0;
    if (read_file(path, &data, &size, err, errlen) != 0)
        return -1;
    int rc = image_decode(path, data, size, out, dct, err, errlen);
    free(data);
    return rc;
}

int image_decode(const char *label, const unsigned char *data, size_t size, struct image_u8 *out,
                 enum image_jpeg_dct dct, char *err, size_t errlen)
{
    out->width = out->height = 0;
    out->pixels = NULL;
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return decode_jpeg(label, data, size, dct, out, err, errlen);
    if (size >= 8 && memcmp(data, png_magic, 8) == 0)
        return decode_png(label, data, size, out, err, errlen);
    return util_error(err, errlen, "%s: not a JPEG or PNG file (%zu bytes, unknown signature)",
                      label, size);
}

void image_free(struct image_u8 *img)
{
    free(img->pixels);
    img->pixels = NULL;
    img->width = img->height = 0;
}

/* ---- writers --------------------------------------------------------------------------- */

/* The PNG being encoded, in memory: written to its file in one atomic step. */
struct png_buffer {
    unsigned char *data;
    size_t len, cap;
};

static void png_buffer_write(png_structp png, png_bytep bytes, png_size_t n)
{
    struct png_buffer *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 65536;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown)
            png_error(png, "out of host memory");
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void png_buffer_flush(png_structp png)
{
    (void)png;
}

int image_encode_png(const char *label, const uint8_t *rgb, int width, int height,
                     struct image_png *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (width < 1 || height < 1)
        return util_error(err, errlen, "%s: cannot write a %dx%d PNG", label, width, height);
    char message[256] = "";
    struct png_buffer buf = {NULL, 0, 0};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, message, png_error_cb, png_warning_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        return util_error(err, errlen, "%s: cannot initialise libpng", label);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(buf.data);
        return util_error(err, errlen, "%s: PNG encoding failed (libpng: %s)", label, message);
    }
    png_set_write_fn(png, &buf, png_buffer_write, png_buffer_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, rgb + (size_t)y * (size_t)width * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    out->data = buf.data;
    out->bytes = buf.len;
    out->width = width;
    out->height = height;
    return 0;
}

void image_png_free(struct image_png *png)
{
    free(png->data);
    memset(png, 0, sizeof *png);
}

int image_write_png(const char *path, const uint8_t *rgb, int width, int height, char *err,
                    size_t errlen)
{
    struct image_png png;
    if (image_encode_png(path, rgb, width, height, &png, err, errlen) != 0)
        return -1;
    /* whole or absent: a full disk leaves no 0-byte or cut-off PNG behind */
    int rc = atomic_file_write(path, png.data, png.bytes, err, errlen);
    image_png_free(&png);
    return rc;
}

int image_write_jpeg(const char *path, const uint8_t *rgb, int width, int height, int quality,
                     char *err, size_t errlen)
{
    if (width < 1 || height < 1)
        return util_error(err, errlen, "%s: cannot write a %dx%d JPEG", path, width, height);
    FILE *volatile f = fopen(path, "wb");
    if (!f)
        return util_error(err, errlen, "%s: cannot create (%s)", path, strerror(errno));
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_ctx ctx;
    cinfo.err = jpeg_std_error(&ctx.mgr);
    ctx.mgr.error_exit = jpeg_error_exit_cb;
    if (setjmp(ctx.jump)) {
        jpeg_destroy_compress(&cinfo);
        fclose(f);
        return util_error(err, errlen, "%s: JPEG write failed (libjpeg: %s)", path, ctx.message);
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)width;
    cinfo.image_height = (JDIMENSION)height;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)cinfo.next_scanline * (size_t)width * 3);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    if (fclose(f) != 0)
        return util_error(err, errlen, "%s: write failed (%s)", path, strerror(errno));
    return 0;
}

/* ---- center crop + antialiased resize (TF ScaleAndTranslate, triangle kernel) ---------- */

static float triangle(float x)
{
    x = fabsf(x);
    return x < 1.0f ? 1.0f - x : 0.0f;
}

/* For each output index, the first input index (starts) and span weights (span floats per
 * output, zero-padded) mapping in_size -> out_size. The float32 expressions follow TF's so
 * that the weights are bit-identical. Returns the span size. */
static int resize_spans(int in_size, int out_size, int *starts, float *weights)
{
    const float scale = (float)out_size / (float)in_size;
    const float inv_scale = (float)(1.0 / (double)scale);
    const float inv_translate = -inv_scale * 0.0f;
    const float kernel_scale = fmaxf(inv_scale, 1.0f);
    int span = 2 * (int)ceilf(kernel_scale) + 1;
    if (span > in_size)
        span = in_size;
    const float one_over_kernel_scale = 1.0f / kernel_scale;
    memset(weights, 0, sizeof(float) * (size_t)span * (size_t)out_size);
    for (int x = 0; x < out_size; x++) {
        const float sample = ((float)x + 0.5f) * inv_scale + inv_translate;
        starts[x] = 0;
        if (sample < 0 || sample > (float)in_size)
            continue;
        long lo = (long)ceilf(sample - kernel_scale - 0.5f);
        long hi = (long)floorf(sample + kernel_scale - 0.5f);
        lo = lo < 0 ? 0 : (lo > in_size - 1 ? in_size - 1 : lo);
        hi = (hi < 0 ? 0 : (hi > in_size - 1 ? in_size - 1 : hi)) + 1;
        float total = 0.0f;
        float *w = weights + (size_t)x * (size_t)span;
        for (long src = lo; src < hi && src - lo < span; src++) {
            w[src - lo] = triangle(((float)src + 0.5f - sample) * one_over_kernel_scale);
            total += w[src - lo];
        }
        if (fabsf(total) >= 1000.0f * 1.17549435e-38f) {
            const float inv_total = 1.0f / total;
            for (long k = 0; k < hi - lo && k < span; k++)
                w[k] *= inv_total;
        } else {
            for (long k = 0; k < span; k++)
                w[k] = 0.0f;
        }
        starts[x] = (int)lo;
    }
    return span;
}

void image_center_crop_resize(const struct image_u8 *img, int size, float *out)
{
    const int s = img->width < img->height ? img->width : img->height;
    const int y0 = (img->height - s) / 2, x0 = (img->width - s) / 2;
    const size_t in_row = (size_t)img->width * 3; /* stride of the uncropped image */
    const size_t mid_row = (size_t)s * 3;         /* intermediate rows: crop width */

    int *starts = util_xmalloc(sizeof(int) * (size_t)size);
    float *weights = util_xmalloc(sizeof(float) * (size_t)size * (size_t)(2 * s + 3));
    float *mid = util_xcalloc((size_t)size * mid_row, sizeof(float)); /* (size, s, 3) */

    /* the crop is square and both axes map s -> size, so one set of spans serves both */
    const int span = resize_spans(s, size, starts, weights);

    /* rows: mid[y] = sum_k w[y][k] * crop[starts[y] + k], accumulated k by k as TF does */
    for (int y = 0; y < size; y++) {
        float *dst = mid + (size_t)y * mid_row;
        int real = (starts[y] + span < s ? starts[y] + span : s) - starts[y];
        for (int k = 0; k < real; k++) {
            const float w = weights[(size_t)y * span + k];
            const uint8_t *src =
                img->pixels + (size_t)(y0 + starts[y] + k) * in_row + (size_t)x0 * 3;
            for (size_t i = 0; i < mid_row; i++)
                dst[i] += w * (float)src[i];
        }
    }
    /* columns, then TF's image / 255.0 and clip_by_value(0, 1) */
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size; x++) {
            float acc[3] = {0.0f, 0.0f, 0.0f};
            int real = (starts[x] + span < s ? starts[x] + span : s) - starts[x];
            const float *src = mid + (size_t)y * mid_row + (size_t)starts[x] * 3;
            for (int k = 0; k < real; k++) {
                const float w = weights[(size_t)x * span + k];
                for (int c = 0; c < 3; c++)
                    acc[c] += w * src[(size_t)k * 3 + c];
            }
            for (int c = 0; c < 3; c++) {
                float v = acc[c] / 255.0f;
                out[((size_t)y * size + x) * 3 + c] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
            }
        }
    }
    free(starts);
    free(weights);
    free(mid);
}
