/* cuda_resample.cu: 2x2 average pooling, 2x bilinear upsampling (TensorFlow's resize with
 * half-pixel centers) and the sinusoidal embedding on the GPU.
 *
 * Every kernel is a gather (one thread per output element, written once), so backward
 * passes need no atomics and are deterministic. The upsampling backward even adds its
 * terms in the order kernels/cpu_resample.c scatters them, so it gives the CPU's bits. */
#include "cuda_common.h"

/* --- average pooling ------------------------------------------------------------------ */
/* The resampling kernels index with IDX = uint32_t where the tensor allows (a 64-bit
 * division per element costs more than the loads), size_t beyond. */
template <typename IDX>
static __global__ void avgpool2_forward_kernel(float *y, const float *x, IDX total, int h, int w,
                                               int c)
{
    int ho = h / 2, wo = w / 2;
    for (IDX k = (IDX)blockIdx.x * blockDim.x + threadIdx.x; k < total;
         k += (IDX)blockDim.x * gridDim.x) {
        int j = (int)(k % (IDX)c);
        IDX r = k / (IDX)c; /* output pixel */
        int ox = (int)(r % (IDX)wo), oy = (int)(r / (IDX)wo % (IDX)ho);
        int i = (int)(r / ((IDX)wo * (IDX)ho));
        const float *p00 = x + (((size_t)i * h + 2 * oy) * w + 2 * ox) * c + j;
        const float *p01 = p00 + c, *p10 = p00 + (size_t)w * c, *p11 = p10 + c;
        y[k] = (*p00 + *p01 + *p10 + *p11) * 0.25f;
    }
}

void cuda_avgpool2_forward(struct backend *be, float *y, const float *x, int n, int h, int w, int c)
{
    size_t total = (size_t)n * (h / 2) * (w / 2) * c;
    if (!total)
        return;
    unsigned grid = cuda_grid(total, CUDA_BLOCK);
    if (4 * total < CUDA_IDX32_LIMIT) /* x is 4x the size of y */
        avgpool2_forward_kernel<uint32_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(y, x, (uint32_t)total, h, w, c);
    else
        avgpool2_forward_kernel<size_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(y, x, total, h, w, c);
    KERNEL_CHECK();
}

/* dx (n,h,w,c) (=/+=) 0.25 * dy (n,h/2,w/2,c) at the covering output pixel */
template <typename IDX>
static __global__ void avgpool2_backward_kernel(float *dx, const float *dy, IDX total, int h, int w,
                                                int c, int add)
{
    int ho = h / 2, wo = w / 2;
    for (IDX k = (IDX)blockIdx.x * blockDim.x + threadIdx.x; k < total;
         k += (IDX)blockDim.x * gridDim.x) {
        int j = (int)(k % (IDX)c);
        IDX r = k / (IDX)c;
        int xx = (int)(r % (IDX)w), yy = (int)(r / (IDX)w % (IDX)h);
        int i = (int)(r / ((IDX)w * (IDX)h));
        dx[k] =
            (add ? dx[k] : 0.0f) + 0.25f * dy[(((size_t)i * ho + yy / 2) * wo + xx / 2) * c + j];
    }
}

void cuda_avgpool2_backward(struct backend *be, float *dx, const float *dy, int n, int h, int w,
                            int c, enum grad_mode mode)
{
    size_t total = (size_t)n * h * w * c;
    if (!total || !dx)
        return;
    unsigned grid = cuda_grid(total, CUDA_BLOCK);
    int add = mode == GRAD_ADD;
    if (total < CUDA_IDX32_LIMIT)
        avgpool2_backward_kernel<uint32_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(dx, dy, (uint32_t)total, h, w, c, add);
    else
        avgpool2_backward_kernel<size_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(dx, dy, total, h, w, c, add);
    KERNEL_CHECK();
}

/* --- bilinear 2x upsampling ------------------------------------------------------------ */
/* Source taps of output coordinate o when doubling a size-`in` axis, as TF computes them:
 * src = (o + 0.5) * 0.5 - 0.5, lower = max(floor(src), 0), upper = min(ceil(src), in-1),
 * lerp = src - floor(src). (Not upper = lower+1: at o = 0, src = -0.25 and both taps are
 * row 0.) */
