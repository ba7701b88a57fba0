/* plot.h: line plots of training curves (loss, KID, learning rate) rendered into an RGB
 * buffer and saved as PNG, with nothing beyond libc/libm: a white chart with "nice" 1-2-5
 * ticks (powers of ten on a log axis), grid, title, axis labels, antialiased lines, optional
 * point markers and a legend. NaN/Inf points (and y <= 0 on a log axis) are skipped and
 * break the line; a plot without a single finite point says "no data". */
#ifndef DDIM_PLOT_H
#define DDIM_PLOT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* plot_series.markers */
enum { PLOT_LINE = 0, PLOT_LINE_MARKERS = 1, PLOT_MARKERS_ONLY = 2 };

struct plot_series {
    const char *label; /* legend text; NULL or "" leaves the series out of the legend */
    const double *x;   /* (n) */
    const double *y;   /* (n) */
    int n;
    uint8_t rgb[3];
    int markers; /* PLOT_LINE, PLOT_LINE_MARKERS or PLOT_MARKERS_ONLY */
};

struct plot_spec {
    const char *title, *xlabel, *ylabel; /* each may be NULL */
    int width, height;                   /* pixels, 64..8192 each */
    int log_y;                           /* 1: log10 y axis */
};

/* Where the data went, for callers and tests: the plot area is the pixel rectangle
 * [x0, x1) x [y0, y1); data x = xlo maps to pixel column x0 (left edge), xhi to x1 (right
 * edge), y = yhi to row y0 (top edge), ylo to row y1. On a log axis ylo/yhi are the
 * values, not their logarithms. */
struct plot_frame {
    int x0, y0, x1, y1;
    double xlo, xhi, ylo, yhi;
    int log_y;
    int has_data; /* 0 when no finite point was found ("no data") */
};

/* Continuous pixel coordinates of a data point under frame (pixel centres at +0.5). */
static inline double plot_frame_px(const struct plot_frame *f, double x)
{
    return f->x0 + (x - f->xlo) / (f->xhi - f->xlo) * (f->x1 - f->x0);
}

static inline double plot_frame_py(const struct plot_frame *f, double y)
{
    double lo = f->log_y ? log10(f->ylo) : f->ylo, hi = f->log_y ? log10(f->yhi) : f->yhi;
    double v = f->log_y ? log10(y) : y;
    return f->y1 - (v - lo) / (hi - lo) * (f->y1 - f->y0);
}

/* The i-th colour of a 10-colour qualitative palette (matplotlib's tab10). */
void plot_palette(int i, uint8_t rgb[3]);

/* Renders into rgb (height, width, 3). frame may be NULL. Text is drawn at 2x on plots of at
 * least 400x260 pixels, 1x below. 0, or -1 when the size is out of range (rgb untouched) or
 * memory runs out (rgb left white). */
int plot_render(const struct plot_spec *spec, const struct plot_series *series, int nseries,
                uint8_t *rgb, struct plot_frame *frame);

/* Renders and writes a PNG through image_write_png. 0, or -1 with a message in err. */
int plot_write_png(const char *path, const struct plot_spec *spec, const struct plot_series *series,
                   int nseries, char *err, size_t errlen);

/* Text in the embedded 5x9 bitmap font (plot_font.c; ASCII 32..126, others drawn as '?'),
 * each font pixel scale x scale. (x, y) is the top-left of the capitals; with
 * PLOT_TEXT_VERTICAL the text reads upwards from (x, y), its tops facing left. Letters are
 * spaced proportionally, digits at a fixed 6*scale pitch; capitals are 7*scale tall and
 * descenders reach 9*scale. */
enum { PLOT_TEXT_VERTICAL = 1, PLOT_TEXT_BOLD = 2 };
int plot_text_width(const char *s, int scale);
void plot_text_draw(uint8_t *rgb, int width, int height, int x, int y, const char *s, int scale,
                    const uint8_t col[3], int flags);

/* A tick label for v on an axis whose ticks are step apart: "0.05", "25000" with the
 * decimals step needs, or with sci "2.5e6", "1e-3" (the mantissa digits step resolves). */
void plot_format_number(char *out, size_t len, double v, double step, int sci);

#endif
