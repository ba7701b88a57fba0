/* cpu_resample.c: 2x2 average pooling and 2x bilinear upsampling (TensorFlow's resize with
 * half-pixel centers, as Keras UpSampling2D(interpolation="bilinear") uses) on the CPU. */
#include "cpu_ops.h"

#include <math.h>
#include <string.h>

void cpu_avgpool2_forward(struct backend *be, float *y, const float *x, int n, int h, int w, int c)
{
    int ho = h / 2, wo = w / 2;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)n * ho * wo; r++) {
        int i = (int)(r / (ho * wo)), oy = (int)(r / wo % ho), ox = (int)(r % wo);
        const float *p00 = x + (((size_t)i * h + 2 * oy) * w + 2 * ox) * c;
        const float *p01 = p00 + c, *p10 = p00 + (size_t)w * c, *p11 = p10 + c;
        float *dst = y + (size_t)r * c;
        for (int j = 0; j < c; j++)
            dst[j] = (p00[j] + p01[j] + p10[j] + p11[j]) * 0.25f;
    }
}

void cpu_avgpool2_backward(struct backend *be, float *dx, const float *dy, int n, int h, int w,
                           int c, enum grad_mode mode)
{
    int ho = h / 2, wo = w / 2, add = mode == GRAD_ADD;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)n * h * w; r++) {
        int i = (int)(r / (h * w)), yy = (int)(r / w % h), xx = (int)(r % w);
        const float *src = dy + (((size_t)i * ho + yy / 2) * wo + xx / 2) * c;
        float *dst = dx + (size_t)r * c;
        for (int j = 0; j < c; j++)
            dst[j] = (add ? dst[j] : 0.0f) + 0.25f * src[j];
    }
}

/* Source taps of output coordinate o when doubling a size-`in` axis, as TF computes them:
 * src = (o + 0.5) * 0.5 - 0.5, lower = max(floor(src), 0), upper = min(ceil(src), in-1),
 * lerp = src - floor(src). */
static void upsample_taps(int o, int in, int *lower, int *upper, float *lerp)
{
    float src = ((float)o + 0.5f) * 0.5f - 0.5f;
    float fl = floorf(src);
    *lower = fl < 0 ? 0 : (int)fl;
    int ce = (int)ceilf(src);
    *upper = ce > in - 1 ? in - 1 : ce;
    *lerp = src - fl;
}

void cpu_upsample2_forward(struct backend *be, float *y, const float *x, int n, int h, int w, int c)
{
    int ho = 2 * h, wo = 2 * w;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)n * ho * wo; r++) {
        int i = (int)(r / (ho * wo)), oy = (int)(r / wo % ho), ox = (int)(r % wo);
        int y0, y1, x0, x1;
        float ly, lx;
        upsample_taps(oy, h, &y0, &y1, &ly);
        upsample_taps(ox, w, &x0, &x1, &lx);
        cpu_bilinear_pixel(y + (size_t)r * c, x + (size_t)i * h * w * c, w, c, y0, y1, x0, x1, ly,
                           lx);
    }
}

/* Scatter each output gradient to its four taps; one thread per image keeps it race-free.
 * Written (GRAD_WRITE): the image's dx zeroed first, then the same scatter. */
void cpu_upsample2_backward(struct backend *be, float *dx, const float *dy, int n, int h, int w,
                            int c, enum grad_mode mode)
{
    int ho = 2 * h, wo = 2 * w;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *base = dx + (size_t)i * h * w * c;
        if (mode == GRAD_WRITE)
            memset(base, 0, (size_t)h * w * c * sizeof(float));
        for (int oy = 0; oy < ho; oy++) {
            int y0, y1;
            float ly;
            upsample_taps(oy, h, &y0, &y1, &ly);
            for (int ox = 0; ox < wo; ox++) {
                int x0, x1;
                float lx;
                upsample_taps(ox, w, &x0, &x1, &lx);
                const float *g = dy + (((size_t)i * ho + oy) * wo + ox) * c;
                float *tl = base + ((size_t)y0 * w + x0) * c,
                      *tr = base + ((size_t)y0 * w + x1) * c;
                float *bl = base + ((size_t)y1 * w + x0) * c,
                      *br = base + ((size_t)y1 * w + x1) * c;
                float wtl = (1 - lx) * (1 - ly), wtr = lx * (1 - ly);
                float wbl = (1 - lx) * ly, wbr = lx * ly;
                for (int j = 0; j < c; j++) {
                    tl[j] += wtl * g[j];
                    tr[j] += wtr * g[j];
                    bl[j] += wbl * g[j];
                    br[j] += wbr * g[j];
                }
            }
        }
    }
}
