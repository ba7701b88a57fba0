/* cuda_backend.cu: the CUDA backend's creation, memory ops and op table.
 *
 * One backend = one device and one non-blocking stream: every op and every memory op is
 * ordered on that stream, so ops never need a host synchronization between them, and a
 * whole training step can later be captured into a CUDA graph. upload/download wait for
 * their copy (the host buffer is free, or filled, when they return). Creation never dies:
 * with no usable GPU (or a cuDNN older than the build's) it returns NULL and says why, so
 * callers (and the gpu tests) can fall back or skip. The convolutions are cuDNN's
 * (cuda_conv.cu), on a handle bound to the same stream. */
#include "cuda_common.h"

#include <stdlib.h>
#include <string.h>

void *cuda_alloc(struct backend *be, size_t bytes)
{
    void *p = NULL;
    size_t rounded = (bytes + 255) / 256 * 256; /* never a 0-byte (NULL) allocation */
    if (!rounded)
        rounded = 256;
    cudaError_t e = cudaMalloc(&p, rounded);
    if (e != cudaSuccess || !p) {
        size_t free_b = 0, total_b = 0;
        cudaMemGetInfo(&free_b, &total_b);
        DDIM_FATAL("cuda backend: cudaMalloc of %zu bytes on device %d failed: %s "
                   "(%zu of %zu MiB free; lower the batch size per GPU)",
                   bytes, cuda_ctx_of(be)->device, cudaGetErrorString(e), free_b >> 20,
                   total_b >> 20);
    }
    /* on the backend's stream, so that it is ordered before every later op */
    CUDA_CHECK(cudaMemsetAsync(p, 0, rounded, cuda_stream(be)));
    cuda_mem_note_alloc(cuda_ctx_of(be), p, rounded);
    return p;
}

void cuda_free(struct backend *be, void *p)
{
    if (!p)
        return;
    cuda_mem_note_free(cuda_ctx_of(be), p);
    CUDA_CHECK(cudaFree(p)); /* waits for the device, so no op still uses p */
}

void cuda_upload(struct backend *be, void *dst, const void *src_host, size_t bytes)
{
    if (!bytes)
        return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src_host, bytes, cudaMemcpyHostToDevice, cuda_stream(be)));
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be)));
}

void cuda_download(struct backend *be, void *dst_host, const void *src, size_t bytes)
{
    if (!bytes)
        return;
    CUDA_CHECK(cudaMemcpyAsync(dst_host, src, bytes, cudaMemcpyDeviceToHost, cuda_stream(be)));
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be)));
}

void cuda_copy(struct backend *be, void *dst, const void *src, size_t bytes)
{
    if (!bytes)
        return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cuda_stream(be)));
}

static __global__ void fill_kernel(float *x, float value, size_t n)
{
    CUDA_GRID_STRIDE_LOOP(i, n)
    {
        x[i] = value;
    }
}

void cuda_fill(struct backend *be, float *x, float value, size_t n)
{
    if (!n)
        return;
    fill_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(x, value, n);
    KERNEL_CHECK();
}

void cuda_synchronize(struct backend *be)
{
    CUDA_CHECK(cudaStreamSynchronize(cuda_stream(be)));
}

void cuda_destroy(struct backend *be)
{
    if (!be)
        return;
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    if (ctx) {
        CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
        cuda_conv_destroy(ctx);
        CUDA_CHECK(cudaFree(ctx->scratch));
        CUDA_CHECK(cudaStreamDestroy(ctx->stream));
        cuda_mem_track_destroy(ctx);
        free(ctx);
    }
    free(be);
}

/* The shapes the CUDA backend takes, op by op (backend.h's supports_op): each family's
 * rule, and conv2d_backward's common one. */
static int cuda_supports_op(struct backend *be, enum backend_op_id op, const struct op_shape *s,
                            char *why, size_t whylen)
{
    if (!s)
        return 1;
    switch (op) {
    case BACKEND_OP_conv2d_backward:
        if (s->conv && !backend_conv_has_backward(s->conv, why, whylen))
            return 0;
        return !s->conv || cuda_conv_supported(s->conv, why, whylen);
    case BACKEND_OP_conv2d_forward:
        return !s->conv || cuda_conv_supported(s->conv, why, whylen);
    case BACKEND_OP_bn_stats:
    case BACKEND_OP_bn_forward_train:
    case BACKEND_OP_bn_backward_stats:
    case BACKEND_OP_bn_backward_apply:
        return cuda_norm_supported(cuda_ctx_of(be), op, s->c, why, whylen);
    case BACKEND_OP_sinusoidal_embedding:
        return cuda_embedding_supported(s->c, why, whylen);
    default:
        return 1;
    }
}

