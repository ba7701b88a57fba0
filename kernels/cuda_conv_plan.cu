/* cuda_conv_plan.cu: the cuDNN side of the convolutions of cuda_conv.cu (its top comment
 * has the layout, the epilogue and the semantics): a plan per convolution shape and
 * precision with cuDNN's algorithm search, the shared workspace and kernel copies, cuDNN's
 * handle, and their lifetime (cuda_conv_init, cuda_conv_destroy).
 *
 * Plans: the first call of a conv_shape builds a plan (tensor, filter and convolution
 * descriptors, and one algorithm per direction from cuDNN's heuristics, _v7), cached in
 * ctx->conv for the backend's lifetime. The same call grows the one shared workspace and the
 * KRSC buffers if this shape needs more; later calls of known shapes allocate nothing and
 * never wait on the host, so a step can be captured into a CUDA graph once every shape has
 * run once. Deterministic algorithms are preferred in every direction (same bits every
 * step, so resume tests hold), then cuDNN's ranking decides.
 *
 * Math, by the backend's precision (backend.h; a plan per shape and precision):
 * PRECISION_TF32 lets cuDNN use TF32 tensor cores on Ampere and later (CUDNN_DEFAULT_MATH,
 * or the tensor-op math its heuristic pairs with an algorithm), as TensorFlow does.
 * PRECISION_BF16 gives cuDNN bf16 tensors (x, y, the KRSC kernel copy and its dw, which the
 * transposes of cuda_conv.cu convert from and to the float32 HWIO weights) with float32
 * accumulation, on bf16 tensor cores. PRECISION_FP32 is exact mode, and so is PRECISION_TF32 with
 * DDIM_CUDNN_NO_TF32=1 (read once when the backend is created): every
 * convolution on CUDNN_FMA_MATH (plain float32 FMA kernels) and only algorithms that compute
 * in float32 as written (no FFT, no Winograd: they transform the data and lose about 1e-4
 * relative), for comparisons with the CPU backend at float32 rounding; the exact gpu tests
 * set it. DDIM_CUDNN_LOG_ALGOS=1 (or DDIM_CUDNN_VERBOSE=1) prints each convolution shape's
 * algorithm and math type per direction when its plan is made. DDIM_CUDNN_ALLOW_INEXACT=1
 * (a diagnostic) lets exact mode take FFT and Winograd again, to show what they cost.
 */
#include "cuda_conv_plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- plans ---------------------------------------------------------------------------- */

static int env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] && strcmp(v, "0") != 0;
}

/* cudaFree, reported to the memory figure (cuda_timing.cu); NULL is a no-op */
static void conv_free(struct cuda_ctx *ctx, void *p)
{
    if (!p)
        return;
    cuda_mem_note_free(ctx, p);
    CUDA_CHECK(cudaFree(p));
}

/* Grow a device buffer to `bytes` (never shrinks). Only the first call of a new shape gets
 * here; the wait makes sure no queued op still uses the old buffer. */
static void grow(struct backend *be, void **buf, size_t *have, size_t bytes)
{
    if (bytes <= *have)
        return;
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    conv_free(ctx, *buf);
    *buf = NULL;
    *have = 0;
    cudaError_t e = cudaMalloc(buf, bytes);
    if (e != cudaSuccess)
        DDIM_FATAL("cuda conv: cudaMalloc of %zu bytes (cuDNN workspace or kernel copy) failed: "
                   "%s (lower the batch size per GPU)",
                   bytes, cudaGetErrorString(e));
    cuda_mem_note_alloc(ctx, *buf, bytes);
    ctx->graph_epoch++; /* graphs captured with the old buffer must not run again */
    *have = bytes;
}

/* Workspace an algorithm may ask for before a slower one with less is preferred: at the
 * seed's sizes the heuristics can rank algorithms needing gigabytes first. */
#define WORKSPACE_CAP ((size_t)1 << 30)

/* Whether algorithm `algo` of direction `dir` computes in float32 as written (GEMM-based or
 * direct): FFT and Winograd transform the data first and lose about 1e-4 relative. */
