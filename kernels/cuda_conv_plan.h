/* cuda_conv_plan.h: what cuda_conv.cu (the convolutions) and cuda_conv_plan.cu (their cuDNN
 * plans and shared buffers) share, inside the CUDA backend only: a plan per convolution shape
 * and precision, the cache of plans that ctx->conv holds, and the call that finds or builds
 * a shape's plan. */
#ifndef DDIM_CUDA_CONV_PLAN_H
#define DDIM_CUDA_CONV_PLAN_H

#include "cuda_common.h"

struct conv_plan {
    struct conv_shape s;
    enum precision prec; /* with s, the key: the data type and the math */
    int exact;           /* FMA math, no FFT/Winograd: PRECISION_FP32, or TF32 with NO_TF32 */
    cudnnTensorDescriptor_t x_desc;                  /* NHWC (n, h, w, cin) */
    cudnnTensorDescriptor_t y_desc;                  /* NHWC (n, ho, wo, cout) */
    cudnnFilterDescriptor_t w_desc;                  /* KRSC (cout, kh, kw, cin) */
    cudnnConvolutionDescriptor_t conv_desc[3];       /* per direction: each holds its math type */
    cudnnConvolutionFwdAlgo_t fwd_algo;              /* conv_desc[DIR_FWD] */
    cudnnConvolutionBwdDataAlgo_t bwd_data_algo;     /* conv_desc[DIR_BWD_DATA] */
    cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo; /* conv_desc[DIR_BWD_FILTER] */
    size_t ws_bytes[3];                              /* workspace each direction needs */
    cudnnMathType_t math[3];                         /* the math type each direction got */
    int fused_ok;    /* DDIM_CUDNN_FUSED_EPILOGUE: 1 cuDNN's fused call works, -1 not */
    size_t fused_ws; /* its workspace (IMPLICIT_PRECOMP_GEMM) */
    cudnnTensorDescriptor_t bias_desc; /* (1, cout, 1, 1), for the fused call */
};

enum { DIR_FWD = 0, DIR_BWD_DATA = 1, DIR_BWD_FILTER = 2 };

struct cuda_conv_cache {
    struct conv_plan *plans;
    int count, cap;
    void *workspace; /* shared by all plans: ops run in order on one stream */
    size_t workspace_bytes;
    void *w_krsc;  /* (cout, k, k, cin) of the largest kernel seen: w transposed (bf16 in BF16) */
    void *dw_krsc; /* same size: cuDNN's dw before the transpose back to HWIO */
    size_t w_krsc_bytes, dw_krsc_bytes;
    float *bias_sums; /* (2 * largest cout): [sum dy, sum dy^2] from cuda_bn_stats */
    size_t bias_sums_bytes;
    int verbose; /* DDIM_CUDNN_LOG_ALGOS or DDIM_CUDNN_VERBOSE: print each plan's choice */
    /* DDIM_CUDNN_ALLOW_INEXACT=1, a diagnostic: exact mode keeps FMA math but may take FFT
     * and Winograd again, as before they were excluded (tools/gpu_check.sh shows with it
     * whether they explain a mismatch) */
    int allow_inexact;
    int fused_epilogue;                   /* DDIM_CUDNN_FUSED_EPILOGUE=1 (cuda_conv.cu) */
    cudnnActivationDescriptor_t identity; /* its activation */
};

/* The plan of shape s at the backend's precision, built (and the shared buffers grown) on
 * its first use; dies on a shape cuda_conv_supported refuses. */
struct conv_plan *cuda_conv_plan_get(struct backend *be, const struct conv_shape *s);

#endif
