/* cpu_backend.c: the CPU backend's memory ops, its op table and the shapes it takes
 * (supports_op). Plain host memory; the ops themselves live in the family files listed in
 * cpu_ops.h. */
#include "cpu_ops.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void *cpu_alloc(struct backend *be, size_t bytes)
{
    /* 64-byte alignment for vectorized loops; zero-filled as backend.h promises */
    size_t rounded = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p)
        DDIM_FATAL("cpu backend: out of host memory allocating %zu bytes", bytes);
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

void cpu_free(struct backend *be, void *p)
{
    free(p);
}

void cpu_copy(struct backend *be, void *dst, const void *src, size_t bytes)
{
    if (bytes)
        memmove(dst, src, bytes);
}

/* host memory both sides: a copy */
void cpu_upload(struct backend *be, void *dst, const void *src_host, size_t bytes)
{
    cpu_copy(be, dst, src_host, bytes);
}

void cpu_download(struct backend *be, void *dst_host, const void *src, size_t bytes)
{
    cpu_copy(be, dst_host, src, bytes);
}

void cpu_fill(struct backend *be, float *x, float value, size_t n)
{
    long blocks = (long)((n + CPU_BLOCK - 1) / CPU_BLOCK);
    int zero = value == 0.0f && !signbit(value); /* all bits zero: memset */
#pragma omp parallel for schedule(static)
    for (long b = 0; b < blocks; b++) {
        size_t i = (size_t)b * CPU_BLOCK, len = n - i < CPU_BLOCK ? n - i : CPU_BLOCK;
        if (zero)
            memset(x + i, 0, len * sizeof(float));
        else
            for (size_t k = 0; k < len; k++)
                x[i + k] = value;
    }
}

/* the CPU stores every activation as float32 (cpu_bf16.c rounds them under PRECISION_BF16) */
void cpu_to_act(struct backend *be, float *y, const float *x, size_t n)
{
    if (x)
        cpu_copy(be, y, x, n * sizeof(float));
    else
        memset(y, 0, n * sizeof(float));
}

void cpu_from_act(struct backend *be, float *y, const float *x, size_t n)
{
    cpu_copy(be, y, x, n * sizeof(float));
}

void cpu_synchronize(struct backend *be) {}

void cpu_destroy(struct backend *be)
{
    if (!be)
        return;
    struct cpu_ctx *ctx = be->ctx;
    cpu_conv_release(ctx);
    free(ctx);
    free(be);
}

/* The shapes the CPU backend takes: all, but conv2d_backward's rule (backend.h). */
static int cpu_supports_op(struct backend *be, enum backend_op_id op, const struct op_shape *s,
                           char *why, size_t whylen)
{
    if (op == BACKEND_OP_conv2d_backward && s && s->conv)
        return backend_conv_has_backward(s->conv, why, whylen);
    return 1;
}

struct backend *cpu_backend_create(void)
{
    struct backend *be = util_xcalloc(1, sizeof *be);
    be->name = "cpu";
    be->precision = PRECISION_TF32;
    be->bf16_size = sizeof(float); /* emulated: float32 values rounded to bf16 */
    be->ctx = util_xcalloc(1, sizeof(struct cpu_ctx));
#define CPU_OP_FILL(need, ret, op, params) be->op = cpu_##op;
    BACKEND_OPS(CPU_OP_FILL)
#undef CPU_OP_FILL
    cpu_bf16_install(be);
    be->supports_op = cpu_supports_op;
    return be;
}
