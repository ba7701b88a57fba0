/* cuda_common.h: what every file of the CUDA backend shares: the check macros, launch
 * helpers, the backend's state (struct cuda_ctx) and the op functions that
 * cuda_backend.cu puts into the op table. Internal to kernels/: everything outside goes
 * through struct backend.
 *
 * Rules every op follows: it launches on ctx->stream only, never synchronizes the host,
 * never allocates (reductions use ctx->scratch), and checks every launch with
 * KERNEL_CHECK(). */
#ifndef DDIM_CUDA_COMMON_H
#define DDIM_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <nccl.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h" /* C linkage through its own extern "C" guards */
#include "util.h"

/* --- check macros: print rank, host, file:line (util_fatal_at), the failing expression
 * and the library's error string, then exit --------------------------------------------- */
#define CUDA_CHECK(expr)                                                                           \
    do {                                                                                           \
        cudaError_t cuda_check_e_ = (expr);                                                        \
        if (cuda_check_e_ != cudaSuccess)                                                          \
            DDIM_FATAL("CUDA error %d %s (%s) in %s", (int)cuda_check_e_,                          \
                       cudaGetErrorName(cuda_check_e_), cudaGetErrorString(cuda_check_e_), #expr); \
    } while (0)

#define CUBLAS_CHECK(expr)                                                                         \
    do {                                                                                           \
        cublasStatus_t cublas_check_s_ = (expr);                                                   \
        if (cublas_check_s_ != CUBLAS_STATUS_SUCCESS)                                              \
            DDIM_FATAL("cuBLAS error %d %s in %s", (int)cublas_check_s_,                           \
                       cublasGetStatusString(cublas_check_s_), #expr);                             \
    } while (0)

#define CUDNN_CHECK(expr)                                                                          \
    do {                                                                                           \
        cudnnStatus_t cudnn_check_s_ = (expr);                                                     \
        if (cudnn_check_s_ != CUDNN_STATUS_SUCCESS)                                                \
            DDIM_FATAL("cuDNN error %d %s in %s", (int)cudnn_check_s_,                             \
                       cudnnGetErrorString(cudnn_check_s_), #expr);                                \
    } while (0)

#define NCCL_CHECK(expr)                                                                           \
    do {                                                                                           \
        ncclResult_t nccl_check_r_ = (expr);                                                       \
        if (nccl_check_r_ != ncclSuccess)                                                          \
            DDIM_FATAL("NCCL error %d %s in %s", (int)nccl_check_r_,                               \
                       ncclGetErrorString(nccl_check_r_), #expr);                                  \
    } while (0)

/* After every kernel launch. Configure with -DDDIM_DEBUG_SYNC=ON to also wait for the
 * kernel, so that a fault is reported at the launch that caused it (not usable while a
 * CUDA graph is being captured). */
#if defined(DDIM_DEBUG_SYNC) && DDIM_DEBUG_SYNC
#define KERNEL_CHECK()                                                                             \
    do {                                                                                           \
        CUDA_CHECK(cudaGetLastError());                                                            \
        CUDA_CHECK(cudaDeviceSynchronize());                                                       \
    } while (0)
#else
#define KERNEL_CHECK() CUDA_CHECK(cudaGetLastError())
#endif

/* --- state -------------------------------------------------------------------------- */
struct cuda_conv_cache; /* cuda_conv.cu: cuDNN plans per conv shape, workspace, kernel copies */
struct cuda_mem_track;  /* cuda_timing.cu: live device allocations, bytes in use and peak */

struct cuda_ctx {
    int device;
    cudaStream_t stream; /* every op of this backend runs on it, in order */
    int num_sms;
    double *scratch; /* (CUDA_SCRATCH_DOUBLES,) reduction partials, device memory */
    size_t scratch_doubles;
    cudnnHandle_t cudnn;          /* bound to stream */
    int cudnn_no_tf32;            /* DDIM_CUDNN_NO_TF32=1 at create: FMA math, no TF32 */
    struct cuda_conv_cache *conv; /* grown on each conv shape's first call only */
    struct cuda_mem_track *mem;   /* created on the first allocation */
    /* Bumped whenever a buffer that ops pass to their launches is replaced (the conv cache
     * growing for a new shape): a graph captured before that is stale (cuda_timing.cu). */
    unsigned long graph_epoch;
};

/* Reduction scratch: enough partial sums for CUDA_RED_MAX_CHUNKS row chunks of up to
 * CUDA_SCRATCH_DOUBLES / (2 * CUDA_RED_MAX_CHUNKS) channels; wider tensors use fewer
 * chunks (see cuda_norm.cu). 1024 chunks: a batch-64 tensor of 32 channels (262144 rows)
 * spreads over 1024 blocks, enough resident warps to hide the loads' latency (256 blocks
 * left most of an H200's 132 SMs a quarter full). */
#define CUDA_SCRATCH_DOUBLES ((size_t)1 << 21)
#define CUDA_RED_MAX_CHUNKS 1024

static inline struct cuda_ctx *cuda_ctx_of(struct backend *be)
{
    return (struct cuda_ctx *)be->ctx;
}
static inline cudaStream_t cuda_stream(struct backend *be)
{
    return cuda_ctx_of(be)->stream;
}

/* --- launch helpers ------------------------------------------------------------------ */
#define CUDA_BLOCK 256 /* threads per block of the elementwise kernels */

/* Blocks for n elements at `block` threads each, one element per thread, capped: the
 * kernels use grid-stride loops, so a capped grid still covers every element. n > 0. */
static inline unsigned cuda_grid(size_t n, unsigned block)
{
    size_t g = (n + block - 1) / block;
    const size_t cap = (size_t)1 << 20;
    if (g > cap)
        g = cap;
    return (unsigned)(g ? g : 1);
}

/* for (size_t i = first index of this thread; i < n; i += all threads of the grid) */
#define CUDA_GRID_STRIDE_LOOP(i, n)                                                                \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)blockDim.x * gridDim.x)

/* Sum of v over a block of blockDim.x threads (a multiple of 32, at most 1024); the result
 * is valid in thread 0. Uses 32 doubles of shared memory passed in by the caller. */
static __device__ inline double cuda_block_sum(double v, double *shared32)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, off);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0)
        shared32[warp] = v;
    __syncthreads();
    int warps = blockDim.x / 32;
    v = (threadIdx.x < (unsigned)warps) ? shared32[threadIdx.x] : 0.0;
    if (warp == 0)
        for (int off = 16; off > 0; off >>= 1)
            v += __shfl_down_sync(0xffffffffu, v, off);
    return v;
}

/* Element i of a (rows, c) tensor belongs to channel i % c. IDX uint32_t where the tensor
 * allows (n < CUDA_IDX32_LIMIT: every U-Net tensor): a 64-bit modulo per element costs more
 * than the load. Below the limit i + stride (at most 2^28 threads) cannot wrap. */
#define CUDA_IDX32_LIMIT ((size_t)1 << 31)
template <typename IDX> static __device__ inline int cuda_channel_of(IDX i, int c)
{
    return (int)(i % (IDX)c);
}

/* --- the ops (same signatures and semantics as backend.h) ----------------------------- */
/* memory: cuda_backend.cu */
void cuda_fill(struct backend *be, float *x, float value, size_t n);

/* timing events and the memory figure: cuda_timing.cu. A file that calls cudaMalloc/cudaFree
 * itself reports them through note_alloc/note_free, so that memory_peak_bytes counts them. */
void cuda_timing_fill_table(struct backend *be);
void cuda_mem_note_alloc(struct cuda_ctx *ctx, void *p, size_t bytes);
void cuda_mem_note_free(struct cuda_ctx *ctx, void *p);
void cuda_mem_track_destroy(struct cuda_ctx *ctx);

/* convolution with cuDNN: cuda_conv.cu. init checks the cuDNN version, creates the handle on
 * ctx->stream and reads DDIM_CUDNN_NO_TF32; it returns 0, or -1 with the reason in err (it
 * never dies). destroy releases what init and the ops created. */
int cuda_conv_init(struct cuda_ctx *ctx, char *err, size_t errlen);
void cuda_conv_destroy(struct cuda_ctx *ctx);
void cuda_conv2d_forward(struct backend *be, float *y, const float *x, const float *w,
                         const float *bias, const struct conv_shape *s);
void cuda_conv2d_backward(struct backend *be, float *dx, float *dw, float *dbias, const float *dy,
                          const float *x, const float *w, const struct conv_shape *s);

/* BatchNorm: cuda_norm.cu */
void cuda_bn_stats(struct backend *be, float *stats, const float *x, size_t rows, int c);
void cuda_bn_forward_train(struct backend *be, float *y, float *saved, float *moving_mean,
                           float *moving_var, const float *x, const float *stats, double count,
                           size_t rows, int c, float momentum, float eps);
void cuda_bn_forward_infer(struct backend *be, float *y, const float *x, const float *moving_mean,
                           const float *moving_var, size_t rows, int c, float eps);
void cuda_bn_backward_stats(struct backend *be, float *bstats, const float *dy, const float *x,
                            const float *saved, size_t rows, int c);
void cuda_bn_backward_apply(struct backend *be, float *dx, const float *dy, const float *x,
                            const float *saved, const float *bstats, double count, size_t rows,
                            int c);

/* elementwise, layout, loss: cuda_elementwise.cu. cuda_bias_add (not an op of the table):
 * y (rows, c) += bias (c), the convolutions' bias (cuda_conv.cu). */
void cuda_bias_add(struct backend *be, float *y, const float *bias, size_t rows, int c);
void cuda_swish_forward(struct backend *be, float *y, const float *x, size_t n);
void cuda_swish_backward(struct backend *be, float *dx, const float *dy, const float *x, size_t n);
void cuda_add(struct backend *be, float *y, const float *a, const float *b, size_t n);
void cuda_axpy(struct backend *be, float *y, float alpha, const float *x, size_t n);
void cuda_scale(struct backend *be, float *x, float alpha, size_t n);
void cuda_concat_forward(struct backend *be, float *y, const float *a, const float *b, size_t rows,
                         int ca, int cb);
void cuda_concat_backward(struct backend *be, float *da, float *db, const float *dy, size_t rows,
                          int ca, int cb);
void cuda_loss_value(struct backend *be, float *out, const float *pred, const float *target,
                     size_t n, enum loss_kind kind);
void cuda_loss_backward(struct backend *be, float *dpred, const float *pred, const float *target,
                        size_t n, float scale, enum loss_kind kind);

/* resampling and the embedding: cuda_resample.cu */
void cuda_avgpool2_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                           int c);
void cuda_avgpool2_backward(struct backend *be, float *dx, const float *dy, int n, int h, int w,
                            int c);
