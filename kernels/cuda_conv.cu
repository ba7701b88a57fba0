/* cuda_conv.cu: 2D convolution (zero padding, bias; any kernel height and width, stride and
 * TensorFlow padding of struct conv_shape whose 'same' padding is symmetric) with cuDNN's
 * legacy convolution API, NHWC float32 activations as backend.h states. Backward only for
 * the U-Net's shapes (conv_is_basic), as backend.h states.
 *
 * Layout of the kernel: the trainer keeps Keras's HWIO kernels, (k,k,Cin,Cout), i.e. a
 * (k*k*Cin, Cout) row-major matrix. cuDNN has no HWIO filter layout; its NHWC filter
 * format (CUDNN_TENSOR_NHWC in cudnnSetFilter4dDescriptor) is KRSC, (Cout,k,k,Cin), which
 * is exactly the transpose of that matrix. So each call transposes w into a private KRSC
 * copy (and backward transposes cuDNN's KRSC dw back into the caller's HWIO dw). The
 * transposes are small next to the convolutions (the whole U-Net has ~2M weights) and keep
 * one code path for k = 1 and k = 3, with no second library.
 *
 * Plans (descriptors and algorithms per shape and precision, cached), the shared workspace
 * and the math each precision gets: cuda_conv_plan.cu.
 *
 * Epilogue (backend.h's struct conv_epilogue): the bias, a residual add and a swish in one
 * pass after cuDNN's convolution (cuda_bias_epilogue), the bits of the ops apart. The
 * experiment DDIM_CUDNN_FUSED_EPILOGUE=1 (tools/gpu_check.sh times it; off by default)
 * hands a residual epilogue without swish to cuDNN instead:
 * cudnnConvolutionBiasActivationForward, y = conv + residual + bias with the identity
 * activation, which cuDNN allows with IMPLICIT_PRECOMP_GEMM only: no pass over y, but its
 * order of addition is cuDNN's (float32 rounding apart from the pass; not bit-identical).
 * A shape cuDNN refuses keeps the pass; bf16 plans always keep it.
 *
 * Semantics (backend.h): y = conv(x, w) + bias is written; backward writes dw and dbias (=)
 * and writes or accumulates dx as dx_mode says (cuDNN's beta = 0 or 1), skipped when dx is
 * NULL. dbias reuses the
 * BatchNorm channel sums (cuda_bn_stats: double accumulation, fixed order, no atomics). */
#include "cuda_conv_plan.h"

/* --- kernels -------------------------------------------------------------------------- */

/* out (cols, rows) = in (rows, cols)^T, both row-major; float to bf16 rounds (the kernel
 * for bf16 convolutions), bf16 to float widens (their weight gradient) */
template <typename TIN, typename TOUT>
static __global__ void transpose_kernel(TOUT *out, const TIN *in, size_t rows, size_t cols)
{
    CUDA_GRID_STRIDE_LOOP(i, rows * cols)
    {
        size_t c = i / rows, r = i % rows;
        act_store(out, i, act_load(in, r * cols + c));
    }
}

template <typename TIN, typename TOUT>
static void transpose(struct backend *be, void *out, const void *in, size_t rows, size_t cols)
{
    size_t n = rows * cols;
    transpose_kernel<TIN, TOUT><<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        (TOUT *)out, (const TIN *)in, rows, cols);
    KERNEL_CHECK();
}

/* HWIO (kkc, cout) float32 weights into the KRSC copy of the plan's data type */
static void kernel_to_krsc(struct backend *be, const struct conv_plan *p, void *krsc,
                           const float *w, size_t kkc, size_t cout)
{
    if (p->prec == PRECISION_BF16)
        transpose<float, bf16_t>(be, krsc, w, kkc, cout);
    else
        transpose<float, float>(be, krsc, w, kkc, cout);
}

/* DDIM_CUDNN_FUSED_EPILOGUE: y = conv(x) + residual + bias in cuDNN (the top of the file);
 * 1 if done, 0 if cuDNN refused this shape (then never tried again for it). */
