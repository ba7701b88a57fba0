/* emu_conv.cu: plain direct convolutions for the host emulation, standing in for cuDNN
 * (a library, not emulated) where a test needs a whole network on the emulated backend:
 * backend_cuda_emu_create_with_conv (cuda_emu_backend.h). The U-Net's kind only (square
 * kernel, stride 1, 'same' padding), HWIO weights, one thread per output value, fixed
 * summation order. Kernels launched on the backend's stream like every other op, so they
 * are recorded in a CUDA graph like them. Not fast, not for the real GPU build. */
#include "cuda_common.h"

/* y[n,i,j,o] = sum over (a, b, ci) of x[n, i+a-p, j+b-p, ci] * w[a, b, ci, o]; the bias and
 * the epilogue follow, by the backend's own cuda_bias_epilogue (as cuda_conv.cu does) */
static __global__ void emu_conv_forward_kernel(float *y, const float *x, const float *w,
                                               struct conv_shape s)
{
    int k = s.k, p = (k - 1) / 2;
    size_t total = (size_t)s.n * s.h * s.w * s.cout;
    CUDA_GRID_STRIDE_LOOP(idx, total)
    {
        int o = (int)(idx % s.cout);
        size_t r = idx / s.cout;
        int j = (int)(r % s.w), i = (int)(r / s.w % s.h), n = (int)(r / ((size_t)s.w * s.h));
        float acc = 0.0f;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                int xi = i + a - p, xj = j + b - p;
                if (xi < 0 || xi >= s.h || xj < 0 || xj >= s.w)
                    continue;
                const float *xr = x + (((size_t)n * s.h + xi) * s.w + xj) * s.cin;
                const float *wr = w + ((size_t)(a * k + b) * s.cin) * s.cout + o;
                for (int ci = 0; ci < s.cin; ci++)
                    acc += xr[ci] * wr[(size_t)ci * s.cout];
            }
        y[idx] = acc;
    }
}

/* dx[n,i,j,ci] (=/+=) sum over (a, b, o) of dy[n, i-a+p, j-b+p, o] * w[a, b, ci, o] */
static __global__ void emu_conv_dx_kernel(float *dx, const float *dy, const float *w,
                                          struct conv_shape s, int add)
{
    int k = s.k, p = (k - 1) / 2;
    size_t total = (size_t)s.n * s.h * s.w * s.cin;
    CUDA_GRID_STRIDE_LOOP(idx, total)
    {
        int ci = (int)(idx % s.cin);
        size_t r = idx / s.cin;
        int j = (int)(r % s.w), i = (int)(r / s.w % s.h), n = (int)(r / ((size_t)s.w * s.h));
        float acc = 0.0f;
        for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) {
                int yi = i - a + p, yj = j - b + p;
                if (yi < 0 || yi >= s.h || yj < 0 || yj >= s.w)
                    continue;
                const float *dyr = dy + (((size_t)n * s.h + yi) * s.w + yj) * s.cout;
                const float *wr = w + ((size_t)(a * k + b) * s.cin + ci) * s.cout;
                for (int o = 0; o < s.cout; o++)
                    acc += dyr[o] * wr[o];
            }
        dx[idx] = (add ? dx[idx] : 0.0f) + acc;
    }
}

/* dw[a,b,ci,o] = sum over (n,i,j) of dy[n,i,j,o] * x[n, i+a-p, j+b-p, ci]; block o < cout of
 * the same launch: dbias[o] = sum of dy[..., o] (threads past the weights) */
static __global__ void emu_conv_dw_kernel(float *dw, float *dbias, const float *dy, const float *x,
                                          struct conv_shape s)
{
    int k = s.k, p = (k - 1) / 2;
    size_t nw = (size_t)k * k * s.cin * s.cout;
    size_t rows = (size_t)s.n * s.h * s.w;
    CUDA_GRID_STRIDE_LOOP(idx, nw + s.cout)
    {
        float acc = 0.0f;
        if (idx >= nw) {
            int o = (int)(idx - nw);
            for (size_t r = 0; r < rows; r++)
                acc += dy[r * s.cout + o];
            dbias[o] = acc;
            continue;
        }
        int o = (int)(idx % s.cout), ci = (int)(idx / s.cout % s.cin);
        int ab = (int)(idx / ((size_t)s.cout * s.cin)), a = ab / k, b = ab % k;
        for (size_t r = 0; r < rows; r++) {
            int j = (int)(r % s.w), i = (int)(r / s.w % s.h);
            int xi = i + a - p, xj = j + b - p;
            if (xi < 0 || xi >= s.h || xj < 0 || xj >= s.w)
                continue;
            size_t xrow = r + (size_t)(a - p) * s.w + (b - p);
            acc += dy[r * s.cout + o] * x[xrow * s.cin + ci];
        }
        dw[idx] = acc;
    }
}

static void emu_conv_check(const struct conv_shape *s)
{
    if (!conv_is_basic(s) || s->k % 2 == 0)
        DDIM_FATAL("cuda emulator: the stand-in convolution does odd square kernels, stride 1, "
                   "'same' padding only (got %dx%d, stride %d)",
                   conv_kh(s), conv_kw(s), conv_stride(s));
}

void emu_conv2d_forward(struct backend *be, float *y, const float *x, const float *w,
                        const float *bias, const struct conv_shape *s,
                        const struct conv_epilogue *epi)
{
    emu_conv_check(s);
    size_t n = (size_t)s->n * s->h * s->w * s->cout;
    emu_conv_forward_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(y, x, w,
                                                                                          *s);
    KERNEL_CHECK();
    cuda_bias_epilogue(be, y, bias, (size_t)s->n * s->h * s->w, s->cout, epi);
}

void emu_conv2d_backward(struct backend *be, float *dx, float *dw, float *dbias, const float *dy,
                         const float *x, const float *w, const struct conv_shape *s,
                         enum grad_mode dx_mode)
{
    emu_conv_check(s);
    size_t nw = (size_t)s->k * s->k * s->cin * s->cout + s->cout;
    emu_conv_dw_kernel<<<cuda_grid(nw, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(dw, dbias, dy,
                                                                                      x, *s);
    KERNEL_CHECK();
    if (!dx)
        return;
    size_t nx = (size_t)s->n * s->h * s->w * s->cin;
    emu_conv_dx_kernel<<<cuda_grid(nx, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        dx, dy, w, *s, dx_mode == GRAD_ADD);
    KERNEL_CHECK();
}
