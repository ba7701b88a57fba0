/* plot.c: line plots of training curves into an RGB buffer (see plot.h). Everything is
 * drawn in software: text through plot_font.c (its bitmap font scaled 2x on plots of 400x260
 * pixels and more), lines as antialiased capsules. Each series is first rasterised into a
 * coverage mask (max over its segments) and composited once, so joints between segments are
 * not darkened twice. */
#include "plot.h"
#include "image_io.h"
#include "plot_axis.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG 1e300 /* |values| beyond this are treated as invalid, like NaN */

static const uint8_t C_WHITE[3] = {255, 255, 255};
static const uint8_t C_TEXT[3] = {30, 30, 30};
static const uint8_t C_TICKLABEL[3] = {70, 70, 70};
static const uint8_t C_FRAME[3] = {90, 90, 90};
static const uint8_t C_GRID[3] = {228, 228, 228};
static const uint8_t C_MUTED[3] = {140, 140, 140};
static const uint8_t C_LEGEND_EDGE[3] = {200, 200, 200};

struct canvas {
    uint8_t *rgb; /* (h, w, 3) */
    int w, h;
};

/* ---- pixels ------------------------------------------------------------------------- */

static void blend(struct canvas *c, int x, int y, const uint8_t col[3], float a)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h || !(a > 0.0f))
        return;
    if (a > 1.0f)
        a = 1.0f;
    uint8_t *p = c->rgb + ((size_t)y * c->w + x) * 3;
    for (int k = 0; k < 3; k++)
        p[k] = (uint8_t)lrintf((float)p[k] + ((float)col[k] - (float)p[k]) * a);
}

static void fill_rect(struct canvas *c, int x0, int y0, int x1, int y1, const uint8_t col[3],
                      float a)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            blend(c, x, y, col, a);
}

/* 1-pixel outline of [x0, x1) x [y0, y1). */
static void stroke_rect(struct canvas *c, int x0, int y0, int x1, int y1, const uint8_t col[3])
{
    fill_rect(c, x0, y0, x1, y0 + 1, col, 1.0f);
    fill_rect(c, x0, y1 - 1, x1, y1, col, 1.0f);
    fill_rect(c, x0, y0 + 1, x0 + 1, y1 - 1, col, 1.0f);
    fill_rect(c, x1 - 1, y0 + 1, x1, y1 - 1, col, 1.0f);
}

static void draw_text(struct canvas *c, int x, int y, const char *s, int scale,
                      const uint8_t col[3], int flags)
{
    plot_text_draw(c->rgb, c->w, c->h, x, y, s, scale, col, flags);
}

/* ---- public helpers ---------------------------------------------------------------- */

