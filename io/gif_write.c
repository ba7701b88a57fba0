/* gif_write.c: see gif_write.h. */
#define _POSIX_C_SOURCE 200809L
#include "gif_write.h"
#include "atomic_file.h"
#include "util.h"

#include <gif_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The GIF is encoded into memory (giflib's output function below) and written whole by
 * atomic_file_write when it is finished: path.tmp, fsync, rename. Until then nothing is
 * on disk, so a failure (a frame that cannot be read, a full disk) leaves the old file, or
 * an input given as the output, as it was. */
struct gif_writer {
    GifFileType *gif;
    int width, height, delay_cs, frames;
    char path[1024];
    unsigned char *bytes; /* the encoded file so far */
    size_t len, cap;
};

/* giflib's OutputFunc: appends to the writer's buffer (gif->UserData). */
static int append_bytes(GifFileType *gif, const GifByteType *data, int n)
{
    struct gif_writer *g = gif->UserData;
    if (n <= 0)
        return 0;
    if (g->len + (size_t)n > g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 65536;
        while (cap < g->len + (size_t)n)
            cap *= 2;
        unsigned char *grown = realloc(g->bytes, cap);
        if (!grown)
            return 0; /* giflib reports a write error */
        g->bytes = grown;
        g->cap = cap;
    }
    memcpy(g->bytes + g->len, data, (size_t)n);
    g->len += (size_t)n;
    return n;
}

static uint32_t pack_rgb(const uint8_t *p)
{
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static int compare_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The frame's palette (256 entries, unused ones black) and per-pixel indices: exact when
 * the frame has at most 256 colours, giflib's median cut otherwise. */
static void quantize(const uint8_t *rgb, int width, int height, GifColorType palette[256],
                     GifByteType *indices)
{
    size_t count = (size_t)width * height;
    uint32_t *sorted = util_xmalloc(count * sizeof(uint32_t));
    for (size_t i = 0; i < count; i++)
        sorted[i] = pack_rgb(rgb + 3 * i);
    qsort(sorted, count, sizeof(uint32_t), compare_u32);
    size_t unique = 0;
    for (size_t i = 0; i < count && unique <= 256; i++)
        if (i == 0 || sorted[i] != sorted[i - 1])
            sorted[unique++] = sorted[i];
    memset(palette, 0, 256 * sizeof(GifColorType));
    if (unique <= 256) {
        for (size_t c = 0; c < unique; c++)
            palette[c] = (GifColorType){(GifByteType)(sorted[c] >> 16),
                                        (GifByteType)(sorted[c] >> 8), (GifByteType)sorted[c]};
        for (size_t i = 0; i < count; i++) {
            uint32_t key = pack_rgb(rgb + 3 * i);
            const uint32_t *hit = bsearch(&key, sorted, unique, sizeof(uint32_t), compare_u32);
            indices[i] = (GifByteType)(hit - sorted);
        }
    } else {
        GifByteType *planes = util_xmalloc(3 * count);
        for (size_t i = 0; i < count; i++)
            for (int c = 0; c < 3; c++)
                planes[c * count + i] = rgb[3 * i + c];
        int size = 256;
        if (GifQuantizeBuffer((unsigned)width, (unsigned)height, &size, planes, planes + count,
                              planes + 2 * count, indices, palette) != GIF_OK)
            DDIM_FATAL("giflib could not quantize a %d x %d frame", width, height);
        free(planes);
    }
    free(sorted);
}

void gif_frame_as_stored(const uint8_t *rgb, int width, int height, uint8_t *out)
{
    size_t count = (size_t)width * height;
    GifColorType palette[256];
    GifByteType *indices = util_xmalloc(count);
    quantize(rgb, width, height, palette, indices);
    for (size_t i = 0; i < count; i++) {
        out[3 * i] = palette[indices[i]].Red;
        out[3 * i + 1] = palette[indices[i]].Green;
        out[3 * i + 2] = palette[indices[i]].Blue;
    }
    free(indices);
}

static int gif_error(char *err, size_t errlen, const char *path, const char *what, int code)
{
    const char *why = GifErrorString(code);
    return util_error(err, errlen, "%s: cannot %s (giflib: %s)", path, what, why ? why : "?");
}

struct gif_writer *gif_writer_open(const char *path, int width, int height, int delay_cs, char *err,
                                   size_t errlen)
{
    if (width < 1 || height < 1 || width > 65535 || height > 65535) {
        util_error(err, errlen, "%s: a GIF frame is 1 to 65535 pixels a side (got %d x %d)", path,
                   width, height);
        return NULL;
    }
    struct gif_writer *g = util_xcalloc(1, sizeof *g);
    int code = 0;
    GifFileType *gif = EGifOpen(g, append_bytes, &code);
    if (!gif) {
        free(g);
        gif_error(err, errlen, path, "start the GIF", code);
        return NULL;
    }
    EGifSetGifVersion(gif, true);
    /* the NETSCAPE2.0 application block: loop forever */
    static const GifByteType app[11] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
    static const GifByteType loop[3] = {1, 0, 0};
    if (EGifPutScreenDesc(gif, width, height, 8, 0, NULL) == GIF_ERROR ||
        EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE) == GIF_ERROR ||
        EGifPutExtensionBlock(gif, sizeof app, app) == GIF_ERROR ||
        EGifPutExtensionBlock(gif, sizeof loop, loop) == GIF_ERROR ||
        EGifPutExtensionTrailer(gif) == GIF_ERROR) {
        gif_error(err, errlen, path, "write the header", gif->Error);
        EGifCloseFile(gif, &code);
        free(g->bytes);
        free(g);
        return NULL;
    }
    g->gif = gif;
    g->width = width;
    g->height = height;
    g->delay_cs = delay_cs;
    snprintf(g->path, sizeof g->path, "%s", path);
    return g;
}

int gif_writer_add(struct gif_writer *g, const uint8_t *rgb, char *err, size_t errlen)
{
    size_t count = (size_t)g->width * g->height;
    GifColorType palette[256];
    GifByteType *indices = util_xmalloc(count);
    quantize(rgb, g->width, g->height, palette, indices);
    ColorMapObject *map = GifMakeMapObject(256, palette);
    GraphicsControlBlock gcb = {.DisposalMode = DISPOSE_DO_NOT,
                                .DelayTime = g->delay_cs,
                                .TransparentColor = NO_TRANSPARENT_COLOR};
    GifByteType ext[4];
    size_t len = EGifGCBToExtension(&gcb, ext);
    int rc = map && EGifPutExtension(g->gif, GRAPHICS_EXT_FUNC_CODE, (int)len, ext) != GIF_ERROR &&
                     EGifPutImageDesc(g->gif, 0, 0, g->width, g->height, false, map) != GIF_ERROR
                 ? 0
                 : -1;
    for (int y = 0; rc == 0 && y < g->height; y++)
        if (EGifPutLine(g->gif, indices + (size_t)y * g->width, g->width) == GIF_ERROR)
            rc = -1;
    GifFreeMapObject(map);
    free(indices);
    if (rc != 0)
        return gif_error(err, errlen, g->path, "write a frame", g->gif->Error);
    g->frames++;
    return 0;
}

int gif_writer_close(struct gif_writer *g, int ok, char *err, size_t errlen)
{
    int code = 0, rc = 0;
    if (EGifCloseFile(g->gif, &code) == GIF_ERROR && ok)
        rc = gif_error(err, errlen, g->path, "finish the file", code);
    if (ok && rc == 0)
        rc = atomic_file_write(g->path, g->bytes, g->len, err, errlen);
    free(g->bytes);
    free(g);
    return ok ? rc : -1;
}
