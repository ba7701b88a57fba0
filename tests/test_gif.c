/* test_gif.c: animated GIFs read back by giflib's decoder (DGifSlurp) frame for frame.
 * Frames of at most 256 colours come back exactly; frames of more come back as
 * gif_frame_as_stored says (giflib's median cut) and close to the originals; every frame
 * carries the delay and the file loops. ddim-gif assembles a run's epoch_N.png grids in
 * numeric epoch order (epoch 10 after epoch 2) into such a GIF, and refuses a folder
 * without grids and grids of different sizes.
 *
 * usage: test_gif PATH/TO/ddim-gif */
#define _POSIX_C_SOURCE 200809L
#include "gif_write.h"
#include "image_io.h"
#include "test_util.h"
#include "util.h"

#include <gif_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char dir[] = "/tmp/ddim_test_gif_XXXXXX";

enum { W = 37, H = 23, FRAMES = 3 };

static void expect(int ok, const char *what)
{
    if (ok)
        printf("ok   %s\n", what);
    else
        test_fail("%s", what);
}

/* Frame f of a pattern with at most 256 colours (few) or with thousands (many). */
static void make_frame(int f, int many, uint8_t *rgb, int w, int h)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            if (many) { /* a smooth gradient: w * h distinct colours */
                p[0] = (uint8_t)(x * 255 / (w - 1));
                p[1] = (uint8_t)(y * 255 / (h - 1));
                p[2] = (uint8_t)((x + y + 40 * f) % 256);
            } else { /* 8 x 8 blocks of 16 x 16 colours, moved by f */
                int c = ((x / 3 + f) % 16) * 16 + (y / 3) % 16;
                p[0] = (uint8_t)(c * 37);
                p[1] = (uint8_t)(c * 11 + f);
                p[2] = (uint8_t)(255 - c);
            }
        }
}

/* Decodes path; frames into out (count, h, w, 3) as RGB; the count, -1 on error. */
static int decode(const char *path, uint8_t *out, int max_frames, int w, int h, int *delay,
                  int *loops)
{
    int code = 0;
    GifFileType *g = DGifOpenFileName(path, &code);
    if (!g || DGifSlurp(g) != GIF_OK) {
        test_fail("%s: giflib cannot read it (%s)", path, GifErrorString(g ? g->Error : code));
        if (g)
            DGifCloseFile(g, &code);
        return -1;
    }
    int n = g->ImageCount;
    *loops = 0;
    for (int i = 0; i < n && i < max_frames; i++) {
        SavedImage *im = &g->SavedImages[i];
        ColorMapObject *map = im->ImageDesc.ColorMap ? im->ImageDesc.ColorMap : g->SColorMap;
        GraphicsControlBlock gcb;
        if (DGifSavedExtensionToGCB(g, i, &gcb) == GIF_OK)
            delay[i] = gcb.DelayTime;
        for (int k = 0; k < im->ExtensionBlockCount; k++)
            if (im->ExtensionBlocks[k].Function == APPLICATION_EXT_FUNC_CODE &&
                im->ExtensionBlocks[k].ByteCount == 11 &&
                !memcmp(im->ExtensionBlocks[k].Bytes, "NETSCAPE2.0", 11))
                *loops = 1;
        if (im->ImageDesc.Width != w || im->ImageDesc.Height != h || !map) {
            test_fail("%s frame %d: %d x %d, expected %d x %d", path, i, im->ImageDesc.Width,
                      im->ImageDesc.Height, w, h);
            n = -1;
            break;
        }
        for (size_t p = 0; p < (size_t)w * h; p++) {
            GifColorType c = map->Colors[im->RasterBits[p]];
            uint8_t *o = out + ((size_t)i * w * h + p) * 3;
            o[0] = c.Red;
            o[1] = c.Green;
            o[2] = c.Blue;
        }
    }
    DGifCloseFile(g, &code);
    return n;
}

