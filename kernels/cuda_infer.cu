/* cuda_infer.cu: the inference-only ops that InceptionV3 needs for KID (backend.h): ReLU,
 * max / average pooling with TensorFlow's padding, global average pooling and bilinear
 * resizing (TensorFlow's ResizeBilinear with half-pixel centres). One thread per output
 * element, the same arithmetic in the same order as kernels/cpu_infer.c, so the results
 * are the CPU's bits (the global pool sums in double in the same order). */
#include "cuda_common.h"

#include <math.h>

static __global__ void relu_kernel(float *y, const float *x, size_t n)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
    }
}

void cuda_relu_forward(struct backend *be, float *y, const float *x, size_t n)
{
    if (!n)
        return;
    relu_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(y, x, n);
    KERNEL_CHECK();
}

static __global__ void pool_kernel(float *y, const float *x, struct pool_shape s, int ho, int wo,
                                   int pt, int pl)
{
    size_t total = (size_t)s.n * ho * wo * s.c;
    CUDA_GRID_STRIDE_LOOP(k, total)
    {
        int j = (int)(k % s.c);
        size_t r = k / s.c;
        int ox = (int)(r % wo), oy = (int)(r / wo % ho), i = (int)(r / ((size_t)wo * ho));
        int y0 = oy * s.stride - pt, x0 = ox * s.stride - pl;
        int y1 = y0 + s.k < s.h ? y0 + s.k : s.h, x1 = x0 + s.k < s.w ? x0 + s.k : s.w;
        y0 = y0 < 0 ? 0 : y0;
        x0 = x0 < 0 ? 0 : x0;
        float acc = s.mode == POOL_MAX ? -INFINITY : 0.0f;
        for (int yy = y0; yy < y1; yy++)
            for (int xx = x0; xx < x1; xx++) {
                float v = x[(((size_t)i * s.h + yy) * s.w + xx) * s.c + j];
                acc = s.mode == POOL_MAX ? (v > acc ? v : acc) : acc + v;
            }
        y[k] = s.mode == POOL_MAX ? acc : acc / (float)((y1 - y0) * (x1 - x0));
    }
}

void cuda_pool_forward(struct backend *be, float *y, const float *x, const struct pool_shape *s)
{
    int ho = conv_out_size(s->h, s->k, s->stride, s->valid);
    int wo = conv_out_size(s->w, s->k, s->stride, s->valid);
    size_t total = (size_t)s->n * ho * wo * s->c;
    if (!total)
        return;
    pool_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        y, x, *s, ho, wo, conv_pad_before(s->h, s->k, s->stride, s->valid),
        conv_pad_before(s->w, s->k, s->stride, s->valid));
    KERNEL_CHECK();
}

static __global__ void global_avgpool_kernel(float *y, const float *x, int n, size_t hw, int c)
{
    CUDA_GRID_STRIDE_LOOP(r, (size_t)n * c)
    {
        size_t i = r / c, j = r % c;
        double acc = 0.0;
        for (size_t p = 0; p < hw; p++)
            acc += x[(i * hw + p) * c + j];
        y[r] = (float)(acc / (double)hw);
    }
}

void cuda_global_avgpool_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                                 int c)
{
    size_t total = (size_t)n * c;
    if (!total)
        return;
    global_avgpool_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        y, x, n, (size_t)h * w, c);
    KERNEL_CHECK();
}

static __device__ inline void resize_taps(int o, int in, float scale, int *lower, int *upper,
                                          float *lerp)
{
    float src = ((float)o + 0.5f) * scale - 0.5f;
    float fl = floorf(src);
    *lower = fl < 0 ? 0 : (int)fl;
    int ce = (int)ceilf(src);
    *upper = ce > in - 1 ? in - 1 : ce;
    *lerp = src - fl;
}

static __global__ void resize_kernel(float *y, const float *x, int n, int h, int w, int c, int ho,
                                     int wo, float sy, float sx)
{
    size_t total = (size_t)n * ho * wo * c;
    CUDA_GRID_STRIDE_LOOP(k, total)
    {
        int j = (int)(k % c);
        size_t r = k / c;
        int ox = (int)(r % wo), oy = (int)(r / wo % ho), i = (int)(r / ((size_t)wo * ho));
        int y0, y1, x0, x1;
        float ly, lx;
        resize_taps(oy, h, sy, &y0, &y1, &ly);
        resize_taps(ox, w, sx, &x0, &x1, &lx);
        y[k] = cuda_bilinear_value(x + (size_t)i * h * w * c + j, w, c, y0, y1, x0, x1, ly, lx);
    }
}

void cuda_resize_bilinear_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                                  int c, int ho, int wo)
{
    size_t total = (size_t)n * ho * wo * c;
    if (!total)
        return;
    resize_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        y, x, n, h, w, c, ho, wo, (float)h / (float)ho, (float)w / (float)wo);
    KERNEL_CHECK();
}
