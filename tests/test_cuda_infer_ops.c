/* test_cuda_infer_ops.c: the CUDA backend's optional ops: the inference-only ones
 * (InceptionV3 for KID) and its convolutions with InceptionV3's kernel shapes, strides and
 * paddings, against the CPU backend on the same random inputs, and the timing ops
 * (ddim-bench's) (label gpu; exits 77 with the reason when no GPU is usable). The CPU ops
 * are checked against definitions in test_infer_ops.c.
 *
 * Tolerances as tests/test_cuda_ops.c states them: pooling, resizing and ReLU use the
 * CPU's float32 arithmetic in its order (atol/rtol 1e-6); the global pool sums in double
 * (1e-6); convolutions (cuDNN in plain float32, DDIM_CUDNN_NO_TF32=1, against the CPU's
 * oneDNN) rtol 1e-4 and atol 1e-4 * rms of the reference.
 *
 * Built a second time as test_cuda_emu_infer (DDIM_CUDA_EMU, label unit): the same checks
 * on the host emulation of the CUDA kernels (tests/cuda_emu), without the convolutions
 * (cuDNN's, not emulated: the backend leaves them NULL). */
#define _POSIX_C_SOURCE 200809L /* setenv */

#include "backend.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct backend *cpu, *gpu;

/* Runs `op` on both backends over the same input; compares the outputs. */
struct both {
    float *xc, *xg, *yc, *yg;
    size_t nx, ny;
};

static struct both both_create(size_t nx, size_t ny, float stddev)
{
    struct both b = {NULL, NULL, NULL, NULL, nx, ny};
    float *h = test_alloc_normal(nx, stddev);
    b.xc = cpu->alloc(cpu, nx * sizeof(float));
    b.xg = ON_TESTED(gpu, alloc)(gpu, nx * sizeof(float));
    memcpy(b.xc, h, nx * sizeof(float));
    ON_TESTED(gpu, upload)(gpu, b.xg, h, nx * sizeof(float));
    b.yc = cpu->alloc(cpu, ny * sizeof(float));
    b.yg = ON_TESTED(gpu, alloc)(gpu, ny * sizeof(float));
    ON_TESTED(gpu, fill)(gpu, b.yg, NAN, ny); /* an element the op forgets stays NaN and fails */
    free(h);
    return b;
}

static void both_check(const char *name, struct both *b, float atol, float rtol)
{
    float *got = malloc(b->ny * sizeof(float));
    ON_TESTED(gpu, download)(gpu, got, b->yg, b->ny * sizeof(float));
    test_close(name, got, b->yc, b->ny, atol, rtol);
    free(got);
    cpu->free(cpu, b->xc);
    cpu->free(cpu, b->yc);
    ON_TESTED(gpu, free)(gpu, b->xg);
    ON_TESTED(gpu, free)(gpu, b->yg);
}

static void check_conv(const char *name, int h, int w, int cin, int cout, int kh, int kw,
                       int stride, int valid)
{
    if (!gpu->conv2d_forward) /* the host emulation: no cuDNN */
        return;
    struct conv_shape s = {.n = 3,
                           .h = h,
                           .w = w,
                           .cin = cin,
                           .cout = cout,
                           .kh = kh,
                           .kw = kw,
                           .stride = stride,
                           .valid = valid};
    size_t nx = (size_t)s.n * h * w * cin,
           ny = (size_t)s.n * conv_out_h(&s) * conv_out_w(&s) * cout;
    size_t nw = (size_t)kh * kw * cin * cout;
    struct both b = both_create(nx, ny, 1.0f);
    float *wh = test_alloc_normal(nw, 1.0f / sqrtf((float)(kh * kw * cin)));
    float *bh = test_alloc_normal((size_t)cout, 0.5f);
    float *wg = ON_TESTED(gpu, alloc)(gpu, nw * sizeof(float)),
          *bg = ON_TESTED(gpu, alloc)(gpu, cout * sizeof(float));
    ON_TESTED(gpu, upload)(gpu, wg, wh, nw * sizeof(float));
    ON_TESTED(gpu, upload)(gpu, bg, bh, cout * sizeof(float));
    cpu->conv2d_forward(cpu, b.yc, b.xc, wh, bh, &s, NULL);
    ON_TESTED(gpu, conv2d_forward)(gpu, b.yg, b.xg, wg, bg, &s, NULL);
    double ss = 0;
    for (size_t i = 0; i < ny; i++)
        ss += (double)b.yc[i] * b.yc[i];
    both_check(name, &b, 1e-4f * (float)sqrt(ss / (double)ny), 1e-4f);
    ON_TESTED(gpu, free)(gpu, wg);
    ON_TESTED(gpu, free)(gpu, bg);
    free(wh);
    free(bh);
}

