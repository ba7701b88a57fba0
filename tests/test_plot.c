/* test_plot.c: io/plot.c renders what the data says. Two known series (a horizontal line and
 * a diagonal with NaN/Inf holes) must put their exact colours where the frame maps the data
 * and nowhere else outside the legend, whose swatches must exist; nothing may be written
 * outside the buffer; empty, NaN-only, single-point and extreme inputs must not crash (and
 * say "no data" when nothing is finite); log axes must place powers of ten; a dense series
 * must keep its extremes; plot_write_png must write a PNG that libpng decodes to the same
 * pixels.
 *
 * usage: test_plot [EXAMPLE.png]   also writes an example training-curve plot there */
#include "plot.h"
#include "test_util.h"

#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define W 800
#define H 500
#define GUARD 4096

static const uint8_t RED[3] = {214, 39, 40};
static const uint8_t BLUE[3] = {31, 119, 180};
static const uint8_t MUTED[3] = {140, 140, 140}; /* plot.c's "no data" grey */

static int checks = 0;

static void check(int ok, const char *what)
{
    checks++;
    if (ok)
        printf("ok   %s\n", what);
    else
        test_fail("%s", what);
}

static int is_col(const uint8_t *p, const uint8_t c[3])
{
    return p[0] == c[0] && p[1] == c[1] && p[2] == c[2];
}

/* Pixels of exactly colour c inside [x0,x1) x [y0,y1), clipped to the image. */
static long count_col(const uint8_t *rgb, int w, int h, int x0, int y0, int x1, int y1,
                      const uint8_t c[3])
{
    long n = 0;
    for (int y = y0 < 0 ? 0 : y0; y < y1 && y < h; y++)
        for (int x = x0 < 0 ? 0 : x0; x < x1 && x < w; x++)
            n += is_col(rgb + ((size_t)y * w + x) * 3, c);
    return n;
}

/* A buffer with guard bytes on both sides, to catch writes outside the image. */
static uint8_t *guarded_alloc(size_t n)
{
    uint8_t *b = malloc(n + 2 * GUARD);
    if (!b) {
        fprintf(stderr, "test_plot: out of memory\n");
        exit(2);
    }
    memset(b, 0xA5, n + 2 * GUARD);
    return b + GUARD;
}

static int guards_intact(const uint8_t *rgb, size_t n)
{
    for (size_t i = 0; i < GUARD; i++)
        if (rgb[-1 - (long)i] != 0xA5 || rgb[n + i] != 0xA5)
            return 0;
    return 1;
}

/* Distance of pixel centre (i, j) from the segment through a and b, in pixels. */
static double seg_dist(double i, double j, double ax, double ay, double bx, double by)
{
    double dx = bx - ax, dy = by - ay, t = ((i - ax) * dx + (j - ay) * dy) / (dx * dx + dy * dy);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return hypot(i - ax - t * dx, j - ay - t * dy);
}

static double xs[101], yr[101], yb[101];

static void known_series(struct plot_series s[2], int labels)
{
    for (int i = 0; i <= 100; i++) {
        xs[i] = i;
        yr[i] = 2.0;
        yb[i] = 0.5 + i / 50.0;
    }
    yb[30] = NAN;
    yb[70] = INFINITY;
    s[0] = (struct plot_series){labels ? "flat" : NULL, xs, yr, 101, {0}, PLOT_LINE};
    s[1] = (struct plot_series){labels ? "rising" : NULL, xs, yb, 101, {0}, PLOT_LINE};
    memcpy(s[0].rgb, RED, 3);
    memcpy(s[1].rgb, BLUE, 3);
}