static int algo_exact(int dir, int algo)
{
    switch (dir) {
    case DIR_FWD:
        return algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT &&
               algo != CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING &&
               algo != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD &&
               algo != CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
    case DIR_BWD_DATA:
        return algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT &&
               algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING &&
               algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD &&
               algo != CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED;
    default:
        return algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT &&
               algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING &&
               algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD &&
               algo != CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED;
    }
}

/* The first usable entry of cuDNN's heuristic ranking (perf, count entries) for direction
 * dir: status SUCCESS, never ALLOW_CONVERSION (float32 data converted down to FP16); in
 * exact mode (no_tf32) no tensor-op math, and only algo_exact algorithms unless
 * allow_inexact (a diagnostic, see cuda_conv_cache); accepted by the
 * descriptor (the workspace query succeeds). Three passes: deterministic within the
 * workspace cap, then any within the cap, then any at all. Sets conv's math type to the
 * chosen pairing (cuDNN picks kernels by algorithm AND math type) and returns the entry's
 * index, or -1. query(algo, &bytes) asks the workspace size. */
template <typename Perf, typename Query>
static int choose_algo(const Perf *perf, int count, int dir, int no_tf32, int allow_inexact,
                       cudnnConvolutionDescriptor_t conv, Query query, size_t *bytes)
{
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < count; i++) {
            int det = perf[i].determinism == CUDNN_DETERMINISTIC;
            if (perf[i].status != CUDNN_STATUS_SUCCESS || (pass == 0 && !det))
                continue;
            cudnnMathType_t math = perf[i].mathType;
            if (math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
                continue;
            if (no_tf32) {
                if (math == CUDNN_TENSOR_OP_MATH ||
                    (!allow_inexact && !algo_exact(dir, (int)perf[i].algo)))
                    continue;
                math = CUDNN_FMA_MATH; /* DEFAULT would allow TF32 again */
            }
            CUDNN_CHECK(cudnnSetConvolutionMathType(conv, math));
            if (query(perf[i].algo, bytes) == CUDNN_STATUS_SUCCESS &&
                (pass == 2 || *bytes <= WORKSPACE_CAP))
                return i;
        }
    }
    return -1;
}

static const char *algo_name(int dir, int algo)
{
    static const char *fwd[] = {
        "IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT", "FFT", "FFT_TILING",
        "WINOGRAD",      "WINOGRAD_NONFUSED"};
    static const char *bwd_data[] = {"ALGO_0",     "ALGO_1",   "FFT",
                                     "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    static const char *bwd_filter[] = {
        "ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED", "FFT_TILING"};
    const char **names = dir == DIR_FWD ? fwd : dir == DIR_BWD_DATA ? bwd_data : bwd_filter;
    int n = dir == DIR_FWD ? 8 : dir == DIR_BWD_DATA ? 6 : 7;
    return algo >= 0 && algo < n ? names[algo] : "unknown";
}

static const char *math_name(cudnnMathType_t m)
{
    switch (m) {
    case CUDNN_DEFAULT_MATH:
        return "DEFAULT (TF32 allowed)";
    case CUDNN_TENSOR_OP_MATH:
        return "TENSOR_OP (TF32)";
    case CUDNN_FMA_MATH:
        return "FMA (float32)";
    default:
        return "TENSOR_OP_ALLOW_CONVERSION";
    }
}

/* One line per plan (DDIM_CUDNN_LOG_ALGOS): the shape, then algorithm, math and workspace of
 * each direction, so that a GPU run shows which algorithm every convolution got. */