static void test_roundtrip(int many)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/%s.gif", dir, many ? "many" : "few");
    size_t size = (size_t)W * H * 3;
    uint8_t *frames = malloc(FRAMES * size), *want = malloc(FRAMES * size);
    uint8_t *got = calloc(FRAMES, size);
    struct gif_writer *g = gif_writer_open(path, W, H, 7, err, sizeof err);
    int rc = g ? 0 : -1;
    for (int f = 0; f < FRAMES && rc == 0; f++) {
        make_frame(f, many, frames + f * size, W, H);
        gif_frame_as_stored(frames + f * size, W, H, want + f * size);
        rc = gif_writer_add(g, frames + f * size, err, sizeof err);
    }
    if (g && gif_writer_close(g, rc == 0, err, sizeof err) != 0)
        rc = -1;
    if (rc != 0)
        test_fail("writing %s: %s", path, err);
    int delay[FRAMES] = {0}, loops = 0;
    int n = decode(path, got, FRAMES, W, H, delay, &loops);
    expect(n == FRAMES && loops && delay[0] == 7 && delay[FRAMES - 1] == 7,
           "the decoder finds every frame, the delay and the loop block");
    expect(!memcmp(got, want, FRAMES * size),
           "every decoded frame equals the frame as stored (gif_frame_as_stored)");
    int worst = 0;
    double sum = 0.0;
    for (size_t i = 0; i < FRAMES * size; i++) {
        int d = abs((int)got[i] - (int)frames[i]);
        worst = d > worst ? d : worst;
        sum += d;
    }
    double mean = sum / (FRAMES * size);
    printf("     %s colours: channel error largest %d, mean %.2f\n", many ? "many" : "<= 256",
           worst, mean);
    if (many)
        expect(worst > 0 && worst <= 64 && mean <= 8.0,
               "hundreds of colours: quantized, mean error within 8 levels");
    else
        expect(worst == 0, "at most 256 colours: the frames themselves, exactly");
    free(frames);
    free(want);
    free(got);
}

static int run_tool(const char *tool, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s > %s/tool.txt 2>&1", tool, args, dir);
    int st = system(cmd);
    snprintf(cmd, sizeof cmd, "cat %s/tool.txt", dir);
    if (system(cmd) != 0)
        test_fail("cannot show the tool's output");
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_tool(const char *tool)
{
    char path[512], err[512], args[1024];
    snprintf(path, sizeof path, "%s/run", dir);
    mkdir(path, 0700);
    snprintf(args, sizeof args, "%s/run", dir);
    expect(run_tool(tool, args) == 1, "ddim-gif on a run without samples/: an error");
    snprintf(path, sizeof path, "%s/run/samples", dir);
    mkdir(path, 0700);
    const int epochs[FRAMES] = {10, 1, 2}; /* numeric order: 1, 2, 10 */
    size_t size = (size_t)W * H * 3;
    uint8_t *frames = malloc(FRAMES * size), *got = calloc(FRAMES, size);
    for (int i = 0; i < FRAMES; i++) {
        int order = epochs[i] == 1 ? 0 : epochs[i] == 2 ? 1 : 2;
        make_frame(order, 0, frames + order * size, W, H);
        snprintf(path, sizeof path, "%s/run/samples/epoch_%04d.png", dir, epochs[i]);
        if (image_write_png(path, frames + order * size, W, H, err, sizeof err) != 0)
            test_fail("%s", err);
    }
    snprintf(args, sizeof args, "%s/run --delay 30", dir);
    expect(run_tool(tool, args) == 0, "ddim-gif RUN --delay 30");
    snprintf(path, sizeof path, "%s/run/samples/evolution.gif", dir);
    int delay[FRAMES] = {0}, loops = 0;
    expect(decode(path, got, FRAMES, W, H, delay, &loops) == FRAMES && delay[1] == 30 &&
               !memcmp(got, frames, FRAMES * size),
           "ddim-gif: the grids in epoch order (1, 2, 10), frame for frame");
    uint8_t small[4 * 4 * 3] = {0};
    snprintf(path, sizeof path, "%s/run/samples/epoch_0011.png", dir);
    if (image_write_png(path, small, 4, 4, err, sizeof err) != 0)
        test_fail("%s", err);
    snprintf(args, sizeof args, "%s/run --output %s/x.gif", dir, dir);
    snprintf(path, sizeof path, "%s/x.gif", dir);
    struct stat st;
    expect(run_tool(tool, args) == 1 && stat(path, &st) != 0,
           "ddim-gif: a grid of another size is an error and leaves no GIF");
    free(frames);
    free(got);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_gif PATH/TO/ddim-gif\n");
        return 2;
    }
    if (!mkdtemp(dir))
        DDIM_FATAL("mkdtemp failed");
    test_roundtrip(0);
    test_roundtrip(1);
    test_tool(argv[1]);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (test_failures() == 0 && system(cmd) != 0)
        fprintf(stderr, "test_gif: could not remove %s\n", dir);
    return test_finish("test_gif");
}
