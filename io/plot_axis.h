/* plot_axis.h: the axes of plot.c: ranges, tick positions and their labels (linear and
 * log), in plot_axis.c. Private to plot.c and plot_axis.c. */
#ifndef DDIM_PLOT_AXIS_H
#define DDIM_PLOT_AXIS_H

#define MAX_TICKS 48
#define MAX_MINOR 256

/* One axis: the visible range (log10 of it on a log axis) and its ticks (data values). */
struct axis {
    double lo, hi;
    int log;
    int nmajor, nminor;
    double major[MAX_TICKS];
    double minor[MAX_MINOR];
    char label[MAX_TICKS][32];
};

/* The most ticks (at most 12) whose labels fit along length pixels (text scale s): x labels
 * side by side with gaps, y labels at least 26 text pixels apart. */
void plot_axis_ticks(struct axis *a, int length, int s, int horizontal);

/* Visible range from the data range [mn, mx] (log10 values on a log axis): 5% padding, a
 * constant widened around its value, no data -> [0, 1] (1..10 on a log axis). */
void plot_axis_range(struct axis *a, double mn, double mx, int have);

/* Where v lies along the axis, 0 at lo and 1 at hi. */
double plot_axis_t(const struct axis *a, double v);

#endif
