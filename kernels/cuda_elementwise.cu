/* cuda_elementwise.cu: swish, add, axpy, scale, channel concat, the losses and the
 * convolutions' bias add with its epilogue (residual add, swish) on the GPU. The kernels on
 * activations are templates over their storage (cuda_common.h: float or bf16).
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
 * Each step is the expression of its own op (add_kernel, swish_forward_kernel), its result
 * rounded as that op's store would round it (T = bf16: the bits of the ops apart). */
template <typename T, typename IDX>
static __global__ void bias_epilogue_kernel(T *y, const float *bias, IDX n, int c,
                                            const T *residual, T *act)
{
    for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (IDX)blockDim.x * gridDim.x) {
        float v = act_round<T>(act_load(y, i) + bias[cuda_channel_of(i, c)]);
        if (residual)
            v = act_round<T>(v + act_load(residual, i));
        act_store(y, i, v);
        if (act)
            act_store(act, i, v * sigmoid_dev(v));
    }
}

template <typename T>
static void bias_epilogue_launch(struct backend *be, float *y, const float *bias, size_t n, int c,
                                 const float *res, float *act)
{
    unsigned grid = cuda_grid(n, CUDA_BLOCK);
    if (n < CUDA_IDX32_LIMIT)
        bias_epilogue_kernel<T, uint32_t><<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(
            (T *)y, bias, (uint32_t)n, c, (const T *)res, (T *)act);
    else
        bias_epilogue_kernel<T, size_t><<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(
            (T *)y, bias, n, c, (const T *)res, (T *)act);
}

void cuda_bias_epilogue(struct backend *be, float *y, const float *bias, size_t rows, int c,
                        const struct conv_epilogue *epi)
{
    size_t n = rows * (size_t)(c > 0 ? c : 0);
    if (!n)
        return;
    const float *res = epi ? epi->residual : NULL;
    float *act = epi ? epi->swish : NULL;
    CUDA_ACT_CALL(be, bias_epilogue_launch, be, y, bias, n, c, res, act);
    KERNEL_CHECK();
}

template <typename T> static __global__ void swish_forward_kernel(T *y, const T *x, size_t n)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        float xi = act_load(x, i);
        act_store(y, i, xi * sigmoid_dev(xi));
    }
}

template <typename T>
static void swish_forward_launch(struct backend *be, float *y, const float *x, size_t n)
{
    swish_forward_kernel<T>
        <<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>((T *)y, (const T *)x, n);
}

void cuda_swish_forward(struct backend *be, float *y, const float *x, size_t n)
{
    if (!n)
        return;
    CUDA_ACT_CALL(be, swish_forward_launch, be, y, x, n);
    KERNEL_CHECK();
}

/* dx (=/+=) dy * (s + x*s*(1-s)); written as 0 + value (backend.h's enum grad_mode) */
template <typename T>
static __global__ void swish_backward_kernel(T *dx, const T *dy, const T *x, size_t n, int add)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        float xi = act_load(x, i);
        float s = sigmoid_dev(xi);
        act_store(dx, i,
                  (add ? act_load(dx, i) : 0.0f) + act_load(dy, i) * (s + xi * s * (1.0f - s)));
    }
}

template <typename T>
static void swish_backward_launch(struct backend *be, float *dx, const float *dy, const float *x,
                                  size_t n, int add)
{
    swish_backward_kernel<T><<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        (T *)dx, (const T *)dy, (const T *)x, n, add);
}

void cuda_swish_backward(struct backend *be, float *dx, const float *dy, const float *x, size_t n,
                         enum grad_mode mode)
{
    if (!n || !dx)
        return;
    CUDA_ACT_CALL(be, swish_backward_launch, be, dx, dy, x, n, mode == GRAD_ADD);
    KERNEL_CHECK();
}

template <typename T> static __global__ void add_kernel(T *y, const T *a, const T *b, size_t n)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        act_store(y, i, act_load(a, i) + act_load(b, i));
    }
}

template <typename T>
static void add_launch(struct backend *be, float *y, const float *a, const float *b, size_t n)
{
    add_kernel<T><<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        (T *)y, (const T *)a, (const T *)b, n);
}

void cuda_add(struct backend *be, float *y, const float *a, const float *b, size_t n)
{
    if (!n)
        return;
    CUDA_ACT_CALL(be, add_launch, be, y, a, b, n);
    KERNEL_CHECK();
}

