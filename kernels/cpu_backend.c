/* cpu_backend.c: the CPU backend's memory ops and its op table. Plain host memory; the
 * ops themselves live in cpu_conv.c, cpu_norm.c, cpu_elementwise.c, cpu_resample.c,
 * cpu_diffusion.c and cpu_data.c. */
#include "cpu_ops.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static void *cpu_alloc(struct backend *be, size_t bytes)
{
    /* 64-byte alignment for vectorized loops; zero-filled as backend.h promises */
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p)
        DDIM_FATAL("cpu backend: out of host memory allocating %zu bytes", bytes);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

static void cpu_free(struct backend *be, void *p)
{
    free(p);
}

static void cpu_copy(struct backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes)
        memmove(dst, src, bytes);
}

static void cpu_fill(struct backend *be, float *x, float value, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = value;
}

static void cpu_synchronize(struct backend *be) {}

static void cpu_destroy(struct backend *be)
{
    if (!be)
        return;
    struct cpu_ctx *ctx = be->ctx;
    free(ctx->workspace);
    free(ctx);
    free(be);
}

struct backend *backend_cpu_create(void)
{
    struct backend *be = util_xcalloc(1, sizeof *be);
    be->name = "cpu";
    be->ctx = util_xcalloc(1, sizeof(struct cpu_ctx));
    be->alloc = cpu_alloc;
    be->free = cpu_free;
    be->upload = cpu_copy;
    be->download = cpu_copy;
    be->copy = cpu_copy;
    be->fill = cpu_fill;
    be->synchronize = cpu_synchronize;
    be->destroy = cpu_destroy;
    be->conv2d_forward = cpu_conv2d_forward;
    be->conv2d_backward = cpu_conv2d_backward;
    be->bn_stats = cpu_bn_stats;
    be->bn_forward_train = cpu_bn_forward_train;
    be->bn_forward_infer = cpu_bn_forward_infer;
    be->bn_backward_stats = cpu_bn_backward_stats;
    be->bn_backward_apply = cpu_bn_backward_apply;
    be->swish_forward = cpu_swish_forward;
    be->swish_backward = cpu_swish_backward;
    be->add = cpu_add;
    be->axpy = cpu_axpy;
    be->scale = cpu_scale;
    be->concat_forward = cpu_concat_forward;
    be->concat_backward = cpu_concat_backward;
    be->avgpool2_forward = cpu_avgpool2_forward;
    be->avgpool2_backward = cpu_avgpool2_backward;
    be->upsample2_forward = cpu_upsample2_forward;
    be->upsample2_backward = cpu_upsample2_backward;
    be->sinusoidal_embedding = cpu_sinusoidal_embedding;
    be->loss_value = cpu_loss_value;
    be->loss_backward = cpu_loss_backward;
    be->diffusion_schedule = cpu_diffusion_schedule;
    be->mix = cpu_mix;
    be->pred_images = cpu_pred_images;
    be->square = cpu_square;
    be->normalize = cpu_normalize;
    be->denormalize = cpu_denormalize;
    be->gather_images = cpu_gather_images;
    be->fill_normal = cpu_fill_normal;
    be->fill_uniform = cpu_fill_uniform;
    be->adamw_update = cpu_adamw_update;
    be->ema_update = cpu_ema_update;
    be->relu_forward = cpu_relu_forward;
    be->pool_forward = cpu_pool_forward;
    be->global_avgpool_forward = cpu_global_avgpool_forward;
    be->resize_bilinear_forward = cpu_resize_bilinear_forward;
    be->event_create = cpu_event_create;
    be->event_record = cpu_event_record;
    be->event_elapsed_ms = cpu_event_elapsed_ms;
    be->event_destroy = cpu_event_destroy;
    be->memory_peak_bytes = cpu_memory_peak_bytes;
    return be;
}