static void plan_log(const struct cuda_ctx *ctx, const struct conv_plan *p, int index)
{
    const struct conv_shape *s = &p->s;
    int algo[3] = {(int)p->fwd_algo, (int)p->bwd_data_algo, (int)p->bwd_filter_algo};
    static const char *dirs[3] = {"fwd", "bwd-data", "bwd-filter"};
    char text[512];
    int used =
        snprintf(text, sizeof text, "cudnn conv %d: n=%d h=%d w=%d cin=%d cout=%d k=%dx%d s=%d%s",
                 index, s->n, s->h, s->w, s->cin, s->cout, conv_kh(s), conv_kw(s), conv_stride(s),
                 p->prec == PRECISION_BF16  ? " [bf16]"
                 : !p->exact                ? ""
                 : ctx->conv->allow_inexact ? " [exact mode, FFT/Winograd allowed]"
                                            : " [exact mode]");
    for (int d = 0; d < 3 && used > 0 && (size_t)used < sizeof text; d++)
        used += snprintf(text + used, sizeof text - (size_t)used, "; %s %s %s ws %zu", dirs[d],
                         algo_name(d, algo[d]), math_name(p->math[d]), p->ws_bytes[d]);
    util_log("%s\n", text);
}

#define MAX_PERF 64 /* room for cuDNN's ranking in every direction */

/* How many entries to ask the heuristic for: cuDNN's maximum, within MAX_PERF. */
static int perf_count(int max_count)
{
    return max_count < 1 ? 1 : max_count > MAX_PERF ? MAX_PERF : max_count;
}

DDIM_NORETURN static void plan_fatal(const struct conv_plan *p, const char *dir)
{
    const struct conv_shape *s = &p->s;
    DDIM_FATAL("cuda conv: cuDNN offers no usable %s algorithm for n=%d h=%d w=%d cin=%d "
               "cout=%d k=%dx%d (NHWC %s%s); try another model.precision (or without "
               "DDIM_CUDNN_NO_TF32), or report the cuDNN version (cudnnGetVersion %zu)",
               dir, s->n, s->h, s->w, s->cin, s->cout, conv_kh(s), conv_kw(s),
               p->prec == PRECISION_BF16 ? "bfloat16" : "float32",
               p->exact ? ", exact mode: FMA math, no FFT or Winograd" : "", cudnnGetVersion());
}

/* One direction's search, the same for all three: cuDNN's heuristic ranking (_v7, asked with
 * the starting math type set on the direction's descriptor, since that tells it which
 * kernels it may rank), then choose_algo over it. max_count(&max) and heuristic(max, &got,
 * perf) are the direction's cuDNN calls, query(algo, &bytes) its workspace query. Returns the
 * algorithm; the direction's workspace goes to p->ws_bytes[dir]. */
template <typename Perf, typename MaxCount, typename Heuristic, typename Query>
static decltype(Perf::algo) search_direction(struct cuda_ctx *ctx, struct conv_plan *p, int dir,
                                             MaxCount max_count, Heuristic heuristic, Query query)
{
    static const char *const dir_names[3] = {"forward", "backward-data", "backward-filter"};
    int nt = p->exact, got = 0, max = 0;
    cudnnConvolutionDescriptor_t c = p->conv_desc[dir];
    CUDNN_CHECK(cudnnSetConvolutionMathType(c, nt ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH));
    CUDNN_CHECK(max_count(&max));
    max = perf_count(max);
    Perf perf[MAX_PERF];
    CUDNN_CHECK(heuristic(max, &got, perf));
    int i = choose_algo(perf, got, dir, nt, ctx->conv->allow_inexact, c, query, &p->ws_bytes[dir]);
    if (i < 0)
        plan_fatal(p, dir_names[dir]);
    return perf[i].algo;
}

