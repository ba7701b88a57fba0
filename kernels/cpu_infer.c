/* cpu_infer.c: the inference-only ops that InceptionV3 needs for KID (backend.h): ReLU,
 * max / average pooling with TensorFlow's padding, global average pooling and bilinear
 * resizing to any size (TensorFlow's ResizeBilinear with half-pixel centres). No
 * backward: the Inception network is never trained here. */
#include "cpu_ops.h"

#include <math.h>

void cpu_relu_forward(struct backend *be, float *y, const float *x, size_t n)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)n; i++)
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* One output pixel of a pooling window: max, or the mean over the cells inside the image
 * (TensorFlow leaves 'same' padding out of both). */
void cpu_pool_forward(struct backend *be, float *y, const float *x, const struct pool_shape *s)
{
    int ho = conv_out_size(s->h, s->k, s->stride, s->valid);
    int wo = conv_out_size(s->w, s->k, s->stride, s->valid);
    int pt = conv_pad_before(s->h, s->k, s->stride, s->valid);
    int pl = conv_pad_before(s->w, s->k, s->stride, s->valid);
    int c = s->c;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)s->n * ho * wo; r++) {
        int i = (int)(r / ((long)ho * wo)), oy = (int)(r / wo % ho), ox = (int)(r % wo);
        int y0 = oy * s->stride - pt, x0 = ox * s->stride - pl;
        int y1 = y0 + s->k < s->h ? y0 + s->k : s->h, x1 = x0 + s->k < s->w ? x0 + s->k : s->w;
        y0 = y0 < 0 ? 0 : y0;
        x0 = x0 < 0 ? 0 : x0;
        float *dst = y + (size_t)r * c;
        for (int j = 0; j < c; j++)
            dst[j] = s->mode == POOL_MAX ? -INFINITY : 0.0f;
        for (int yy = y0; yy < y1; yy++) {
            for (int xx = x0; xx < x1; xx++) {
                const float *src = x + (((size_t)i * s->h + yy) * s->w + xx) * c;
                for (int j = 0; j < c; j++)
                    dst[j] =
                        s->mode == POOL_MAX ? (src[j] > dst[j] ? src[j] : dst[j]) : dst[j] + src[j];
            }
        }
        if (s->mode == POOL_AVG) {
            float count = (float)((y1 - y0) * (x1 - x0));
            for (int j = 0; j < c; j++)
                dst[j] /= count;
        }
    }
}

void cpu_global_avgpool_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                                int c)
{
    size_t hw = (size_t)h * w;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)n * c; r++) {
        int i = (int)(r / c), j = (int)(r % c);
        double acc = 0.0;
        for (size_t p = 0; p < hw; p++)
            acc += x[((size_t)i * hw + p) * c + j];
        y[r] = (float)(acc / (double)hw);
    }
}

/* TensorFlow's compute_interpolation_weights with HalfPixelScaler, in float32 as it is. */
static void resize_taps(int o, int in, float scale, int *lower, int *upper, float *lerp)
{
    float src = ((float)o + 0.5f) * scale - 0.5f;
    float fl = floorf(src);
    *lower = fl < 0 ? 0 : (int)fl;
    int ce = (int)ceilf(src);
    *upper = ce > in - 1 ? in - 1 : ce;
    *lerp = src - fl;
}

void cpu_resize_bilinear_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                                 int c, int ho, int wo)
{
    float sy = (float)h / (float)ho, sx = (float)w / (float)wo;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)n * ho * wo; r++) {
        int i = (int)(r / ((long)ho * wo)), oy = (int)(r / wo % ho), ox = (int)(r % wo);
        int y0, y1, x0, x1;
        float ly, lx;
        resize_taps(oy, h, sy, &y0, &y1, &ly);
        resize_taps(ox, w, sx, &x0, &x1, &lx);
        cpu_bilinear_pixel(y + (size_t)r * c, x + (size_t)i * h * w * c, w, c, y0, y1, x0, x1, ly,
                           lx);
    }
}