/* da (=/+=) dy and db (=/+=) dy, dy read once; either output may be NULL */
template <typename T>
static __global__ void add_backward_kernel(T *da, T *db, const T *dy, size_t n, int add_a,
                                           int add_b)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        float g = act_load(dy, i);
        if (da)
            act_store(da, i, (add_a ? act_load(da, i) : 0.0f) + g);
        if (db)
            act_store(db, i, (add_b ? act_load(db, i) : 0.0f) + g);
    }
}

template <typename T>
static void add_backward_launch(struct backend *be, float *da, float *db, const float *dy, size_t n,
                                int add_a, int add_b)
{
    add_backward_kernel<T><<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        (T *)da, (T *)db, (const T *)dy, n, add_a, add_b);
}

void cuda_add_backward(struct backend *be, float *da, float *db, const float *dy, size_t n,
                       enum grad_mode mode_a, enum grad_mode mode_b)
{
    if (!n || (!da && !db))
        return;
    CUDA_ACT_CALL(be, add_backward_launch, be, da, db, dy, n, mode_a == GRAD_ADD,
                  mode_b == GRAD_ADD);
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
template <typename T, typename IDX>
static __global__ void concat_forward_kernel(T *y, const T *a, const T *b, IDX n, int ca, int cb)
{
    IDX c = (IDX)ca + (IDX)cb;
    for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (IDX)blockDim.x * gridDim.x) {
        IDX r = i / c, j = i % c;
        y[i] = j < (IDX)ca ? a[r * ca + j] : b[r * cb + (j - ca)]; /* a copy: no rounding */
    }
}

template <typename T>
static void concat_forward_launch(struct backend *be, float *y, const float *a, const float *b,
                                  size_t n, int ca, int cb)
{
    unsigned grid = cuda_grid(n, CUDA_BLOCK);
    if (n < CUDA_IDX32_LIMIT)
        concat_forward_kernel<T, uint32_t><<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(
            (T *)y, (const T *)a, (const T *)b, (uint32_t)n, ca, cb);
    else
        concat_forward_kernel<T, size_t><<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(
            (T *)y, (const T *)a, (const T *)b, n, ca, cb);
}

void cuda_concat_forward(struct backend *be, float *y, const float *a, const float *b, size_t rows,
                         int ca, int cb)
{
    size_t n = rows * ((size_t)ca + cb);
    if (!n)
        return;
    CUDA_ACT_CALL(be, concat_forward_launch, be, y, a, b, n, ca, cb);
    KERNEL_CHECK();
}

/* d (=/+=) dy[:, off:off+cd] for d (rows, cd), n = rows * cd */
template <typename T, typename IDX>
static __global__ void concat_backward_kernel(T *d, const T *dy, IDX n, int c, int off, int cd,
                                              int add)
{
    for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (IDX)blockDim.x * gridDim.x) {
        IDX r = i / cd, j = i % cd;
        act_store(d, i, (add ? act_load(d, i) : 0.0f) + act_load(dy, r * c + off + j));
    }
}

template <typename T>
static void concat_backward_part(struct backend *be, float *d, const float *dy, size_t rows, int c,
                                 int off, int cd, enum grad_mode mode)
{
    size_t n = rows * (size_t)cd;
    unsigned grid = cuda_grid(n, CUDA_BLOCK);
    int add = mode == GRAD_ADD;
    if (n < CUDA_IDX32_LIMIT && rows * (size_t)c < CUDA_IDX32_LIMIT)
        concat_backward_kernel<T, uint32_t><<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>(
            (T *)d, (const T *)dy, (uint32_t)n, c, off, cd, add);
    else
        concat_backward_kernel<T, size_t>
            <<<grid, CUDA_BLOCK, 0, cuda_stream(be)>>>((T *)d, (const T *)dy, n, c, off, cd, add);
    KERNEL_CHECK();
}

void cuda_concat_backward(struct backend *be, float *da, float *db, const float *dy, size_t rows,
                          int ca, int cb, enum grad_mode mode_a, enum grad_mode mode_b)
{
    int c = ca + cb;
    if (da && rows && ca > 0)
        CUDA_ACT_CALL(be, concat_backward_part, be, da, dy, rows, c, 0, ca, mode_a);
    if (db && rows && cb > 0)
        CUDA_ACT_CALL(be, concat_backward_part, be, db, dy, rows, c, ca, cb, mode_b);
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