static void plan_choose_algos(struct cuda_ctx *ctx, struct conv_plan *p)
{
    cudnnHandle_t h = ctx->cudnn;
    cudnnConvolutionDescriptor_t cf = p->conv_desc[DIR_FWD], cd = p->conv_desc[DIR_BWD_DATA],
                                 cw = p->conv_desc[DIR_BWD_FILTER];
    p->fwd_algo = search_direction<cudnnConvolutionFwdAlgoPerf_t>(
        ctx, p, DIR_FWD,
        [&](int *max) { return cudnnGetConvolutionForwardAlgorithmMaxCount(h, max); },
        [&](int max, int *got, cudnnConvolutionFwdAlgoPerf_t *perf) {
            return cudnnGetConvolutionForwardAlgorithm_v7(h, p->x_desc, p->w_desc, cf, p->y_desc,
                                                          max, got, perf);
        },
        [&](cudnnConvolutionFwdAlgo_t a, size_t *b) {
            return cudnnGetConvolutionForwardWorkspaceSize(h, p->x_desc, p->w_desc, cf, p->y_desc,
                                                           a, b);
        });
    p->bwd_data_algo = search_direction<cudnnConvolutionBwdDataAlgoPerf_t>(
        ctx, p, DIR_BWD_DATA,
        [&](int *max) { return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(h, max); },
        [&](int max, int *got, cudnnConvolutionBwdDataAlgoPerf_t *perf) {
            return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->w_desc, p->y_desc, cd,
                                                               p->x_desc, max, got, perf);
        },
        [&](cudnnConvolutionBwdDataAlgo_t a, size_t *b) {
            return cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->w_desc, p->y_desc, cd,
                                                                p->x_desc, a, b);
        });
    p->bwd_filter_algo = search_direction<cudnnConvolutionBwdFilterAlgoPerf_t>(
        ctx, p, DIR_BWD_FILTER,
        [&](int *max) { return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(h, max); },
        [&](int max, int *got, cudnnConvolutionBwdFilterAlgoPerf_t *perf) {
            return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->x_desc, p->y_desc, cw,
                                                                 p->w_desc, max, got, perf);
        },
        [&](cudnnConvolutionBwdFilterAlgo_t a, size_t *b) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->x_desc, p->y_desc, cw,
                                                                  p->w_desc, a, b);
        });
    for (int d = 0; d < 3; d++)
        CUDNN_CHECK(cudnnGetConvolutionMathType(p->conv_desc[d], &p->math[d]));
}

/* The plan of shape s at precision prec: bf16 data with float32 accumulation (cuDNN's
 * PSEUDO_BFLOAT16 configuration: x, w, y and dw in bf16, the convolution in float), or
 * float32 data with TF32 allowed or not (exact). */
static void plan_init(struct cuda_ctx *ctx, struct conv_plan *p, const struct conv_shape *s,
                      enum precision prec)
{
    memset(p, 0, sizeof *p);
    p->s = *s;
    p->prec = prec;
    p->exact = prec == PRECISION_FP32 || (prec == PRECISION_TF32 && ctx->cudnn_no_tf32);
    cudnnDataType_t dt = prec == PRECISION_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->x_desc));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->y_desc));
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&p->w_desc));
    /* dims are given as (n, c, h, w) whatever the format; the format sets the strides */
    CUDNN_CHECK(
        cudnnSetTensor4dDescriptor(p->x_desc, CUDNN_TENSOR_NHWC, dt, s->n, s->cin, s->h, s->w));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->y_desc, CUDNN_TENSOR_NHWC, dt, s->n, s->cout,
                                           conv_out_h(s), conv_out_w(s)));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(p->w_desc, dt, CUDNN_TENSOR_NHWC, s->cout, s->cin,
                                           conv_kh(s), conv_kw(s)));
    int st = conv_stride(s); /* cuda_conv_plan_get checked that 'same' padding is symmetric here */
    int pad_h = conv_pad_before(s->h, conv_kh(s), st, s->valid);
    int pad_w = conv_pad_before(s->w, conv_kw(s), st, s->valid);
    for (int d = 0; d < 3; d++) {
        CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&p->conv_desc[d]));
        /* cross-correlation, as TensorFlow's conv2d computes */
        CUDNN_CHECK(cudnnSetConvolution2dDescriptor(p->conv_desc[d], pad_h, pad_w, st, st, 1, 1,
                                                    CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    }
    plan_choose_algos(ctx, p);
}

static void plan_release(struct conv_plan *p)
{
    if (p->bias_desc)
        CUDNN_CHECK(cudnnDestroyTensorDescriptor(p->bias_desc));
    for (int d = 0; d < 3; d++)
        CUDNN_CHECK(cudnnDestroyConvolutionDescriptor(p->conv_desc[d]));
    CUDNN_CHECK(cudnnDestroyFilterDescriptor(p->w_desc));
    CUDNN_CHECK(cudnnDestroyTensorDescriptor(p->y_desc));
    CUDNN_CHECK(cudnnDestroyTensorDescriptor(p->x_desc));
}

