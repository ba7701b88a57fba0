/* backend.c: what every backend shares: the check for ops a backend leaves unimplemented,
 * and the stand-in for the CUDA backend in builds without CUDA. */
#include "backend.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static void note_missing(int *missing, char *out, size_t outlen, const char *name)
{
    if (out && outlen) {
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s", *missing ? ", " : "", name);
    }
    (*missing)++;
}

int backend_missing_ops(const struct backend *be, char *out, size_t outlen)
{
    int missing = 0;
    if (out && outlen)
        out[0] = '\0';
#define BACKEND_REQUIRE(op)                                                                        \
    if (!be->op)                                                                                   \
    note_missing(&missing, out, outlen, #op)
    BACKEND_REQUIRE(alloc);
    BACKEND_REQUIRE(free);
    BACKEND_REQUIRE(upload);
    BACKEND_REQUIRE(download);
    BACKEND_REQUIRE(copy);
    BACKEND_REQUIRE(fill);
    BACKEND_REQUIRE(synchronize);
    BACKEND_REQUIRE(destroy);
    BACKEND_REQUIRE(conv2d_forward);
    BACKEND_REQUIRE(conv2d_backward);
    BACKEND_REQUIRE(bn_stats);
    BACKEND_REQUIRE(bn_forward_train);
    BACKEND_REQUIRE(bn_forward_infer);
    BACKEND_REQUIRE(bn_backward_stats);
    BACKEND_REQUIRE(bn_backward_apply);
    BACKEND_REQUIRE(swish_forward);
    BACKEND_REQUIRE(swish_backward);
    BACKEND_REQUIRE(add);
    BACKEND_REQUIRE(axpy);
    BACKEND_REQUIRE(scale);
    BACKEND_REQUIRE(concat_forward);
    BACKEND_REQUIRE(concat_backward);
    BACKEND_REQUIRE(avgpool2_forward);
    BACKEND_REQUIRE(avgpool2_backward);
    BACKEND_REQUIRE(upsample2_forward);
    BACKEND_REQUIRE(upsample2_backward);
    BACKEND_REQUIRE(sinusoidal_embedding);
    BACKEND_REQUIRE(loss_value);
    BACKEND_REQUIRE(loss_backward);
    BACKEND_REQUIRE(diffusion_schedule);
    BACKEND_REQUIRE(mix);
    BACKEND_REQUIRE(pred_images);
    BACKEND_REQUIRE(square);
    BACKEND_REQUIRE(normalize);
    BACKEND_REQUIRE(denormalize);
    BACKEND_REQUIRE(gather_images);
    BACKEND_REQUIRE(fill_normal);
    BACKEND_REQUIRE(fill_uniform);
    BACKEND_REQUIRE(adamw_update);
    BACKEND_REQUIRE(ema_update);
#undef BACKEND_REQUIRE
    return missing;
}

int backend_missing_inference_ops(const struct backend *be, char *out, size_t outlen)
{
    int missing = 0;
    if (out && outlen)
        out[0] = '\0';
    if (!be->relu_forward)
        note_missing(&missing, out, outlen, "relu_forward");
    if (!be->pool_forward)
        note_missing(&missing, out, outlen, "pool_forward");
    if (!be->global_avgpool_forward)
        note_missing(&missing, out, outlen, "global_avgpool_forward");
    if (!be->resize_bilinear_forward)
        note_missing(&missing, out, outlen, "resize_bilinear_forward");
    return missing;
}

#ifndef DDIM_HAVE_CUDA
struct backend *backend_cuda_create(int device, char *err, size_t errlen)
{
    util_error(err, errlen,
               "this ddim-dist was built without the CUDA backend (reconfigure "
               "with -DDDIM_CUDA=ON where nvcc, cuDNN and NCCL are found)");
    return NULL;
}
#endif