static void cuda_fill_table(struct backend *be)
{
    be->name = "cuda";
#define CUDA_OP_FILL(need, ret, op, params) be->op = cuda_##op;
    BACKEND_OPS(CUDA_OP_FILL)
#undef CUDA_OP_FILL
    cuda_graph_fill_table(be);
    be->supports_op = cuda_supports_op;
}

/* cudaGetDeviceCount's failure in the user's terms: the runtime says "driver version is
 * insufficient" also when there is no driver at all. */
static int no_device_error(cudaError_t e, char *err, size_t errlen)
{
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver); /* 0 when no driver is installed */
    cudaRuntimeGetVersion(&runtime);
    if (driver == 0)
        return util_error(err, errlen, "no usable GPU: no NVIDIA driver was found (CUDA says: %s)",
                          cudaGetErrorString(e));
    if (e == cudaErrorInsufficientDriver)
        return util_error(err, errlen,
                          "no usable GPU: the NVIDIA driver supports CUDA %d.%d, older than the "
                          "CUDA %d.%d this ddim-dist was built with (update the driver)",
                          driver / 1000, driver % 1000 / 10, runtime / 1000, runtime % 1000 / 10);
    return util_error(err, errlen, "no usable GPU (cudaGetDeviceCount: %s, error %d %s)",
                      cudaGetErrorString(e), (int)e, cudaGetErrorName(e));
}

/* Everything that can fail on a machine without a usable GPU, checked without dying. On
 * success the device is current and *stream and *scratch are created. */
static int cuda_open_device(int device, cudaStream_t *stream, double **scratch, int *num_sms,
                            char *err, size_t errlen)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* clear it, so that later runtime calls do not report it */
        return no_device_error(e, err, errlen);
    }
    if (count <= 0)
        return util_error(err, errlen,
                          "no usable GPU: the NVIDIA driver sees no device (check "
                          "CUDA_VISIBLE_DEVICES)");
    if (device < 0 || device >= count)
        return util_error(err, errlen,
                          "CUDA device %d does not exist: %d device(s) visible (check "
                          "CUDA_VISIBLE_DEVICES and the local-rank to GPU mapping)",
                          device, count);
    e = cudaSetDevice(device);
    struct cudaDeviceProp prop;
    if (e == cudaSuccess)
        e = cudaGetDeviceProperties(&prop, device);
    /* a kernel image for this device: fails on a GPU older than the build's architecture */
    struct cudaFuncAttributes attr;
    if (e == cudaSuccess)
        e = cudaFuncGetAttributes(&attr, fill_kernel);
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return util_error(err, errlen,
                          "CUDA device %d is not usable: %s (error %d %s; a GPU older than "
                          "the architecture this build targets gives 'no kernel image')",
                          device, cudaGetErrorString(e), (int)e, cudaGetErrorName(e));
    }
    e = cudaMalloc((void **)scratch, CUDA_SCRATCH_DOUBLES * sizeof(double));
    if (e == cudaSuccess)
        e = cudaMemsetAsync(*scratch, 0, CUDA_SCRATCH_DOUBLES * sizeof(double), *stream);
    if (e != cudaSuccess) {
        cudaGetLastError();
        cudaStreamDestroy(*stream);
        return util_error(err, errlen, "CUDA device %d: cannot allocate %zu MiB scratch: %s",
                          device, (CUDA_SCRATCH_DOUBLES * sizeof(double)) >> 20,
                          cudaGetErrorString(e));
    }
    *num_sms = prop.multiProcessorCount;
    return 0;
}

extern "C" struct backend *cuda_backend_create(int device, char *err, size_t errlen)
{
    cudaStream_t stream = NULL;
    double *scratch = NULL;
    int num_sms = 0;
    if (cuda_open_device(device, &stream, &scratch, &num_sms, err, errlen) != 0)
        return NULL;
    struct cuda_ctx *ctx = (struct cuda_ctx *)util_xcalloc(1, sizeof *ctx);
    ctx->device = device;
    ctx->stream = stream;
    ctx->num_sms = num_sms;
    ctx->scratch = scratch;
    ctx->scratch_doubles = CUDA_SCRATCH_DOUBLES;
    if (cuda_conv_init(ctx, err, errlen) != 0) {
        cudaFree(scratch);
        cudaStreamDestroy(stream);
        cudaGetLastError();
        free(ctx);
        return NULL;
    }
    struct backend *be = (struct backend *)util_xcalloc(1, sizeof *be);
    be->ctx = ctx;
    be->stream = stream;
    cuda_fill_table(be);
    return be;
}
