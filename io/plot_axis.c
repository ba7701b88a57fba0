/* plot_axis.c: see plot_axis.h. */
#include "plot_axis.h"
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- ticks and labels --------------------------------------------------------------- */

static double nice_step(double raw)
{
    double mag = pow(10.0, floor(log10(raw)));
    double n = raw / mag;
    return (n <= 1.0 ? 1.0 : n <= 2.0 ? 2.0 : n <= 5.0 ? 5.0 : 10.0) * mag;
}

/* Ticks every nice step in [lo, hi] (data values), labelled with one number of decimals. */
static void ticks_linear(struct axis *a, double lo, double hi, int target)
{
    a->nmajor = 0;
    double step = nice_step((hi - lo) / target);
    if (!(step > 0.0) || !isfinite(step))
        return;
    double i0 = ceil(lo / step - 1e-9), i1 = floor(hi / step + 1e-9);
    if (!(i1 - i0 < MAX_TICKS))
        return;
    int sci = fmax(fabs(lo), fabs(hi)) >= 1e6 || step < 1e-4;
    for (double i = i0; i <= i1; i += 1.0) {
        double v = fabs(i * step) < step * 1e-6 ? 0.0 : i * step;
        plot_format_number(a->label[a->nmajor], sizeof a->label[0], v, step, sci);
        a->major[a->nmajor++] = v;
    }
}

/* Multiples m*10^k (m in the first nm of 1,2,5,3,4,6,7,8,9) within [lo, hi] (log10). */
static int log_multiples(double *out, double lo, double hi, int nm)
{
    static const double mult[9] = {1, 2, 5, 3, 4, 6, 7, 8, 9};
    int n = 0;
    for (int k = (int)floor(lo) - 1; k <= (int)ceil(hi); k++)
        for (int m = 1; m <= 9; m++)
            for (int j = 0; j < nm; j++) {
                double l = log10(m) + k;
                if (mult[j] == m && l >= lo - 1e-9 && l <= hi + 1e-9 && n < MAX_TICKS)
                    out[n++] = m * pow(10.0, k);
            }
    return n;
}

/* Log axis (lo, hi are log10 values): powers of ten with 2..9 minor ticks; within about a
 * decade 1-2-5 multiples (then 1-2-3-5, then 1..9) until 4 ticks show; failing that,
 * linear nice ticks. Plain numbers for 0.01..10000, "1e-3" beyond. */
static void ticks_log(struct axis *a, double lo, double hi, int target)
{
    a->nmajor = a->nminor = 0;
    int k0 = (int)ceil(lo - 1e-9), k1 = (int)floor(hi + 1e-9);
    int nd = k1 - k0 + 1, stride = 1, nm = 1;
    if (nd >= 2) {
        stride = (nd + target - 1) / target;
        int start = (int)ceil((double)k0 / stride) * stride;
        for (int k = start; k <= k1 && a->nmajor < MAX_TICKS; k += stride)
            a->major[a->nmajor++] = pow(10.0, k);
    } else {
        static const int tries[3] = {3, 4, 9};
        for (int t = 0; t < 3 && a->nmajor < 4; t++) {
            nm = tries[t];
            a->nmajor = log_multiples(a->major, lo, hi, nm);
        }
        if (a->nmajor < 2) {
            ticks_linear(a, pow(10.0, lo), pow(10.0, hi), target);
            return;
        }
    }
    for (int k = k0 - 1; stride == 1 && nm < 9 && k <= k1 + 1; k++)
        for (int j = 2; j <= 9 && a->nminor < MAX_MINOR; j++) {
            double l = log10(j) + k;
            int major = nm > 1 && (j == 2 || j == 5 || (nm > 3 && j == 3));
            if (l >= lo && l <= hi && !major)
                a->minor[a->nminor++] = j * pow(10.0, k);
        }
    for (int i = 0; i < a->nmajor; i++) {
        int e = (int)floor(log10(a->major[i]) + 1e-9);
        plot_format_number(a->label[i], sizeof a->label[0], a->major[i], pow(10.0, e),
                           e < -2 || e > 4);
    }
}

/* The most ticks (at most 12) whose labels fit along length pixels: x labels side by side
 * with gaps, y labels at least 26 text pixels apart. */
void plot_axis_ticks(struct axis *a, int length, int s, int horizontal)
{
    for (int target = 12; target >= 1; target--) {
        if (a->log)
            ticks_log(a, a->lo, a->hi, target);
        else
            ticks_linear(a, a->lo, a->hi, target);
        int need = 0;
        for (int i = 0; i < a->nmajor; i++) {
            int w = plot_text_width(a->label[i], s) + 16 * s;
            need += horizontal ? (w > 40 * s ? w : 40 * s) : 26 * s;
        }
        if (need <= length)
            return;
    }
}

/* Visible range from the data range [mn, mx] (log10 values on a log axis): 5% padding, a
 * constant widened around its value, no data -> [0, 1] (1..10 on a log axis). */
void plot_axis_range(struct axis *a, double mn, double mx, int have)
{
    if (!have) {
        mn = 0.0;
        mx = 1.0;
    }
    double span = mx - mn, mid = 0.5 * (mn + mx);
    if (!(span > fabs(mid) * 1e-9)) {
        double d = a->log ? 0.5 : (mid != 0.0 ? fabs(mid) * 0.1 : 0.5);
        mn = mid - d;
        mx = mid + d;
        span = mx - mn;
    }
    a->lo = mn - 0.05 * span;
    a->hi = mx + 0.05 * span;
}

double plot_axis_t(const struct axis *a, double v)
{
    return ((a->log ? log10(v) : v) - a->lo) / (a->hi - a->lo);
}
