/* emu_backend.cc: the emulated CUDA backend's entry point (cuda_emu_backend.h), and what
 * kernels/cuda_backend.cu needs from kernels/cuda_conv.cu and kernels/cuda_conv_plan.cu,
 * which are not emulated: cuDNN is a library, not this project's kernels. The table is
 * kernels/cuda_backend.cu's own, made by its cuda_backend_create; only the convolutions are
 * taken out. */
#include "cuda_common.h"
#include "cuda_emu_backend.h"

int cuda_conv_init(struct cuda_ctx *ctx, char *err, size_t errlen)
{
    return 0; /* no cuDNN handle: ctx->cudnn stays NULL */
}

void cuda_conv_destroy(struct cuda_ctx *ctx) {}

/* cuda_conv_plan.cu's shape rule, for the stand-in convolutions of emu_conv.cu
 * (backend_cuda_emu_create_with_conv): the U-Net's kind only. */
int cuda_conv_supported(const struct conv_shape *s, char *why, size_t whylen)
{
    if (conv_is_basic(s))
        return 1;
    util_error(why, whylen, "the emulation's stand-in convolutions take the U-Net's kind only");
    return 0;
}

/* In the table only until backend_cuda_emu_create takes them out. */
void cuda_conv2d_forward(struct backend *be, float *y, const float *x, const float *w,
                         const float *bias, const struct conv_shape *s,
                         const struct conv_epilogue *epi)
{
    DDIM_FATAL("cuda emulator: conv2d_forward is cuDNN's and is not emulated");
}

void cuda_conv2d_backward(struct backend *be, float *dx, float *dw, float *dbias, const float *dy,
                          const float *x, const float *w, const struct conv_shape *s,
                          enum grad_mode dx_mode)
{
    DDIM_FATAL("cuda emulator: conv2d_backward is cuDNN's and is not emulated");
}

/* emu_conv.cu */
void emu_conv2d_forward(struct backend *be, float *y, const float *x, const float *w,
                        const float *bias, const struct conv_shape *s,
                        const struct conv_epilogue *epi);
void emu_conv2d_backward(struct backend *be, float *dx, float *dw, float *dbias, const float *dy,
                         const float *x, const float *w, const struct conv_shape *s,
                         enum grad_mode dx_mode);

extern "C" struct backend *backend_cuda_emu_create_with_conv(char *err, size_t errlen)
{
    struct backend *be = cuda_backend_create(0, err, errlen);
    if (!be)
        return NULL;
    be->name = "cuda-emu-conv";
    be->conv2d_forward = emu_conv2d_forward;
    be->conv2d_backward = emu_conv2d_backward;
    return be;
}

extern "C" long backend_cuda_emu_eager_work(void)
{
    return emu::eager_work_count();
}

extern "C" struct backend *backend_cuda_emu_create(char *err, size_t errlen)
{
    struct backend *be = cuda_backend_create(0, err, errlen);
    if (!be)
        return NULL;
    be->name = "cuda-emu";
    be->conv2d_forward = NULL;
    be->conv2d_backward = NULL;
    return be;
}