static __device__ inline void upsample_taps(int o, int in, int *lower, int *upper, float *lerp)
{
    float src = ((float)o + 0.5f) * 0.5f - 0.5f;
    float fl = floorf(src);
    *lower = fl < 0 ? 0 : (int)fl;
    int ce = (int)ceilf(src);
    *upper = ce > in - 1 ? in - 1 : ce;
    *lerp = src - fl;
}

template <typename IDX>
static __global__ void upsample2_forward_kernel(float *y, const float *x, IDX total, int h, int w,
                                                int c)
{
    int ho = 2 * h, wo = 2 * w;
    for (IDX k = (IDX)blockIdx.x * blockDim.x + threadIdx.x; k < total;
         k += (IDX)blockDim.x * gridDim.x) {
        int j = (int)(k % (IDX)c);
        IDX r = k / (IDX)c;
        int ox = (int)(r % (IDX)wo), oy = (int)(r / (IDX)wo % (IDX)ho);
        int i = (int)(r / ((IDX)wo * (IDX)ho));
        int y0, y1, x0, x1;
        float ly, lx;
        upsample_taps(oy, h, &y0, &y1, &ly);
        upsample_taps(ox, w, &x0, &x1, &lx);
        y[k] = cuda_bilinear_value(x + (size_t)i * h * w * c + j, w, c, y0, y1, x0, x1, ly, lx);
    }
}

void cuda_upsample2_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                            int c)
{
    size_t total = (size_t)n * (2 * h) * (2 * w) * c;
    if (!total)
        return;
    unsigned grid = cuda_grid(total, CUDA_BLOCK);
    if (total < CUDA_IDX32_LIMIT)
        upsample2_forward_kernel<uint32_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(y, x, (uint32_t)total, h, w, c);
    else
        upsample2_forward_kernel<size_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(y, x, total, h, w, c);
    KERNEL_CHECK();
}

/* dx[i,iy,ix,j] (=/+=) sum of w*dy over the output pixels that tap (iy,ix). Output row oy taps
 * rows floor(oy/2 - 0.25) and its ceiling (clamped; oy/2 - 0.25 is never whole), so only
 * oy in [2iy-1, 2iy+2] can tap iy (2iy-2 and 2iy+3 tap iy-2..iy-1 and iy+1..iy+2: the
 * wider range looped over before added nothing but 20 of 36 empty iterations); the same
 * for columns. 32-bit indices where the tensor allows. Terms are added in the CPU scatter's order:
 * output pixels in row-major order, and for each the taps top-left, top-right, bottom-left,
 * bottom-right. */
template <typename IDX>
static __global__ void upsample2_backward_kernel(float *dx, const float *dy, IDX total, int h,
                                                 int w, int c, int add)
{
    int ho = 2 * h, wo = 2 * w;
    for (IDX k = (IDX)blockIdx.x * blockDim.x + threadIdx.x; k < total;
         k += (IDX)blockDim.x * gridDim.x) {
        int j = (int)(k % (IDX)c);
        IDX r = k / (IDX)c;
        int ix = (int)(r % (IDX)w), iy = (int)(r / (IDX)w % (IDX)h);
        int i = (int)(r / ((IDX)w * (IDX)h));
        const float *g_img = dy + (size_t)i * ho * wo * c + j;
        float acc = add ? dx[k] : 0.0f;
        int oy_lo = max(2 * iy - 1, 0), oy_hi = min(2 * iy + 2, ho - 1);
        int ox_lo = max(2 * ix - 1, 0), ox_hi = min(2 * ix + 2, wo - 1);
        for (int oy = oy_lo; oy <= oy_hi; oy++) {
            int y0, y1;
            float ly;
            upsample_taps(oy, h, &y0, &y1, &ly);
            if (y0 != iy && y1 != iy)
                continue;
            for (int ox = ox_lo; ox <= ox_hi; ox++) {
                int x0, x1;
                float lx;
                upsample_taps(ox, w, &x0, &x1, &lx);
                if (x0 != ix && x1 != ix)
                    continue;
                float g = g_img[((size_t)oy * wo + ox) * c];
                float wtl = (1 - lx) * (1 - ly), wtr = lx * (1 - ly);
                float wbl = (1 - lx) * ly, wbr = lx * ly;
                if (y0 == iy && x0 == ix)
                    acc += wtl * g;
                if (y0 == iy && x1 == ix)
                    acc += wtr * g;
                if (y1 == iy && x0 == ix)
                    acc += wbl * g;
                if (y1 == iy && x1 == ix)
                    acc += wbr * g;
            }
        }
        dx[k] = acc;
    }
}