static void test_known_series(void)
{
    struct plot_spec sp = {"known series", "x", "y", W, H, 0};
    struct plot_series s[2];
    struct plot_frame f;
    size_t n = (size_t)W * H * 3;
    uint8_t *rgb = guarded_alloc(n);
    known_series(s, 0);
    check(plot_render(&sp, s, 2, rgb, &f) == 0, "render two series");
    check(guards_intact(rgb, n), "nothing written outside the buffer");
    check(f.x0 > 0 && f.x0 < f.x1 && f.x1 < W && f.y0 > 0 && f.y0 < f.y1 && f.y1 < H,
          "plot area inside the image");
    check(f.has_data && f.xlo < 0 && f.xhi > 100 && f.ylo < 0.5 && f.yhi > 2.5 &&
              f.xhi - f.xlo < 120 && f.yhi - f.ylo < 2.5,
          "automatic ranges hold the data with a little padding");
    long red_in = count_col(rgb, W, H, f.x0, f.y0, f.x1, f.y1, RED);
    long blue_in = count_col(rgb, W, H, f.x0, f.y0, f.x1, f.y1, BLUE);
    check(red_in > (f.x1 - f.x0) / 2 && blue_in > (f.x1 - f.x0) / 2,
          "both series' colours appear in the plot area");
    check(count_col(rgb, W, H, 0, 0, W, H, RED) == red_in &&
              count_col(rgb, W, H, 0, 0, W, H, BLUE) == blue_in,
          "no series colour outside the plot area");

    /* every red pixel lies in the row band of y = 2; every blue one on the diagonal */
    double row = plot_frame_py(&f, 2.0);
    double ax = plot_frame_px(&f, 0), ay = plot_frame_py(&f, 0.5);
    double bx = plot_frame_px(&f, 100), by = plot_frame_py(&f, 2.5);
    long red_off = 0, blue_off = 0;
    int rmin = H, rmax = -1;
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++) {
            const uint8_t *p = rgb + ((size_t)j * W + i) * 3;
            if (is_col(p, RED)) {
                red_off += fabs(j + 0.5 - row) > 1.0;
                rmin = j < rmin ? j : rmin;
                rmax = j > rmax ? j : rmax;
            }
            if (is_col(p, BLUE))
                blue_off += seg_dist(i + 0.5, j + 0.5, ax, ay, bx, by) > 1.0;
        }
    printf("     y=2 maps to row %.1f; red rows %d..%d\n", row, rmin, rmax);
    check(red_off == 0 && rmax - rmin <= 2, "horizontal line y=2 is one row band where y=2 maps");
    check(blue_off == 0, "diagonal series lies on the segment its data maps to");
    check(fabs(plot_frame_px(&f, 0) - f.x0 - (0 - f.xlo) / (f.xhi - f.xlo) * (f.x1 - f.x0)) < 1e-9,
          "frame mapping: x=xlo at x0");
    /* the NaN at x=30 and the Inf at x=70 leave holes in the blue line */
    int c30 = (int)plot_frame_px(&f, 30), c70 = (int)plot_frame_px(&f, 70);
    check(count_col(rgb, W, H, c30 - 2, f.y0, c30 + 3, f.y1, BLUE) == 0 &&
              count_col(rgb, W, H, c70 - 2, f.y0, c70 + 3, f.y1, BLUE) == 0 &&
              count_col(rgb, W, H, c30 - 12, f.y0, c30 - 6, f.y1, BLUE) > 0,
          "NaN and Inf points are skipped and break the line");

    /* with labels: a legend whose swatches are short bands of each colour */
    known_series(s, 1);
    memset(rgb, 0, n);
    plot_render(&sp, s, 2, rgb, &f);
    check(guards_intact(rgb, n), "nothing written outside the buffer (legend)");
    int sx0 = W, sx1 = -1, sy0 = H, sy1 = -1;
    long swatch = 0, blue_swatch = 0;
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++) {
            const uint8_t *p = rgb + ((size_t)j * W + i) * 3;
            if (is_col(p, RED) && fabs(j + 0.5 - row) > 3.0) {
                swatch++;
                sx0 = i < sx0 ? i : sx0;
                sx1 = i > sx1 ? i : sx1;
                sy0 = j < sy0 ? j : sy0;
                sy1 = j > sy1 ? j : sy1;
            }
            if (is_col(p, BLUE) && seg_dist(i + 0.5, j + 0.5, ax, ay, bx, by) > 4.0)
                blue_swatch++;
        }
    printf("     red swatch %ld px in [%d,%d]x[%d,%d]; blue swatch %ld px\n", swatch, sx0, sx1, sy0,
           sy1, blue_swatch);
    check(swatch >= 20 && sx1 - sx0 <= 40 && sy1 - sy0 <= 4 && sx0 >= f.x0 && sx1 < f.x1 &&
              sy0 >= f.y0 && sy1 < f.y1,
          "legend swatch of the red series inside the plot area");
    check(blue_swatch >= 20, "legend swatch of the blue series");
    free(rgb - GUARD);
}

