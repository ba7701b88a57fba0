/* cuda_norm.cu: BatchNormalization without center/scale on the GPU, split as backend.h
 * says into per-channel sums and an apply step (synchronized BatchNorm all-reduces the sums
 * in between).
 *
 * The sums accumulate in double, as kernels/cpu_norm.c does, in two deterministic passes:
 * blocks of 32 channels x 8 row lanes each sum one chunk of rows into ctx->scratch, then one
 * thread per channel adds the chunks in order. No atomics, so a step gives the same bits
 * every time (the chunks meet in one warp per sum, in a fixed butterfly). The per-channel
 * math of the apply steps repeats the CPU's expressions (double where it uses double), so
 * mean, invstd and the moving statistics match it exactly.
 *
 * Launches per layer: forward 3 (partial sums, final sums, one apply kernel that also
 * derives mean/invstd and the moving statistics), backward 3 (partial, final, apply); the
 * all-reduce of synchronized BatchNorm sits between the final sums and the apply. */
#include "cuda_common.h"

#define RED_CH 32        /* channels per block (threadIdx.x) */
#define RED_LANES 8      /* row lanes per block (threadIdx.y) */
#define RED_MIN_ROWS 256 /* rows per chunk at least, so that small tensors use few chunks */

/* part[chunk] (2c) = [sum a, sum a*b] over this chunk's rows, b = a (forward: sum of
 * squares) or b = (x - mean)*invstd from saved (backward: sum dy*xhat). */
template <bool BACKWARD>
static __global__ void channel_sums_partial_kernel(double *part, const float *a, const float *x,
                                                   const float *saved, size_t rows, int c,
                                                   size_t rows_per_chunk)
{
    __shared__ double s1_sh[RED_LANES][RED_CH];
    __shared__ double s2_sh[RED_LANES][RED_CH];
    int j = blockIdx.x * RED_CH + threadIdx.x;
    size_t chunk = blockIdx.y;
    size_t begin = chunk * rows_per_chunk;
    size_t end = begin + rows_per_chunk < rows ? begin + rows_per_chunk : rows;
    double s1 = 0, s2 = 0;
    if (j < c) {
        double mean = 0, invstd = 0;
        if (BACKWARD) {
            mean = saved[j];
            invstd = saved[c + j];
        }
        for (size_t r = begin + threadIdx.y; r < end; r += RED_LANES) {
            double v = a[r * c + j];
            double other = BACKWARD ? ((double)x[r * c + j] - mean) * invstd : v;
            s1 += v;
            s2 += v * other;
        }
    }
    s1_sh[threadIdx.y][threadIdx.x] = s1;
    s2_sh[threadIdx.y][threadIdx.x] = s2;
    __syncthreads();
    if (threadIdx.y == 0 && j < c) {
        double t1 = 0, t2 = 0;
        for (int l = 0; l < RED_LANES; l++) {
            t1 += s1_sh[l][threadIdx.x];
            t2 += s2_sh[l][threadIdx.x];
        }
        part[chunk * 2 * c + j] = t1;
        part[chunk * 2 * c + c + j] = t2;
    }
}

/* out[k] = (float) sum over chunks of part[chunk][k], k < 2c. One warp per k: lane l adds
 * chunks l, l+32, ... in order, then the 32 lane sums meet in a fixed butterfly, so the
 * result is the same bits every time (no atomics). A warp instead of one thread per k: the
 * chunks' loads go out together, not one dependent load after another (the single-thread
 * loop took 11 us a call at b34fd08, longer than the partial pass). */
static __global__ void channel_sums_final_kernel(float *out, const double *part, int chunks, int c)
{
    size_t k = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x % 32;
    double acc = 0;
    if (k < 2 * (size_t)c)
        for (int t = lane; t < chunks; t += 32)
            acc += part[(size_t)t * 2 * c + k];
    for (int off = 16; off > 0; off >>= 1)
        acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (k < 2 * (size_t)c && lane == 0)
        out[k] = (float)acc;
}