static int same_shape(const struct conv_shape *a, const struct conv_shape *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->cin == b->cin && a->cout == b->cout &&
           conv_kh(a) == conv_kh(b) && conv_kw(a) == conv_kw(b) &&
           conv_stride(a) == conv_stride(b) && a->valid == b->valid;
}

/* cuDNN pads both sides alike: TensorFlow's 'same' padding must come out symmetric. */
static int padding_symmetric(int in, int k, int stride, int valid)
{
    int total = (conv_out_size(in, k, stride, valid) - 1) * stride + k - in;
    return valid || total <= 0 || total % 2 == 0;
}

int cuda_conv_supported(const struct conv_shape *s, char *why, size_t whylen)
{
    int kh = conv_kh(s), kw = conv_kw(s), st = conv_stride(s);
    const char *reason = NULL;
    if (kh < 1 || kw < 1 || s->n < 1 || s->h < 1 || s->w < 1 || s->cin < 1 || s->cout < 1 ||
        conv_out_h(s) < 1 || conv_out_w(s) < 1)
        reason = "every size must be >= 1 and the output at least 1x1";
    else if (!padding_symmetric(s->h, kh, st, s->valid) ||
             !padding_symmetric(s->w, kw, st, s->valid))
        reason = "'same' padding must be symmetric: cuDNN pads both sides alike";
    if (reason)
        util_error(why, whylen, "%s", reason);
    return reason == NULL;
}

/* cuda_conv_plan.h: found in the cache, or built and added to it */
struct conv_plan *cuda_conv_plan_get(struct backend *be, const struct conv_shape *s)
{
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    struct cuda_conv_cache *c = ctx->conv;
    for (int i = 0; i < c->count; i++)
        if (same_shape(&c->plans[i].s, s) && c->plans[i].prec == be->precision)
            return &c->plans[i];

    int kh = conv_kh(s), kw = conv_kw(s), st = conv_stride(s);
    char why[256];
    if (!cuda_conv_supported(s, why, sizeof why)) /* supports_op refuses it first */
        DDIM_FATAL("cuda conv: unsupported shape n=%d h=%d w=%d cin=%d cout=%d kernel %dx%d "
                   "stride %d %s: %s",
                   s->n, s->h, s->w, s->cin, s->cout, kh, kw, st, s->valid ? "valid" : "same", why);
    if (c->count == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->plans = (struct conv_plan *)realloc(c->plans, (size_t)c->cap * sizeof *c->plans);
        if (!c->plans)
            DDIM_FATAL("cuda conv: out of host memory for %d plans", c->cap);
    }
    struct conv_plan *p = &c->plans[c->count];
    plan_init(ctx, p, s, be->precision);
    c->count++;

    size_t ws = p->ws_bytes[0];
    for (int d = 1; d < 3; d++)
        ws = p->ws_bytes[d] > ws ? p->ws_bytes[d] : ws;
    grow(be, &c->workspace, &c->workspace_bytes, ws);
    size_t kernel_bytes = (size_t)kh * kw * s->cin * s->cout * sizeof(float);
    grow(be, &c->w_krsc, &c->w_krsc_bytes, kernel_bytes); /* float32: room for bf16 too */
    grow(be, &c->dw_krsc, &c->dw_krsc_bytes, kernel_bytes);
    grow(be, (void **)&c->bias_sums, &c->bias_sums_bytes, 2 * (size_t)s->cout * sizeof(float));