/* "no data" is drawn in its grey, centred in the plot area. */
static long no_data_pixels(const uint8_t *rgb, const struct plot_frame *f)
{
    int cx = (f->x0 + f->x1) / 2, cy = (f->y0 + f->y1) / 2;
    return count_col(rgb, W, H, cx - 60, cy - 20, cx + 60, cy + 20, MUTED);
}

static void test_degenerate(void)
{
    struct plot_spec sp = {"empty", "step", "loss", W, H, 0};
    struct plot_frame f;
    size_t n = (size_t)W * H * 3;
    uint8_t *rgb = guarded_alloc(n);

    check(plot_render(&sp, NULL, 0, rgb, &f) == 0 && !f.has_data && no_data_pixels(rgb, &f) > 30,
          "no series: renders \"no data\"");
    check(guards_intact(rgb, n), "no series: nothing written outside the buffer");

    double x[4] = {0, 1, 2, 3}, nan4[4] = {NAN, NAN, -INFINITY, NAN};
    struct plot_series s[4] = {{"nan", x, nan4, 4, {200, 0, 0}, PLOT_LINE_MARKERS},
                               {"empty", x, nan4, 0, {0, 200, 0}, PLOT_LINE},
                               {"null", NULL, NULL, 5, {0, 0, 200}, PLOT_LINE},
                               {"", x, nan4, -3, {9, 9, 9}, PLOT_MARKERS_ONLY}};
    check(plot_render(&sp, s, 4, rgb, &f) == 0 && !f.has_data && no_data_pixels(rgb, &f) > 30,
          "NaN-only, empty and NULL series: renders \"no data\"");
    check(guards_intact(rgb, n), "NaN-only series: nothing written outside the buffer");

    double px[1] = {1500}, py[1] = {0.25};
    struct plot_series one = {"one point", px, py, 1, {0}, PLOT_LINE};
    memcpy(one.rgb, RED, 3);
    plot_render(&sp, &one, 1, rgb, &f);
    int ix = (int)plot_frame_px(&f, px[0]), iy = (int)plot_frame_py(&f, py[0]);
    check(f.has_data && f.xlo < 1500 && f.xhi > 1500 && f.ylo < 0.25 && f.yhi > 0.25 &&
              no_data_pixels(rgb, &f) == 0 &&
              count_col(rgb, W, H, ix - 2, iy - 2, ix + 3, iy + 3, RED) > 0,
          "single point: a range around it and a dot where it maps");

    double vx[3] = {5, 5, 5}, vy[3] = {1, 2, 3};
    double hx[4] = {-1e308, 0, 1e308, 1}, hy[4] = {1, 1e308, 2, 3};
    struct plot_series odd[2] = {{"vertical", vx, vy, 3, {0}, PLOT_LINE_MARKERS},
                                 {"huge", hx, hy, 4, {0}, PLOT_LINE}};
    check(plot_render(&sp, odd, 2, rgb, &f) == 0 && f.xlo < 5 && f.xhi > 5 && f.xhi - f.xlo < 10,
          "constant x and values beyond 1e300 (skipped) render");
    check(guards_intact(rgb, n), "odd series: nothing written outside the buffer");

    struct plot_spec tiny = {"tiny", "x", "y", 64, 64, 1};
    uint8_t small[64 * 64 * 3];
    check(plot_render(&tiny, odd, 2, small, &f) == 0 && f.x0 < f.x1 && f.y0 < f.y1,
          "64x64 log plot renders");
    struct plot_spec bad = {"bad", NULL, NULL, 10, 5000, 0};
    check(plot_render(&bad, NULL, 0, small, NULL) == -1, "size out of range is refused");
    free(rgb - GUARD);
}