void plot_palette(int i, uint8_t rgb[3])
{
    static const uint8_t tab10[10][3] = {
        {31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
        {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
    i = ((i % 10) + 10) % 10;
    memcpy(rgb, tab10[i], 3);
}

/* ---- series ------------------------------------------------------------------------- */

static int point_ok(const struct plot_series *s, int i, int log_y)
{
    double x = s->x[i], y = s->y[i];
    if (!isfinite(x) || !isfinite(y) || fabs(x) > BIG || fabs(y) > BIG)
        return 0;
    return !log_y || y > 0.0;
}

static int series_ok(const struct plot_series *s)
{
    return s->x && s->y && s->n > 0;
}

/* Coverage mask (w, h), max over capsules: full within hw of the segment, fading over one
 * more pixel. Coordinates are local to the mask, pixel centres at +0.5. */
static void cover_segment(float *cov, int w, int h, double ax, double ay, double bx, double by,
                          double hw)
{
    double r = hw + 0.5;
    double fx0 = fmax(floor(fmin(ax, bx) - r), 0.0), fx1 = fmin(ceil(fmax(ax, bx) + r), w - 1);
    double fy0 = fmax(floor(fmin(ay, by) - r), 0.0), fy1 = fmin(ceil(fmax(ay, by) + r), h - 1);
    if (!(fx0 <= fx1 && fy0 <= fy1))
        return;
    double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    for (int j = (int)fy0; j <= (int)fy1; j++) {
        for (int i = (int)fx0; i <= (int)fx1; i++) {
            double cx = i + 0.5 - ax, cy = j + 0.5 - ay;
            double t = len2 > 0.0 ? (cx * dx + cy * dy) / len2 : 0.0;
            t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
            double ex = cx - t * dx, ey = cy - t * dy;
            float c = (float)(r - sqrt(ex * ex + ey * ey));
            float *p = cov + (size_t)j * w + i;
            if (c > *p)
                *p = c > 1.0f ? 1.0f : c;
        }
    }
}

/* A point marker at canvas point (cx, cy): an antialiased disc of the series colour in a
 * thin white ring that keeps it readable over dense lines; clipped to [x0,x1) x [y0,y1). */
static void draw_marker(struct canvas *c, double cx, double cy, int scale, const uint8_t col[3],
                        int x0, int y0, int x1, int y1)
{
    double rad = 2.5 * scale;
    int i0 = (int)floor(cx - rad - 2), i1 = (int)ceil(cx + rad + 2);
    int j0 = (int)floor(cy - rad - 2), j1 = (int)ceil(cy + rad + 2);
    for (int j = j0 > y0 ? j0 : y0; j <= j1 && j < y1; j++)
        for (int i = i0 > x0 ? i0 : x0; i <= i1 && i < x1; i++) {
            double d = hypot(i + 0.5 - cx, j + 0.5 - cy);
            blend(c, i, j, C_WHITE, (float)(rad + 1.5 - d));
            blend(c, i, j, col, (float)(rad + 0.5 - d));
        }
}

/* A polyline into the coverage mask. Consecutive points in one pixel column are reduced to
 * their first, lowest, highest and last (in order), which draws the same pixels, so a
 * million noisy steps cost what a few thousand do. */
struct trace {
    float *cov; /* (h, w) */
    int w, h, has_prev, n;
    double hw, px, py;
    long col;
    double x[4], y[4]; /* first, min, max, last of the current column */
    long idx[4];
};

static void trace_flush(struct trace *t)
{
    int o[4] = {0, t->idx[1] < t->idx[2] ? 1 : 2, t->idx[1] < t->idx[2] ? 2 : 1, 3};
    long done = -1;
    for (int k = 0; t->n && k < 4; k++) {
        int j = o[k];
        if (t->idx[j] <= done)
            continue;
        done = t->idx[j];
        cover_segment(t->cov, t->w, t->h, t->has_prev ? t->px : t->x[j],
                      t->has_prev ? t->py : t->y[j], t->x[j], t->y[j], t->hw);
        t->px = t->x[j];
        t->py = t->y[j];
        t->has_prev = 1;
    }
    t->n = 0;
}

static void trace_point(struct trace *t, long i, double x, double y)
{
    long col = (long)floor(x);
    if (t->n && col != t->col)
        trace_flush(t);
    int first = !t->n, upd[4] = {first, first || y < t->y[1], first || y > t->y[2], 1};
    for (int k = 0; k < 4; k++)
        if (upd[k]) {
            t->x[k] = x;
            t->y[k] = y;
            t->idx[k] = i;
        }
    t->col = col;
    t->n = 1;
}

/* Lines of one series through the coverage mask, composited once, then its markers. */
static void draw_series(struct canvas *c, const struct plot_frame *f, const struct plot_series *s,
                        int scale, float *cov)
{
    int w = f->x1 - f->x0, h = f->y1 - f->y0;
    if (s->markers != PLOT_MARKERS_ONLY) {
        memset(cov, 0, sizeof(float) * (size_t)w * h);
        struct trace t = {.cov = cov, .w = w, .h = h, .hw = 0.5 * scale};
        for (int i = 0; i < s->n; i++) {
            if (!point_ok(s, i, f->log_y)) {
                trace_flush(&t);
                t.has_prev = 0;
                continue;
            }
            trace_point(&t, i, plot_frame_px(f, s->x[i]) - f->x0,
                        plot_frame_py(f, s->y[i]) - f->y0);
        }
        trace_flush(&t);
        for (int j = 0; j < h; j++)
            for (int i = 0; i < w; i++)
                blend(c, f->x0 + i, f->y0 + j, s->rgb, cov[(size_t)j * w + i]);
    }
    for (int i = 0; s->markers != PLOT_LINE && i < s->n; i++)
        if (point_ok(s, i, f->log_y))
            draw_marker(c, plot_frame_px(f, s->x[i]), plot_frame_py(f, s->y[i]), scale, s->rgb,
                        f->x0, f->y0, f->x1, f->y1);
}

/* ---- layout, axes, legend ----------------------------------------------------------- */

static int has_text(const char *s)
{
    return s && *s;
}

/* Margins around the plot area from the text they hold, then the ticks that fit in it. */
static void layout(const struct plot_spec *sp, int s, struct axis *ax, struct axis *ay,
                   struct plot_frame *f)
{
    int W = sp->width, H = sp->height, pad = 6 * s, tick = 3 * s;
    f->y0 = pad + (has_text(sp->title) ? 13 * s : 4 * s);
    f->y1 = H - (pad + 10 * s + tick + (has_text(sp->xlabel) ? 13 * s : 0));
    if (f->y1 - f->y0 < 8) {
        f->y0 = 2;
        f->y1 = H - 2;
    }
    plot_axis_ticks(ay, f->y1 - f->y0, s, 0);
    int lw = 0;
    for (int i = 0; i < ay->nmajor; i++) {
        int w = plot_text_width(ay->label[i], s);
        lw = w > lw ? w : lw;
    }
    f->x0 = pad + (has_text(sp->ylabel) ? 13 * s : 0) + lw + 3 * s + tick;
    int right = 2 * pad;
    for (int pass = 0; pass < 2; pass++) {
        f->x1 = W - right;
        if (f->x1 - f->x0 < 8) {
            f->x0 = 2;
            f->x1 = W - 2;
        }
        plot_axis_ticks(ax, f->x1 - f->x0, s, 1);
        for (int i = 0; i < ax->nmajor; i++) {
            int need = plot_text_width(ax->label[i], s) / 2 + pad;
            right = need > right ? need : right;
        }
    }
}

static void draw_grid(struct canvas *c, const struct plot_frame *f, const struct axis *ax,
                      const struct axis *ay)
{
    int w = f->x1 - f->x0, h = f->y1 - f->y0;
    for (int i = 0; i < ax->nmajor; i++) {
        int col = f->x0 + (int)floor(plot_axis_t(ax, ax->major[i]) * w);
        if (col >= f->x0 && col < f->x1)
            fill_rect(c, col, f->y0, col + 1, f->y1, C_GRID, 1.0f);
    }
    for (int i = 0; i < ay->nmajor; i++) {
        int row = f->y1 - 1 - (int)floor(plot_axis_t(ay, ay->major[i]) * h);
        if (row >= f->y0 && row < f->y1)
            fill_rect(c, f->x0, row, f->x1, row + 1, C_GRID, 1.0f);
    }
}

/* Frame, ticks and tick labels; labels that would collide with the previous are left out. */
static void draw_axes(struct canvas *c, const struct plot_frame *f, const struct axis *ax,
                      const struct axis *ay, int s)
{
    int w = f->x1 - f->x0, h = f->y1 - f->y0, tick = 3 * s, prev_right = -1000000;
    int prev_row = 1000000;
    stroke_rect(c, f->x0 - 1, f->y0 - 1, f->x1 + 1, f->y1 + 1, C_FRAME);
    for (int i = 0; i < ax->nmajor; i++) {
        int col = f->x0 + (int)floor(plot_axis_t(ax, ax->major[i]) * w);
        if (col < f->x0 || col >= f->x1)
            continue;
        fill_rect(c, col, f->y1 + 1, col + 1, f->y1 + 1 + tick, C_FRAME, 1.0f);
        int tw = plot_text_width(ax->label[i], s), left = col - tw / 2;
        if (left < prev_right + 3 * s || left < 0 || left + tw > c->w)
            continue;
        draw_text(c, left, f->y1 + 1 + tick + 3 * s, ax->label[i], s, C_TICKLABEL, 0);
        prev_right = left + tw;
    }
    for (int i = 0; i < ay->nminor; i++) {
        int row = f->y1 - 1 - (int)floor(plot_axis_t(ay, ay->minor[i]) * h);
        if (row >= f->y0 && row < f->y1)
            fill_rect(c, f->x0 - 1 - (tick + 1) / 2, row, f->x0 - 1, row + 1, C_FRAME, 1.0f);
    }
    for (int i = 0; i < ay->nmajor; i++) {
        int row = f->y1 - 1 - (int)floor(plot_axis_t(ay, ay->major[i]) * h);
        if (row < f->y0 || row >= f->y1)
            continue;
        fill_rect(c, f->x0 - 1 - tick, row, f->x0 - 1, row + 1, C_FRAME, 1.0f);
        int tw = plot_text_width(ay->label[i], s);
        if (row > prev_row - 10 * s)
            continue;
        prev_row = row;
        draw_text(c, f->x0 - 1 - tick - 3 * s - tw, row - (7 * s) / 2, ay->label[i], s, C_TICKLABEL,
                  0);
    }
}

static void draw_titles(struct canvas *c, const struct plot_spec *sp, const struct plot_frame *f,
                        int s)
{
    int pad = 6 * s;
    if (has_text(sp->title)) {
        int tw = plot_text_width(sp->title, s) + 1, x = (f->x0 + f->x1 - tw) / 2;
        if (x + tw > c->w - pad)
            x = c->w - pad - tw;
        draw_text(c, x < pad ? pad : x, pad, sp->title, s, C_TEXT, PLOT_TEXT_BOLD);
    }
    if (has_text(sp->xlabel)) {
        int tw = plot_text_width(sp->xlabel, s);
        draw_text(c, (f->x0 + f->x1 - tw) / 2, f->y1 + 1 + 3 * s + 14 * s, sp->xlabel, s, C_TEXT,
                  0);
    }
    if (has_text(sp->ylabel)) {
        int tw = plot_text_width(sp->ylabel, s), y = (f->y0 + f->y1 + tw) / 2;
        draw_text(c, pad, y > c->h - 1 ? c->h - 1 : y, sp->ylabel, s, C_TEXT, PLOT_TEXT_VERTICAL);
    }
}

/* Pixels in a box that are neither background nor grid: what a legend there would hide. */
static long occupancy(const struct canvas *c, int x, int y, int w, int h)
{
    long n = 0;
    for (int j = y; j < y + h; j++)
        for (int i = x; i < x + w; i++) {
            const uint8_t *p = c->rgb + ((size_t)j * c->w + i) * 3;
            n += memcmp(p, C_WHITE, 3) != 0 && memcmp(p, C_GRID, 3) != 0;
        }
    return n;
}

/* A box with each labelled series' line (and marker) and label, in the corner of the plot
 * area where it hides the fewest drawn pixels (upper right on ties). */
static void draw_legend(struct canvas *c, const struct plot_frame *f,
                        const struct plot_series *series, int nseries, int s)
{
    int n = 0, tw = 0, pad = 5 * s, sw = 14 * s, rowh = 10 * s, inset = 5 * s;
    for (int i = 0; i < nseries; i++)
        if (has_text(series[i].label)) {
            int w = plot_text_width(series[i].label, s);
            tw = w > tw ? w : tw;
            n++;
        }
    int bw = 2 * pad + sw + 4 * s + tw, bh = 2 * pad + n * rowh - 3 * s;
    if (n == 0 || bw + 2 * inset > f->x1 - f->x0 || bh + 2 * inset > f->y1 - f->y0)
        return;
    int xs[2] = {f->x1 - inset - bw, f->x0 + inset}, ys[2] = {f->y0 + inset, f->y1 - inset - bh};
    int bx = xs[0], by = ys[0];
    long best = -1;
    for (int k = 0; k < 4; k++) {
        long o = occupancy(c, xs[k & 1], ys[k >> 1], bw, bh);
        if (best < 0 || o < best) {
            best = o;
            bx = xs[k & 1];
            by = ys[k >> 1];
        }
    }
    fill_rect(c, bx, by, bx + bw, by + bh, C_WHITE, 0.9f);
    stroke_rect(c, bx, by, bx + bw, by + bh, C_LEGEND_EDGE);
    int y = by + pad;
    for (int i = 0; i < nseries; i++) {
        const struct plot_series *sr = &series[i];
        if (!has_text(sr->label))
            continue;
        double cy = y + 3.5 * s, x0 = bx + pad;
        if (sr->markers != PLOT_MARKERS_ONLY) {
            for (int j = (int)floor(cy - s); j <= (int)ceil(cy + s); j++)
                for (int k = (int)x0; k < (int)x0 + sw; k++)
                    blend(c, k, j, sr->rgb, (float)(0.5 * s + 0.5 - fabs(j + 0.5 - cy)));
        }
        if (sr->markers != PLOT_LINE)
            draw_marker(c, x0 + 0.5 * sw, cy, s, sr->rgb, 0, 0, c->w, c->h);
        draw_text(c, bx + pad + sw + 4 * s, y, sr->label, s, C_TEXT, 0);
        y += rowh;
    }
}

/* ---- entry points ------------------------------------------------------------------- */

/* Finite data bounds of all series into b = {xmin, xmax, ymin, ymax} (y as log10 on a log
 * axis); the number of usable points. */
static long data_bounds(const struct plot_series *series, int nseries, int log_y, double b[4])
{
    long count = 0;
    b[0] = b[2] = INFINITY;
    b[1] = b[3] = -INFINITY;
    for (int k = 0; k < nseries; k++) {
        const struct plot_series *s = &series[k];
        for (int i = 0; series_ok(s) && i < s->n; i++) {
            if (!point_ok(s, i, log_y))
                continue;
            double y = log_y ? log10(s->y[i]) : s->y[i];
            b[0] = fmin(b[0], s->x[i]);
            b[1] = fmax(b[1], s->x[i]);
            b[2] = fmin(b[2], y);
            b[3] = fmax(b[3], y);
            count++;
        }
    }
    return count;
}

static int size_ok(const struct plot_spec *sp)
{
    return sp && sp->width >= 64 && sp->height >= 64 && sp->width <= 8192 && sp->height <= 8192;
}

int plot_render(const struct plot_spec *spec, const struct plot_series *series, int nseries,
                uint8_t *rgb, struct plot_frame *frame)
{
    if (!size_ok(spec) || !rgb)
        return -1;
    struct canvas c = {rgb, spec->width, spec->height};
    memset(rgb, 255, (size_t)c.w * c.h * 3);
    if (!series || nseries < 0)
        nseries = 0;
    int s = (c.w >= 400 && c.h >= 260) ? 2 : 1;
    struct axis *ax = calloc(2, sizeof(struct axis));
    if (!ax)
        return -1;
    struct axis *ay = ax + 1;
    double b[4];
    long count = data_bounds(series, nseries, spec->log_y, b);
    ay->log = spec->log_y != 0;
    plot_axis_range(ax, b[0], b[1], count > 0);
    plot_axis_range(ay, b[2], b[3], count > 0);
    struct plot_frame f = {0};
    layout(spec, s, ax, ay, &f);
    f.xlo = ax->lo;
    f.xhi = ax->hi;
    f.ylo = ay->log ? pow(10.0, ay->lo) : ay->lo;
    f.yhi = ay->log ? pow(10.0, ay->hi) : ay->hi;
    f.log_y = ay->log;
    f.has_data = count > 0;
    size_t area = (size_t)(f.x1 - f.x0) * (f.y1 - f.y0);
    float *cov = malloc(area * sizeof(float));
    int rc = cov ? 0 : -1;
    if (rc == 0) {
        draw_grid(&c, &f, ax, ay);
        for (int k = 0; k < nseries; k++)
            if (series_ok(&series[k]))
                draw_series(&c, &f, &series[k], s, cov);
        if (count == 0) {
            int tw = plot_text_width("no data", s);
            draw_text(&c, (f.x0 + f.x1 - tw) / 2, (f.y0 + f.y1 - 7 * s) / 2, "no data", s, C_MUTED,
                      0);
        }
        draw_axes(&c, &f, ax, ay, s);
        draw_titles(&c, spec, &f, s);
        draw_legend(&c, &f, series, nseries, s);
    }
    if (frame)
        *frame = f;
    free(cov);
    free(ax);
    return rc;
}

int plot_write_png(const char *path, const struct plot_spec *spec, const struct plot_series *series,
                   int nseries, char *err, size_t errlen)
{
    if (!path || !size_ok(spec)) {
        snprintf(err, errlen, "%s: no path, or plot size %dx%d out of range (64..8192 each)",
                 path ? path : "plot", spec ? spec->width : 0, spec ? spec->height : 0);
        return -1;
    }
    uint8_t *rgb = malloc((size_t)spec->width * spec->height * 3);
    if (!rgb || plot_render(spec, series, nseries, rgb, NULL) != 0) {
        snprintf(err, errlen, "%s: out of memory rendering a %dx%d plot", path, spec->width,
                 spec->height);
        free(rgb);
        return -1;
    }
    int rc = image_write_png(path, rgb, spec->width, spec->height, err, errlen);
    free(rgb);
    return rc;
}