void cuda_upsample2_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                            int c);
void cuda_upsample2_backward(struct backend *be, float *dx, const float *dy, int n, int h, int w,
                             int c);
void cuda_sinusoidal_embedding(struct backend *be, float *e, const float *v, int n, int h, int w,
                               int dims, float fmin, float fmax);

/* inference-only ops for InceptionV3: cuda_infer.cu */
void cuda_relu_forward(struct backend *be, float *y, const float *x, size_t n);
void cuda_pool_forward(struct backend *be, float *y, const float *x, const struct pool_shape *s);
void cuda_global_avgpool_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                                 int c);
void cuda_resize_bilinear_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                                  int c, int ho, int wo);

/* diffusion, normalization, random numbers: cuda_diffusion.cu */
void cuda_diffusion_schedule(struct backend *be, float *noise_rates, float *signal_rates,
                             const float *times, int n, float min_signal_rate,
                             float max_signal_rate);
void cuda_mix(struct backend *be, float *y, const float *sa, const float *a, const float *sb,
              const float *b, int n, size_t per);
void cuda_pred_images(struct backend *be, float *y, const float *noisy, const float *pred_noises,
                      const float *noise_rates, const float *signal_rates, int n, size_t per);
void cuda_square(struct backend *be, float *v, const float *x, size_t n);
void cuda_normalize(struct backend *be, float *y, const float *x, const float *mean,
                    const float *var, size_t rows, int c);
void cuda_denormalize(struct backend *be, float *y, const float *x, const float *mean,
                      const float *var, size_t rows, int c);
void cuda_fill_normal(struct backend *be, float *x, int n, size_t per, uint64_t seed, uint32_t step,
                      uint32_t purpose, uint32_t first);
void cuda_fill_uniform(struct backend *be, float *x, int n, size_t per, uint64_t seed,
                       uint32_t step, uint32_t purpose, uint32_t first);

/* the resident training set's gather: cuda_data.cu */
void cuda_gather_images(struct backend *be, float *out, const uint8_t *images, const int32_t *idx,
                        int n, size_t per);

/* optimizer: cuda_optim.cu */
void cuda_adamw_update(struct backend *be, float *w, const float *g, float *m, float *v, size_t n,
                       float lr, float beta1, float beta2, float eps, float wd, int step);
void cuda_ema_update(struct backend *be, float *ema, const float *w, size_t n, float decay);

#endif