static void test_log_axis(void)
{
    double x[6] = {0, 1, 2, 3, 4, 5}, y[6] = {1, 0.1, 0.01, 1e-3, 1e-4, -1};
    struct plot_series s = {"decay", x, y, 6, {0}, PLOT_LINE_MARKERS};
    memcpy(s.rgb, BLUE, 3);
    struct plot_spec sp = {"log", "step", "loss", W, H, 1};
    struct plot_frame f;
    uint8_t *rgb = guarded_alloc((size_t)W * H * 3);
    check(plot_render(&sp, &s, 1, rgb, &f) == 0 && f.log_y && f.ylo < 1e-4 && f.ylo > 1e-5 &&
              f.yhi > 1 && f.yhi < 10,
          "log axis: range spans the positive data (y <= 0 skipped)");
    double r1 = plot_frame_py(&f, 1.0), r2 = plot_frame_py(&f, 0.01), r4 = plot_frame_py(&f, 1e-4);
    check(fabs((r2 - r1) - (r4 - r2)) < 1e-6, "log axis: equal decades are equal distances");
    int ix = (int)plot_frame_px(&f, 2), iy = (int)r2;
    check(count_col(rgb, W, H, ix - 3, iy - 3, ix + 4, iy + 4, BLUE) > 10,
          "log axis: marker at (2, 0.01) where it maps");
    free(rgb - GUARD);
}

static void test_text(void)
{
    char b[32];
    struct {
        double v, step;
        int sci;
        const char *want;
    } cases[] = {{0.05, 0.05, 0, "0.05"},  {25000, 5000, 0, "25000"}, {1e-3, 1e-3, 1, "1e-3"},
                 {2.5e6, 5e5, 1, "2.5e6"}, {0.0, 0.1, 1, "0"},        {-0.2, 0.1, 0, "-0.2"},
                 {100, 100, 0, "100"}};
    int ok = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        plot_format_number(b, sizeof b, cases[i].v, cases[i].step, cases[i].sci);
        if (strcmp(b, cases[i].want) != 0) {
            printf("     format %g (step %g): got \"%s\" want \"%s\"\n", cases[i].v, cases[i].step,
                   b, cases[i].want);
            ok = 0;
        }
    }
    check(ok, "tick numbers: 0.05, 25000, 1e-3, 2.5e6");

    enum { TW = 120, TH = 30 };
    uint8_t img[TH * TW * 3];
    memset(img, 255, sizeof img);
    const uint8_t black[3] = {0, 0, 0};
    int w = plot_text_width("loss", 2);
    plot_text_draw(img, TW, TH, 4, 4, "loss", 2, black, 0);
    long in = count_col(img, TW, TH, 4, 4, 4 + w, 4 + 18, black);
    long all = count_col(img, TW, TH, 0, 0, TW, TH, black);
    check(w > 20 && w < 60 && in > 40 && in == all, "text \"loss\" stays inside its box");
    plot_text_draw(img, TW, TH, -50, -5, "clipped text\x01\xff", 2, black, PLOT_TEXT_VERTICAL);
    plot_text_draw(img, TW, TH, 100, 20, "clipped", 3, black, PLOT_TEXT_BOLD);
    check(plot_text_width("0.05", 2) == plot_text_width("1.23", 2), "digits at fixed pitch");
}

/* 200000 points alternating between 0 and 1: every pixel column between them is filled
 * (dense series are reduced per pixel column; the extremes must survive). */