static void channel_sums(struct backend *be, float *out, const float *a, const float *x,
                         const float *saved, size_t rows, int c)
{
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    if (c <= 0)
        return;
    char why[256];
    if (!cuda_norm_supported(ctx, BACKEND_OP_bn_stats, c, why, sizeof why))
        DDIM_FATAL("cuda batch norm: %s", why); /* supports_op refuses it first */
    size_t max_chunks = ctx->scratch_doubles / (2 * (size_t)c);
    if (max_chunks > CUDA_RED_MAX_CHUNKS)
        max_chunks = CUDA_RED_MAX_CHUNKS;
    size_t chunks = (rows + RED_MIN_ROWS - 1) / RED_MIN_ROWS;
    if (chunks > max_chunks)
        chunks = max_chunks;
    if (chunks < 1)
        chunks = 1; /* rows == 0: sums of nothing are 0 */
    size_t rows_per_chunk = (rows + chunks - 1) / chunks;
    dim3 grid((unsigned)((c + RED_CH - 1) / RED_CH), (unsigned)chunks);
    dim3 block(RED_CH, RED_LANES);
    if (saved)
        channel_sums_partial_kernel<true>
            <<<grid, block, 0, ctx->stream>>>(ctx->scratch, a, x, saved, rows, c, rows_per_chunk);
    else
        channel_sums_partial_kernel<false>
            <<<grid, block, 0, ctx->stream>>>(ctx->scratch, a, x, saved, rows, c, rows_per_chunk);
    KERNEL_CHECK();
    channel_sums_final_kernel<<<cuda_grid(2 * (size_t)c * 32, CUDA_BLOCK), CUDA_BLOCK, 0,
                                ctx->stream>>>(out, ctx->scratch, (int)chunks, c);
    KERNEL_CHECK();
}

int cuda_norm_supported(const struct cuda_ctx *ctx, enum backend_op_id op, int c, char *why,
                        size_t whylen)
{
    /* the channel sums need one chunk of 2c partial sums in the scratch; backward_apply's wide
     * case keeps 4c coefficients there */
    size_t need = 2 * (size_t)(c > 0 ? c : 0) * sizeof(double);
    if (op == BACKEND_OP_bn_backward_apply && 4 * (size_t)(c > 0 ? c : 0) * sizeof(float) > need)
        need = 4 * (size_t)c * sizeof(float);
    if (need <= ctx->scratch_doubles * sizeof(double))
        return 1;
    util_error(why, whylen, "%d channels exceed the reduction scratch (%zu doubles)", c,
               ctx->scratch_doubles);
    return 0;
}

void cuda_bn_stats(struct backend *be, float *stats, const float *x, size_t rows, int c)
{
    channel_sums(be, stats, x, NULL, NULL, rows, c);
}

void cuda_bn_backward_stats(struct backend *be, float *bstats, const float *dy, const float *x,
                            const float *saved, size_t rows, int c)
{
    channel_sums(be, bstats, dy, x, saved, rows, c);
}

/* Per-channel coefficients live in dynamic shared memory, computed by every block at its
 * start (c values, a few flops each) instead of in a separate launch or per element. Wider
 * tensors than shared memory holds take them from global memory, computed by a separate
 * one-thread-per-channel kernel (the same device function, so the same bits). */
#define BN_MAX_CHANNELS 3072 /* 4 floats each: 48 KiB, the most without opting in */

/* Channel j's mean and invstd from the global stats into coef (2c), in the CPU's precision
 * (double for mean/var/invstd, float for the moving averages); with `owner`, also saved and
 * the moving statistics. */
static __device__ inline void bn_forward_channel(int j, float *coef, int owner, float *saved,
                                                 float *moving_mean, float *moving_var,
                                                 const float *stats, double count, int c,
                                                 float momentum, float eps)
{
    double m = stats[j] / count;
    double var = stats[c + j] / count - m * m;
    if (var < 0)
        var = 0; /* rounding in E[x^2] - E[x]^2 */
    float mean = (float)m, invstd = (float)(1.0 / sqrt(var + eps));
    coef[j] = mean;
    coef[c + j] = invstd;
    if (owner) {
        double bessel = count > 1 ? count / (count - 1) : 1.0;
        saved[j] = mean;
        saved[c + j] = invstd;
        moving_mean[j] = momentum * moving_mean[j] + (1.0f - momentum) * (float)m;
        moving_var[j] = momentum * moving_var[j] + (1.0f - momentum) * (float)(var * bessel);
    }
}

/* The wide case: one thread per channel writes saved (which then serves as coef) and the
 * moving statistics. */