    if (c->fused_epilogue && p->prec != PRECISION_BF16) { /* the fused call's workspace */
        CUDNN_CHECK(cudnnCreateTensorDescriptor(&p->bias_desc));
        CUDNN_CHECK(cudnnSetTensor4dDescriptor(p->bias_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1,
                                               s->cout, 1, 1));
        if (cudnnGetConvolutionForwardWorkspaceSize(
                ctx->cudnn, p->x_desc, p->w_desc, p->conv_desc[DIR_FWD], p->y_desc,
                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                &p->fused_ws) != CUDNN_STATUS_SUCCESS)
            p->fused_ok = -1;
        else
            grow(be, &c->workspace, &c->workspace_bytes, p->fused_ws);
    }
    if (c->verbose)
        plan_log(ctx, p, c->count);
    return p;
}

/* --- lifetime ------------------------------------------------------------------------- */

int cuda_conv_init(struct cuda_ctx *ctx, char *err, size_t errlen)
{
    /* A cuDNN older than the headers this was built with may lack what the build uses, and
     * fails later with obscure errors: refuse it here, while the caller can still fall back. */
    size_t runtime = cudnnGetVersion();
    if (runtime < (size_t)CUDNN_VERSION) {
        struct cudaDeviceProp prop;
        const char *name = cudaGetDeviceProperties(&prop, ctx->device) == cudaSuccess
                               ? prop.name
                               : "unknown device";
        cudaGetLastError();
        return util_error(err, errlen,
                          "CUDA device %d (%s): cuDNN at run time is %zu.%zu.%zu (%zu), older "
                          "than the %d.%d.%d (%d) this program was built against; put a cuDNN "
                          ">= %d.%d on LD_LIBRARY_PATH or rebuild against the installed one",
                          ctx->device, name, runtime / 10000, runtime % 10000 / 100, runtime % 100,
                          runtime, CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL, CUDNN_VERSION,
                          CUDNN_MAJOR, CUDNN_MINOR);
    }
    cudnnHandle_t h = NULL;
    cudnnStatus_t st = cudnnCreate(&h);
    if (st == CUDNN_STATUS_SUCCESS) {
        st = cudnnSetStream(h, ctx->stream);
        if (st != CUDNN_STATUS_SUCCESS)
            cudnnDestroy(h);
    }
    if (st != CUDNN_STATUS_SUCCESS) {
        cudaGetLastError();
        return util_error(err, errlen, "CUDA device %d: cuDNN %zu cannot start: %s (error %d)",
                          ctx->device, runtime, cudnnGetErrorString(st), (int)st);
    }
    ctx->cudnn = h;
    ctx->cudnn_no_tf32 = env_flag("DDIM_CUDNN_NO_TF32");
    ctx->conv = (struct cuda_conv_cache *)util_xcalloc(1, sizeof *ctx->conv);
    ctx->conv->verbose = env_flag("DDIM_CUDNN_LOG_ALGOS") || env_flag("DDIM_CUDNN_VERBOSE");
    ctx->conv->allow_inexact = env_flag("DDIM_CUDNN_ALLOW_INEXACT");
    ctx->conv->fused_epilogue = env_flag("DDIM_CUDNN_FUSED_EPILOGUE");
    if (ctx->conv->fused_epilogue) {
        CUDNN_CHECK(cudnnCreateActivationDescriptor(&ctx->conv->identity));
        CUDNN_CHECK(cudnnSetActivationDescriptor(ctx->conv->identity, CUDNN_ACTIVATION_IDENTITY,
                                                 CUDNN_PROPAGATE_NAN, 0.0));
    }
    return 0;
}

void cuda_conv_destroy(struct cuda_ctx *ctx)
{
    struct cuda_conv_cache *c = ctx->conv;
    if (c) {
        for (int i = 0; i < c->count; i++)
            plan_release(&c->plans[i]);
        free(c->plans);
        conv_free(ctx, c->workspace);
        conv_free(ctx, c->w_krsc);
        conv_free(ctx, c->dw_krsc);
        conv_free(ctx, c->bias_sums);
        if (c->identity)
            CUDNN_CHECK(cudnnDestroyActivationDescriptor(c->identity));
        free(c);
        ctx->conv = NULL;
    }
    if (ctx->cudnn)
        CUDNN_CHECK(cudnnDestroy(ctx->cudnn));
    ctx->cudnn = NULL;
}
