/* cuda_elementwise.cu: swish, add, axpy, scale, channel concat, the losses and the
 * convolutions' bias add with its epilogue (residual add, swish) on the GPU.
 * Same float32 formulas, in the same order, as kernels/cpu_elementwise.c; with --fmad=false
 * and IEEE division/sqrt the arithmetic ops give the CPU's bits, and only expf (swish)
 * differs by an ulp or two. The loss sums in double, as the CPU does, through per-block
 * partials combined in a fixed order (deterministic, no atomics). */
#include "cuda_common.h"

static __device__ inline float sigmoid_dev(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* y = y + bias[c], then y = y + residual, then act = swish(y) (both optional): the
 * convolutions' bias with the epilogue of backend.h's struct conv_epilogue, y read once.
 * Each step is the expression of its own op (add_kernel, swish_forward_kernel). */
template <typename IDX>
static __global__ void bias_epilogue_kernel(float *y, const float *bias, IDX n, int c,
                                            const float *residual, float *act)
{
    for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (IDX)blockDim.x * gridDim.x) {
        float v = y[i] + bias[cuda_channel_of(i, c)];
        if (residual)
            v = v + residual[i];
        y[i] = v;
        if (act)
            act[i] = v * sigmoid_dev(v);
    }
}

void cuda_bias_epilogue(struct backend *be, float *y, const float *bias, size_t rows, int c,
                        const struct conv_epilogue *epi)
{
    size_t n = rows * (size_t)(c > 0 ? c : 0);
    if (!n)
        return;
    const float *res = epi ? epi->residual : NULL;
    float *act = epi ? epi->swish : NULL;
    unsigned grid = cuda_grid(n, CUDA_BLOCK);
    if (n < CUDA_IDX32_LIMIT)
        bias_epilogue_kernel<uint32_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(y, bias, (uint32_t)n, c, res, act);
    else
        bias_epilogue_kernel<size_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(y, bias, n, c, res, act);
    KERNEL_CHECK();
}

static __global__ void swish_forward_kernel(float *y, const float *x, size_t n)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        float xi = x[i];
        y[i] = xi * sigmoid_dev(xi);
    }
}

void cuda_swish_forward(struct backend *be, float *y, const float *x, size_t n)
{
    if (!n)
        return;
    swish_forward_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(y, x, n);
    KERNEL_CHECK();
}

/* dx (=/+=) dy * (s + x*s*(1-s)); written as 0 + value (backend.h's enum grad_mode) */
static __global__ void swish_backward_kernel(float *dx, const float *dy, const float *x, size_t n,
                                             int add)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        float xi = x[i];
        float s = sigmoid_dev(xi);
        dx[i] = (add ? dx[i] : 0.0f) + dy[i] * (s + xi * s * (1.0f - s));
    }
}

void cuda_swish_backward(struct backend *be, float *dx, const float *dy, const float *x, size_t n,
                         enum grad_mode mode)
{
    if (!n || !dx)
        return;
    swish_backward_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        dx, dy, x, n, mode == GRAD_ADD);
    KERNEL_CHECK();
}

static __global__ void add_kernel(float *y, const float *a, const float *b, size_t n)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        y[i] = a[i] + b[i];
    }
}

void cuda_add(struct backend *be, float *y, const float *a, const float *b, size_t n)
{
    if (!n)
        return;
    add_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(y, a, b, n);
    KERNEL_CHECK();
}

/* da (=/+=) dy and db (=/+=) dy, dy read once; either output may be NULL */
static __global__ void add_backward_kernel(float *da, float *db, const float *dy, size_t n,
                                           int add_a, int add_b)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        float g = dy[i];
        if (da)
            da[i] = (add_a ? da[i] : 0.0f) + g;
        if (db)
            db[i] = (add_b ? db[i] : 0.0f) + g;
    }
}

void cuda_add_backward(struct backend *be, float *da, float *db, const float *dy, size_t n,
                       enum grad_mode mode_a, enum grad_mode mode_b)
{
    if (!n || (!da && !db))
        return;
    add_backward_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        da, db, dy, n, mode_a == GRAD_ADD, mode_b == GRAD_ADD);
    KERNEL_CHECK();
}

/* y += alpha * x */
static __global__ void axpy_kernel(float *y, float alpha, const float *x, size_t n)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        y[i] += alpha * x[i];
    }
}

void cuda_axpy(struct backend *be, float *y, float alpha, const float *x, size_t n)
{
    if (!n)
        return;
    axpy_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(y, alpha, x, n);
    KERNEL_CHECK();
}

static __global__ void scale_kernel(float *x, float alpha, size_t n)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        x[i] *= alpha;
    }
}

void cuda_scale(struct backend *be, float *x, float alpha, size_t n)
{
    if (!n)
        return;
    scale_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(x, alpha, n);
    KERNEL_CHECK();
}

/* One thread per element of y (rows, ca+cb): a gather, so each output is written once. */
/* 32-bit indices where the tensor allows (cuda_common.h: a 64-bit division per element
 * costs more than the copy) */
