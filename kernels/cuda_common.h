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

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
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

#define CUDNN_CHECK(expr)                                                                          \
    do {                                                                                           \
        cudnnStatus_t cudnn_check_s_ = (expr);                                                     \
        if (cudnn_check_s_ != CUDNN_STATUS_SUCCESS)                                                \
            DDIM_FATAL("cuDNN error %d %s in %s", (int)cudnn_check_s_,                             \
                       cudnnGetErrorString(cudnn_check_s_), #expr);                                \
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
struct cuda_conv_cache; /* cuda_conv_plan.h: cuDNN plans per conv shape, workspace, kernel copies */
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

/* --- activation storage (backend.h's enum precision) ----------------------------------
 * A kernel that reads or writes activations is a template over their storage type T: float,
 * or bf16_t under PRECISION_BF16; one source serves both. act_load widens exactly, act_store
 * rounds to nearest even (__float2bfloat16_rn, as src/base/bf16.h does on the host), and
 * act_round<T>(v) is the value a store of v keeps. The arithmetic between them is the float
 * kernels' own, so a bf16 result is the float32 result rounded where it is stored: the CPU
 * backend's emulation computes the same. */
typedef __nv_bfloat16 bf16_t;

static __device__ inline float act_load(const float *p, size_t i)
{
    return p[i];
}
static __device__ inline float act_load(const bf16_t *p, size_t i)
{
    return __bfloat162float(p[i]);
}
static __device__ inline void act_store(float *p, size_t i, float v)
{
    p[i] = v;
}
static __device__ inline void act_store(bf16_t *p, size_t i, float v)
{
    p[i] = __float2bfloat16_rn(v);
}
template <typename T> static __device__ inline float act_round(float v)
{
    return sizeof(T) == sizeof(float) ? v : __bfloat162float(__float2bfloat16_rn(v));
}

/* 1 when the ops store bf16 activations */
static inline int cuda_bf16(const struct backend *be)
{
    return be->precision == PRECISION_BF16;
}

/* f<T>(args...) with T the activation storage of be->precision; f casts its act pointers
 * to T (backend.h's act arguments are float * in the op table, bf16 in memory) */
#define CUDA_ACT_CALL(be, f, ...) (cuda_bf16(be) ? f<bf16_t>(__VA_ARGS__) : f<float>(__VA_ARGS__))

/* Channel 0 of `base` (image (h, w, c), offset to the channel) bilinearly resampled from the
 * taps rows y0, y1 and columns x0, x1 with weights ly, lx: upsample2 and resize_bilinear,
 * in TensorFlow's order (the CPU backend's cpu_bilinear_pixel, the same bits). */
template <typename T>
static __device__ inline float cuda_bilinear_value(const T *base, int w, int c, int y0, int y1,
                                                   int x0, int x1, float ly, float lx)
{
    float tl = act_load(base, ((size_t)y0 * w + x0) * c);
    float tr = act_load(base, ((size_t)y0 * w + x1) * c);
    float bl = act_load(base, ((size_t)y1 * w + x0) * c);
    float br = act_load(base, ((size_t)y1 * w + x1) * c);
    float top = tl + (tr - tl) * lx;
    float bottom = bl + (br - bl) * lx;
    return top + (bottom - top) * ly;
}

/* --- the ops (backend.h's list, as cuda_<op>) ------------------------------------------
 * in the file of their family: cuda_backend.cu (memory), cuda_conv.cu (cuDNN),
 * cuda_norm.cu, cuda_elementwise.cu (elementwise, layout, loss), cuda_resample.cu
 * (pooling, upsampling, the embedding), cuda_diffusion.cu (diffusion, normalization, random
 * numbers), cuda_data.cu (the resident set's gather), cuda_optim.cu, cuda_infer.cu
 * (InceptionV3's inference-only ops), cuda_timing.cu (events, memory figure). */
#define CUDA_OP_DECLARE(need, ret, op, params) ret cuda_##op params;
BACKEND_OPS(CUDA_OP_DECLARE)
#undef CUDA_OP_DECLARE

/* A file that calls cudaMalloc/cudaFree itself reports them through note_alloc/note_free
 * (cuda_timing.cu), so that memory_peak_bytes counts them. */
void cuda_mem_note_alloc(struct cuda_ctx *ctx, void *p, size_t bytes);
void cuda_mem_note_free(struct cuda_ctx *ctx, void *p);
void cuda_mem_track_destroy(struct cuda_ctx *ctx);

/* cuDNN (cuda_conv_plan.cu): init checks the cuDNN version, creates the handle on
 * ctx->stream and reads DDIM_CUDNN_NO_TF32; it returns 0, or -1 with the reason in err (it
 * never dies). destroy releases what init and the ops created. */
int cuda_conv_init(struct cuda_ctx *ctx, char *err, size_t errlen);
void cuda_conv_destroy(struct cuda_ctx *ctx);

/* The shapes each family takes (cuda_supports_op in cuda_backend.cu asks them; the family's
 * kernels check the same rule and die if called anyway): 1, or 0 with the reason in why.
 * cuda_conv_plan.cu: the convolutions cuDNN can run as this build calls it; cuda_norm.cu:
 * the channels the reduction scratch holds; cuda_resample.cu: the embedding's dims. */
int cuda_conv_supported(const struct conv_shape *s, char *why, size_t whylen);
int cuda_norm_supported(const struct cuda_ctx *ctx, enum backend_op_id op, int c, char *why,
                        size_t whylen);
int cuda_embedding_supported(int dims, char *why, size_t whylen);

/* cuda_bias_epilogue (not an op of the list): y (rows, c) += bias (c), then the epilogue
 * (backend.h's struct conv_epilogue; NULL: none) in the same pass: the convolutions' bias
 * (cuda_conv.cu), in cuda_elementwise.cu. */
void cuda_bias_epilogue(struct backend *be, float *y, const float *bias, size_t rows, int c,
                        const struct conv_epilogue *epi);

/* The graph hooks (backend.h, after the op list): cuda_timing.cu. */
void cuda_graph_fill_table(struct backend *be);

#endif