static void check_pool(const char *name, int h, int w, int k, int stride, int valid,
                       enum pool_mode mode)
{
    struct pool_shape s = {2, h, w, 5, k, stride, valid, mode};
    size_t ny =
        (size_t)2 * conv_out_size(h, k, stride, valid) * conv_out_size(w, k, stride, valid) * 5;
    struct both b = both_create((size_t)2 * h * w * 5, ny, 1.0f);
    cpu->pool_forward(cpu, b.yc, b.xc, &s);
    ON_TESTED(gpu, pool_forward)(gpu, b.yg, b.xg, &s);
    both_check(name, &b, 1e-6f, 1e-6f);
}

/* The timing ops: two events around an op give a finite time >= 0 between them, and the
 * peak memory figure covers what was allocated. */
static void check_timing(void)
{
    size_t n = (size_t)1 << 20;
    void *a = ON_TESTED(gpu, event_create)(gpu), *b = ON_TESTED(gpu, event_create)(gpu);
    float *x = ON_TESTED(gpu, alloc)(gpu, n * sizeof(float));
    ON_TESTED(gpu, event_record)(gpu, a);
    ON_TESTED(gpu, fill)(gpu, x, 0.5f, n);
    ON_TESTED(gpu, event_record)(gpu, b);
    float ms = ON_TESTED(gpu, event_elapsed_ms)(gpu, a, b);
    size_t peak = ON_TESTED(gpu, memory_peak_bytes)(gpu);
    if (!(ms >= 0.0f) || !isfinite(ms))
        test_fail("event_elapsed_ms = %g, expected a finite time >= 0", (double)ms);
    else if (peak < n * sizeof(float))
        test_fail("memory_peak_bytes = %zu, below the %zu bytes of one buffer in use", peak,
                  n * sizeof(float));
    else
        printf("ok   timing: %.3f ms between events, peak %zu bytes\n", (double)ms, peak);
    ON_TESTED(gpu, event_destroy)(gpu, a);
    ON_TESTED(gpu, event_destroy)(gpu, b);
    ON_TESTED(gpu, free)(gpu, x);
}

int main(void)
{
    test_seed(11);
    char err[512];
    gpu = test_gpu_backend(err, sizeof err);
    if (!gpu) {
        printf("SKIP: %s\n", err);
        return TEST_SKIP;
    }
    cpu = cpu_backend_create();
    if (backend_missing_inference_ops(gpu, err, sizeof err) != 0)
        test_fail("cuda backend lacks inference ops: %s", err);
    check_conv("conv 3x3 s2 valid", 75, 75, 3, 32, 3, 3, 2, 1);
    check_conv("conv 3x3 s1 valid", 37, 37, 32, 32, 3, 3, 1, 1);
    check_conv("conv 3x3 s1 same", 35, 35, 32, 64, 3, 3, 1, 0);
    check_conv("conv 1x7 same", 17, 17, 16, 24, 1, 7, 1, 0);
    check_conv("conv 7x1 same", 17, 17, 16, 24, 7, 1, 1, 0);
    check_conv("conv 1x3 same", 8, 8, 32, 16, 1, 3, 1, 0);
    check_conv("conv 3x1 same", 8, 8, 32, 16, 3, 1, 1, 0);
    check_conv("conv 5x5 same", 9, 9, 12, 16, 5, 5, 1, 0);
    check_conv("conv 1x1", 9, 9, 64, 32, 1, 1, 1, 0);
    check_conv("conv 3x3 s2 valid 17", 17, 17, 16, 8, 3, 3, 2, 1);
    check_pool("maxpool 3x3 s2 valid", 35, 35, 3, 2, 1, POOL_MAX);
    check_pool("avgpool 3x3 s1 same", 8, 9, 3, 1, 0, POOL_AVG);

    struct both r = both_create((size_t)2 * 64 * 64 * 3, (size_t)2 * 75 * 75 * 3, 1.0f);
    cpu->resize_bilinear_forward(cpu, r.yc, r.xc, 2, 64, 64, 3, 75, 75);
    ON_TESTED(gpu, resize_bilinear_forward)(gpu, r.yg, r.xg, 2, 64, 64, 3, 75, 75);
    both_check("resize 64->75", &r, 1e-6f, 1e-6f);
    struct both g = both_create((size_t)3 * 5 * 5 * 40, (size_t)3 * 40, 1.0f);
    cpu->global_avgpool_forward(cpu, g.yc, g.xc, 3, 5, 5, 40);
    ON_TESTED(gpu, global_avgpool_forward)(gpu, g.yg, g.xg, 3, 5, 5, 40);
    both_check("global avgpool", &g, 1e-6f, 1e-6f);
    struct both u = both_create(1000, 1000, 1.0f);
    cpu->relu_forward(cpu, u.yc, u.xc, 1000);
    ON_TESTED(gpu, relu_forward)(gpu, u.yg, u.xg, 1000);
    both_check("relu", &u, 0.0f, 0.0f);

    check_timing();
    /* every optional op of the list has run on both backends above */
    test_ops_checked(gpu, 1u << OP_INFERENCE | 1u << OP_TIMING);
    const char *gpu_name = gpu->name;
    gpu->destroy(gpu);
    cpu->destroy(cpu);
    return test_finish(strcmp(gpu_name, "cuda") ? "test_cuda_emu_infer" : "test_cuda_infer_ops");
}