template <typename IDX>
static __global__ void concat_forward_kernel(float *y, const float *a, const float *b, IDX n,
                                             int ca, int cb)
{
    IDX c = (IDX)ca + (IDX)cb;
    for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (IDX)blockDim.x * gridDim.x) {
        IDX r = i / c, j = i % c;
        y[i] = j < (IDX)ca ? a[r * ca + j] : b[r * cb + (j - ca)];
    }
}

void cuda_concat_forward(struct backend *be, float *y, const float *a, const float *b, size_t rows,
                         int ca, int cb)
{
    size_t n = rows * ((size_t)ca + cb);
    if (!n)
        return;
    unsigned grid = cuda_grid(n, CUDA_BLOCK);
    if (n < CUDA_IDX32_LIMIT)
        concat_forward_kernel<uint32_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(y, a, b, (uint32_t)n, ca, cb);
    else
        concat_forward_kernel<size_t><<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(y, a, b, n, ca, cb);
    KERNEL_CHECK();
}

/* d (=/+=) dy[:, off:off+cd] for d (rows, cd), n = rows * cd */
template <typename IDX>
static __global__ void concat_backward_kernel(float *d, const float *dy, IDX n, int c, int off,
                                              int cd, int add)
{
    for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (IDX)blockDim.x * gridDim.x) {
        IDX r = i / cd, j = i % cd;
        d[i] = (add ? d[i] : 0.0f) + dy[r * c + off + j];
    }
}

static void concat_backward_part(struct backend *be, float *d, const float *dy, size_t rows, int c,
                                 int off, int cd, enum grad_mode mode)
{
    size_t n = rows * (size_t)cd;
    unsigned grid = cuda_grid(n, CUDA_BLOCK);
    int add = mode == GRAD_ADD;
    if (n < CUDA_IDX32_LIMIT && rows * (size_t)c < CUDA_IDX32_LIMIT)
        concat_backward_kernel<uint32_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(d, dy, (uint32_t)n, c, off, cd, add);
    else
        concat_backward_kernel<size_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(d, dy, n, c, off, cd, add);
    KERNEL_CHECK();
}

void cuda_concat_backward(struct backend *be, float *da, float *db, const float *dy, size_t rows,
                          int ca, int cb, enum grad_mode mode_a, enum grad_mode mode_b)
{
    int c = ca + cb;
    if (da && rows && ca > 0)
        concat_backward_part(be, da, dy, rows, c, 0, ca, mode_a);
    if (db && rows && cb > 0)
        concat_backward_part(be, db, dy, rows, c, ca, cb, mode_b);
}

/* --- losses ----------------------------------------------------------------------------- */
#define LOSS_BLOCK 256
#define LOSS_MAX_BLOCKS 1024 /* partials in ctx->scratch */

/* part[block] = sum over this block's grid-stride elements of |d| or d*d, d in double */
static __global__ void loss_partial_kernel(double *part, const float *pred, const float *target,
                                           size_t n, int mse)
{
    __shared__ double shared32[32];
    double acc = 0;
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        double d = (double)pred[i] - (double)target[i];
        acc += mse ? d * d : fabs(d);
    }
    acc = cuda_block_sum(acc, shared32);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

/* out[0] = (float)(sum of part[0..nparts) / n); one block of LOSS_MAX_BLOCKS threads */
static __global__ void loss_final_kernel(float *out, const double *part, int nparts, size_t n)
{
    __shared__ double shared32[32];
    double acc = 0;
    for (int k = threadIdx.x; k < nparts; k += blockDim.x)
        acc += part[k];
    acc = cuda_block_sum(acc, shared32);
    if (threadIdx.x == 0)
        out[0] = (float)(acc / (double)n);
}

void cuda_loss_value(struct backend *be, float *out, const float *pred, const float *target,
                     size_t n, enum loss_kind kind)
{
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    unsigned blocks = cuda_grid(n ? n : 1, LOSS_BLOCK);
    if (blocks > LOSS_MAX_BLOCKS)
        blocks = LOSS_MAX_BLOCKS;
    loss_partial_kernel<<<blocks, LOSS_BLOCK, 0, ctx->stream>>>(ctx->scratch, pred, target, n,
                                                                kind == LOSS_MSE);
    KERNEL_CHECK();
    /* n == 0 gives 0/0 = NaN, as the CPU backend does */
    loss_final_kernel<<<1, LOSS_MAX_BLOCKS, 0, ctx->stream>>>(out, ctx->scratch, (int)blocks, n);
    KERNEL_CHECK();
}

/* dpred = scale * 2d (MSE) or scale * sign(d) (MAE, 0 at 0 as TensorFlow's abs gradient) */
static __global__ void loss_backward_kernel(float *dpred, const float *pred, const float *target,
                                            size_t n, float scale, int mse)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        float d = pred[i] - target[i];
        if (mse)
            dpred[i] = scale * 2.0f * d;
        else
            dpred[i] = scale * (float)((d > 0) - (d < 0));
    }
}

void cuda_loss_backward(struct backend *be, float *dpred, const float *pred, const float *target,
                        size_t n, float scale, enum loss_kind kind)
{
    if (!n)
        return;
    loss_backward_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        dpred, pred, target, n, scale, kind == LOSS_MSE);
    KERNEL_CHECK();
}