static void test_dense(void)
{
    enum { N = 200000 };
    double *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    uint8_t *rgb = guarded_alloc((size_t)W * H * 3);
    for (int i = 0; i < N; i++) {
        x[i] = i * 1e-3;
        y[i] = (i * 7919 % 13) < 6 ? 0.0 : 1.0;
    }
    struct plot_series s = {NULL, x, y, N, {0}, PLOT_LINE};
    memcpy(s.rgb, RED, 3);
    struct plot_spec sp = {"dense", "x", "y", W, H, 0};
    struct plot_frame f;
    plot_render(&sp, &s, 1, rgb, &f);
    int top = (int)ceil(plot_frame_py(&f, 1.0)), bottom = (int)floor(plot_frame_py(&f, 0.0));
    int c0 = (int)plot_frame_px(&f, 10), c1 = (int)plot_frame_px(&f, 190), bad = 0;
    for (int col = c0; col < c1; col++)
        bad += count_col(rgb, W, H, col, top, col + 1, bottom, RED) != bottom - top;
    check(bad == 0 && c1 - c0 > 100 && bottom - top > 100,
          "dense series: every column filled between its extremes");
    free(rgb - GUARD);
    free(x);
    free(y);
}

/* Decodes path with libpng's simplified API and compares with the rendered pixels. */
static void test_png(void)
{
    char path[256], err[256] = "";
    snprintf(path, sizeof path, "/tmp/test_plot_%d.png", (int)getpid());
    struct plot_series s[2];
    known_series(s, 1);
    struct plot_spec sp = {"png", "x", "y", 640, 360, 0};
    check(plot_write_png(path, &sp, s, 2, err, sizeof err) == 0, "plot_write_png writes");
    if (err[0])
        printf("     %s\n", err);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    int ok = png_image_begin_read_from_file(&im, path) != 0;
    check(ok && im.width == 640 && im.height == 360, "PNG decodes with the plot's size");
    if (ok) {
        im.format = PNG_FORMAT_RGB;
        uint8_t *got = malloc(PNG_IMAGE_SIZE(im)), *want = malloc(640 * 360 * 3);
        ok = got && want && png_image_finish_read(&im, NULL, got, 0, NULL) != 0;
        plot_render(&sp, s, 2, want, NULL);
        check(ok && memcmp(got, want, 640 * 360 * 3) == 0, "PNG pixels equal the render");
        free(got);
        free(want);
    }
    png_image_free(&im);
    remove(path);
    err[0] = '\0';
    sp.width = 5;
    check(plot_write_png(path, &sp, s, 2, err, sizeof err) == -1 && err[0] != '\0',
          "bad size: error with a message");
    sp.width = 640;
    err[0] = '\0';
    check(plot_write_png("/nonexistent-dir/x.png", &sp, s, 2, err, sizeof err) == -1 &&
              err[0] != '\0',
          "unwritable path: error with a message");
}

/* A decaying noisy loss over 2000 steps and 10 validation points, for looking at. */
static void write_example(const char *path)
{
    static double x[2000], y[2000];
    double vx[10], vy[10];
    test_seed(7);
    for (int i = 0; i < 2000; i++) {
        x[i] = i + 1;
        y[i] = (0.045 + 0.25 * exp(-i / 250.0)) * (1.0 + 0.25 * test_normal());
    }
    for (int k = 0; k < 10; k++) {
        vx[k] = 200.0 * (k + 1);
        vy[k] = 0.05 + 0.25 * exp(-vx[k] / 250.0);
    }
    struct plot_series s[2] = {{"noise loss (train)", x, y, 2000, {0}, PLOT_LINE},
                               {"noise loss (val)", vx, vy, 10, {0}, PLOT_LINE_MARKERS}};
    plot_palette(0, s[0].rgb);
    plot_palette(1, s[1].rgb);
    struct plot_spec sp = {"DDIM training loss", "step", "loss", 1000, 600, 0};
    char err[256];
    check(plot_write_png(path, &sp, s, 2, err, sizeof err) == 0, "example plot written");
    printf("     example: %s\n", path);
}

int main(int argc, char **argv)
{
    test_known_series();
    test_degenerate();
    test_log_axis();
    test_text();
    test_dense();
    test_png();
    if (argc > 1)
        write_example(argv[1]);
    printf("test_plot: %d checks, %d failed\n", checks, test_failures());
    return test_failures() ? 1 : 0;
}