void cuda_upsample2_backward(struct backend *be, float *dx, const float *dy, int n, int h, int w,
                             int c, enum grad_mode mode)
{
    size_t total = (size_t)n * h * w * c;
    if (!total || !dx)
        return;
    unsigned grid = cuda_grid(total, CUDA_BLOCK);
    int add = mode == GRAD_ADD;
    /* the largest index read is in dy, 4x the size of dx */
    if (4 * total < CUDA_IDX32_LIMIT)
        upsample2_backward_kernel<uint32_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(dx, dy, (uint32_t)total, h, w, c, add);
    else
        upsample2_backward_kernel<size_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(dx, dy, total, h, w, c, add);
    KERNEL_CHECK();
}

/* --- sinusoidal embedding -------------------------------------------------------------- */
#define EMBED_MAX_HALF 512 /* angular speeds passed by value: 2 KiB of kernel parameters */

struct embed_speeds {
    float angular[EMBED_MAX_HALF]; /* (half,) float32(2*pi) * exp(linspace(...))[k] */
};

/* e[i, p, k] = sin(angular[k] * v[i]), e[i, p, half + k] = cos(...), for every pixel p (an
 * odd dims leaves the last channel untouched, as the CPU backend does) */
static __global__ void sinusoidal_embedding_kernel(float *e, const float *v, int n, int hw,
                                                   int dims, struct embed_speeds speeds)
{
    int half = dims / 2;
    size_t total = (size_t)n * hw * dims;
    CUDA_GRID_STRIDE_LOOP(k, total)
    {
        int d = (int)(k % dims);
        int i = (int)(k / ((size_t)hw * dims));
        if (d >= 2 * half)
            continue;
        float arg = speeds.angular[d < half ? d : d - half] * v[i];
        e[k] = d < half ? sinf(arg) : cosf(arg);
    }
}

int cuda_embedding_supported(int dims, char *why, size_t whylen)
{
    if (dims / 2 <= EMBED_MAX_HALF)
        return 1;
    util_error(why, whylen, "%d dims exceed the %d this kernel takes", dims, 2 * EMBED_MAX_HALF);
    return 0;
}

/* The speeds are computed here on the host with the CPU backend's exact expressions (glibc
 * logf/expf), so that both backends feed sinf/cosf the same arguments: an ulp of expf at a
 * speed of 2*pi*1000 would move sin by ~4e-4. */
void cuda_sinusoidal_embedding(struct backend *be, float *e, const float *v, int n, int h, int w,
                               int dims, float fmin, float fmax)
{
    int half = dims / 2;
    char why[256];
    if (!cuda_embedding_supported(dims, why, sizeof why)) /* supports_op refuses it first */
        DDIM_FATAL("cuda sinusoidal_embedding: %s", why);
    size_t total = (size_t)n * h * w * dims;
    if (!total || half <= 0)
        return;
    struct embed_speeds speeds;
    float lo = logf(fmin), hi = logf(fmax);
    float delta = half > 1 ? (hi - lo) / (float)(half - 1) : 0.0f;
    for (int k = 0; k < half; k++) {
        float lin = (k == half - 1 && half > 1) ? hi : lo + delta * (float)k;
        speeds.angular[k] = 6.28318548f * expf(lin);
    }
    sinusoidal_embedding_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        e, v, n, h * w, dims, speeds);
    KERNEL_CHECK();
}