static __global__ void bn_forward_channel_kernel(float *saved, float *moving_mean,
                                                 float *moving_var, const float *stats,
                                                 double count, int c, float momentum, float eps)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < c)
        bn_forward_channel(j, saved, 1, saved, moving_mean, moving_var, stats, count, c, momentum,
                           eps);
}

/* y = (x - mean[c]) * invstd[c]. SHARED: each block first derives the coefficients into
 * shared memory (block 0 also writes saved and the moving statistics); else they are
 * read from saved, written by bn_forward_channel_kernel before. */
template <typename IDX, bool SHARED>
static __global__ void bn_forward_train_kernel(float *y, float *saved, float *moving_mean,
                                               float *moving_var, const float *x,
                                               const float *stats, double count, IDX n, int c,
                                               float momentum, float eps)
{
    extern __shared__ float bn_coef_sh[]; /* (2c): mean, invstd */
    const float *coef = saved;
    if (SHARED) {
        for (int j = threadIdx.x; j < c; j += blockDim.x)
            bn_forward_channel(j, bn_coef_sh, blockIdx.x == 0, saved, moving_mean, moving_var,
                               stats, count, c, momentum, eps);
        __syncthreads();
        coef = bn_coef_sh;
    }
    for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (IDX)blockDim.x * gridDim.x) {
        int j = cuda_channel_of(i, c);
        y[i] = (x[i] - coef[j]) * coef[c + j];
    }
}

template <bool SHARED>
static void bn_forward_train_launch(cudaStream_t st, float *y, float *saved, float *moving_mean,
                                    float *moving_var, const float *x, const float *stats,
                                    double count, size_t n, int c, float momentum, float eps)
{
    size_t shmem = SHARED ? 2 * (size_t)c * sizeof(float) : 0;
    unsigned grid = cuda_grid(n ? n : 1, CUDA_BLOCK); /* n == 0: block 0 still updates */
    if (n < CUDA_IDX32_LIMIT)
        bn_forward_train_kernel<uint32_t, SHARED><<<grid, CUDA_BLOCK, shmem, st>>>(
            y, saved, moving_mean, moving_var, x, stats, count, (uint32_t)n, c, momentum, eps);
    else
        bn_forward_train_kernel<size_t, SHARED><<<grid, CUDA_BLOCK, shmem, st>>>(
            y, saved, moving_mean, moving_var, x, stats, count, n, c, momentum, eps);
    KERNEL_CHECK();
}

void cuda_bn_forward_train(struct backend *be, float *y, float *saved, float *moving_mean,
                           float *moving_var, const float *x, const float *stats, double count,
                           size_t rows, int c, float momentum, float eps)
{
    if (c <= 0)
        return;
    cudaStream_t st = cuda_stream(be);
    size_t n = rows * (size_t)c;
    if (c <= BN_MAX_CHANNELS) {
        bn_forward_train_launch<true>(st, y, saved, moving_mean, moving_var, x, stats, count, n, c,
                                      momentum, eps);
        return;
    }
    bn_forward_channel_kernel<<<cuda_grid((size_t)c, CUDA_BLOCK), CUDA_BLOCK, 0, st>>>(
        saved, moving_mean, moving_var, stats, count, c, momentum, eps);
    KERNEL_CHECK();
    if (n)
        bn_forward_train_launch<false>(st, y, saved, moving_mean, moving_var, x, stats, count, n, c,
                                       momentum, eps);
}

/* y = (x - moving_mean) * (1 / sqrt(moving_var + eps)), all float as on the CPU */
static __global__ void bn_infer_kernel(float *y, const float *x, const float *moving_mean,
                                       const float *moving_var, size_t rows, int c, float eps)
{
    CUDA_GRID_STRIDE_LOOP(i, rows * (size_t)c)
    {
        int j = (int)(i % c);
        float invstd = 1.0f / sqrtf(moving_var[j] + eps);
        y[i] = (x[i] - moving_mean[j]) * invstd;
    }
}

void cuda_bn_forward_infer(struct backend *be, float *y, const float *x, const float *moving_mean,
                           const float *moving_var, size_t rows, int c, float eps)
{
    size_t n = rows * (size_t)(c > 0 ? c : 0);
    if (!n)
        return;
    bn_infer_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        y, x, moving_mean, moving_var, rows, c, eps);
    KERNEL_CHECK();
}