static int fused_residual(struct cuda_ctx *ctx, struct conv_plan *p, float *y, const float *x,
                          const float *bias, const float *residual)
{
    struct cuda_conv_cache *c = ctx->conv;
    if (p->fused_ok < 0)
        return 0;
    const float one = 1.0f;
    cudnnStatus_t st = cudnnConvolutionBiasActivationForward(
        ctx->cudnn, &one, p->x_desc, x, p->w_desc, c->w_krsc, p->conv_desc[DIR_FWD],
        CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, c->workspace, p->fused_ws, &one,
        p->y_desc, residual, p->bias_desc, bias, c->identity, p->y_desc, y);
    if (st == CUDNN_STATUS_SUCCESS) {
        p->fused_ok = 1;
        return 1;
    }
    p->fused_ok = -1;
    util_log("cudnn: the fused residual epilogue is refused for n=%d h=%d w=%d cin=%d cout=%d "
             "k=%d (%s): the epilogue pass instead\n",
             p->s.n, p->s.h, p->s.w, p->s.cin, p->s.cout, p->s.k, cudnnGetErrorString(st));
    return 0;
}

/* --- the ops -------------------------------------------------------------------------- */

void cuda_conv2d_forward(struct backend *be, float *y, const float *x, const float *w,
                         const float *bias, const struct conv_shape *s,
                         const struct conv_epilogue *epi)
{
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    struct conv_plan *p = cuda_conv_plan_get(be, s);
    struct cuda_conv_cache *c = ctx->conv;
    size_t kkc = (size_t)conv_kh(s) * conv_kw(s) * s->cin;
    kernel_to_krsc(be, p, c->w_krsc, w, kkc, (size_t)s->cout); /* HWIO (kkc, cout) -> KRSC */
    if (c->fused_epilogue && p->prec != PRECISION_BF16 && epi && epi->residual && !epi->swish &&
        fused_residual(ctx, p, y, x, bias, epi->residual))
        return;
    const float one = 1.0f, zero = 0.0f;
    /* beta = 0: y is written, never read (it may hold NaN) */
    CUDNN_CHECK(cudnnConvolutionForward(ctx->cudnn, &one, p->x_desc, x, p->w_desc, c->w_krsc,
                                        p->conv_desc[DIR_FWD], p->fwd_algo, c->workspace,
                                        p->ws_bytes[DIR_FWD], &zero, p->y_desc, y));
    /* the bias and the epilogue in one pass over y */
    cuda_bias_epilogue(be, y, bias, (size_t)s->n * conv_out_h(s) * conv_out_w(s), s->cout, epi);
}

void cuda_conv2d_backward(struct backend *be, float *dx, float *dw, float *dbias, const float *dy,
                          const float *x, const float *w, const struct conv_shape *s,
                          enum grad_mode dx_mode)
{
    backend_require_conv_backward("cuda", s); /* supports_op refuses it first */
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    const struct conv_plan *p = cuda_conv_plan_get(be, s);
    struct cuda_conv_cache *c = ctx->conv;
    size_t rows = (size_t)s->n * s->h * s->w, kkc = (size_t)s->k * s->k * s->cin;
    const float one = 1.0f, zero = 0.0f;

    /* dbias (=) = column sums of dy (rows, cout): the first half of [sum, sum of squares] */
    cuda_bn_stats(be, c->bias_sums, dy, rows, s->cout);
    CUDA_CHECK(cudaMemcpyAsync(dbias, c->bias_sums, (size_t)s->cout * sizeof(float),
                               cudaMemcpyDeviceToDevice, ctx->stream));

    /* dw (=): beta = 0 into the KRSC copy, then KRSC (cout, kkc) -> HWIO (kkc, cout) */
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(ctx->cudnn, &one, p->x_desc, x, p->y_desc, dy,
                                               p->conv_desc[DIR_BWD_FILTER], p->bwd_filter_algo,
                                               c->workspace, p->ws_bytes[DIR_BWD_FILTER], &zero,
                                               p->w_desc, c->dw_krsc));
    if (p->prec == PRECISION_BF16) /* KRSC (cout, kkc) -> HWIO (kkc, cout), widened */
        transpose<bf16_t, float>(be, dw, c->dw_krsc, (size_t)s->cout, kkc);
    else
        transpose<float, float>(be, dw, c->dw_krsc, (size_t)s->cout, kkc);

    /* dx: beta = 1 blends onto what dx holds (GRAD_ADD), beta = 0 writes it (dx may hold
     * anything, even NaN: cuDNN does not read it then) */
    if (dx) {
        const float *beta = dx_mode == GRAD_ADD ? &one : &zero;
        kernel_to_krsc(be, p, c->w_krsc, w, kkc, (size_t)s->cout);
        CUDNN_CHECK(cudnnConvolutionBackwardData(
            ctx->cudnn, &one, p->w_desc, c->w_krsc, p->y_desc, dy, p->conv_desc[DIR_BWD_DATA],
            p->bwd_data_algo, c->workspace, p->ws_bytes[DIR_BWD_DATA], beta, p->x_desc, dx));
    }
}