/* Channel j's backward coefficients into coef (4c): mean, invstd, mean_dy, mean_dy_xhat
 * (the double divisions once per channel, not per element). */
static __device__ inline void bn_backward_channel(int j, float *coef, const float *saved,
                                                  const float *bstats, double count, int c)
{
    coef[j] = saved[j];
    coef[c + j] = saved[c + j];
    coef[2 * c + j] = (float)(bstats[j] / count);
    coef[3 * c + j] = (float)(bstats[c + j] / count);
}

/* The wide case: the coefficients into global memory (the reduction scratch). */
static __global__ void bn_backward_channel_kernel(float *coef, const float *saved,
                                                  const float *bstats, double count, int c)
{
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j < c)
        bn_backward_channel(j, coef, saved, bstats, count, c);
}

/* dx (=/+=) invstd * (dy - mean_dy - xhat*mean_dy_xhat), means from the global bstats.
 * SHARED: each block first derives the coefficients into shared memory; else coef_global
 * holds them. */
template <typename IDX, bool SHARED>
static __global__ void bn_backward_apply_kernel(float *dx, const float *dy, const float *x,
                                                const float *saved, const float *bstats,
                                                const float *coef_global, double count, IDX n,
                                                int c, int add)
{
    extern __shared__ float bn_coef_sh[]; /* (4c) */
    const float *coef = coef_global;
    if (SHARED) {
        for (int j = threadIdx.x; j < c; j += blockDim.x)
            bn_backward_channel(j, bn_coef_sh, saved, bstats, count, c);
        __syncthreads();
        coef = bn_coef_sh;
    }
    for (IDX i = (IDX)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (IDX)blockDim.x * gridDim.x) {
        int j = cuda_channel_of(i, c);
        float invstd = coef[c + j];
        float xhat = (x[i] - coef[j]) * invstd;
        dx[i] = (add ? dx[i] : 0.0f) + invstd * (dy[i] - coef[2 * c + j] - xhat * coef[3 * c + j]);
    }
}

template <bool SHARED>
static void bn_backward_apply_launch(cudaStream_t st, float *dx, const float *dy, const float *x,
                                     const float *saved, const float *bstats, const float *coef,
                                     double count, size_t n, int c, int add)
{
    unsigned grid = cuda_grid(n, CUDA_BLOCK);
    size_t shmem = SHARED ? 4 * (size_t)c * sizeof(float) : 0;
    if (n < CUDA_IDX32_LIMIT)
        bn_backward_apply_kernel<uint32_t, SHARED><<<grid, CUDA_BLOCK, shmem, st>>>(
            dx, dy, x, saved, bstats, coef, count, (uint32_t)n, c, add);
    else
        bn_backward_apply_kernel<size_t, SHARED>
            <<<grid, CUDA_BLOCK, shmem, st>>>(dx, dy, x, saved, bstats, coef, count, n, c, add);
    KERNEL_CHECK();
}

void cuda_bn_backward_apply(struct backend *be, float *dx, const float *dy, const float *x,
                            const float *saved, const float *bstats, double count, size_t rows,
                            int c, enum grad_mode mode)
{
    size_t n = rows * (size_t)(c > 0 ? c : 0);
    if (!n || !dx)
        return;
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    int add = mode == GRAD_ADD;
    if (c <= BN_MAX_CHANNELS) {
        bn_backward_apply_launch<true>(ctx->stream, dx, dy, x, saved, bstats, NULL, count, n, c,
                                       add);
        return;
    }
    /* the scratch's partial sums are spent (bstats is final): its room holds 4c floats */
    char why[256];
    if (!cuda_norm_supported(ctx, BACKEND_OP_bn_backward_apply, c, why, sizeof why))
        DDIM_FATAL("cuda batch norm: %s", why); /* supports_op refuses it first */
    float *coef = (float *)ctx->scratch;
    bn_backward_channel_kernel<<<cuda_grid((size_t)c, CUDA_BLOCK), CUDA_BLOCK, 0, ctx->stream>>>(
        coef, saved, bstats, count, c);
    KERNEL_CHECK();
    bn_backward_apply_launch<false>(ctx->stream, dx, dy, x, saved, bstats, coef, count, n, c, add);
}
