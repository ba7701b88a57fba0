/* cpu_ops.h: the CPU backend's ops, shared between its source files (not a public API:
 * everything outside kernels/ goes through struct backend). */
#ifndef DDIM_CPU_OPS_H
#define DDIM_CPU_OPS_H

#include "backend.h"

struct cpu_ctx {
    struct cpu_dnnl *dnnl; /* cpu_conv.c's oneDNN state: NULL until the first convolution */
};

/* PRECISION_BF16 (backend.h), emulated in cpu_bf16.c: puts its wrappers of the ops that
 * store activations into be's table (cpu_backend_create calls it). */
void cpu_bf16_install(struct backend *be);
/* Frees cpu_conv.c's state (plans, primitives, scratch); cpu_destroy calls it. */
void cpu_conv_release(struct cpu_ctx *ctx);

/* One output pixel (c channels) of a bilinear resampling of image (h, w, c): the taps rows
 * y0, y1 and columns x0, x1, weights ly, lx. Shared by upsample2 and resize_bilinear, in
 * TensorFlow's order of operations (top row, bottom row, then between them). */
static inline void cpu_bilinear_pixel(float *dst, const float *image, int w, int c, int y0, int y1,
                                      int x0, int x1, float ly, float lx)
{
    const float *tl = image + ((size_t)y0 * w + x0) * c, *tr = image + ((size_t)y0 * w + x1) * c;
    const float *bl = image + ((size_t)y1 * w + x0) * c, *br = image + ((size_t)y1 * w + x1) * c;
    for (int j = 0; j < c; j++) {
        float top = tl[j] + (tr[j] - tl[j]) * lx;
        float bottom = bl[j] + (br[j] - bl[j]) * lx;
        dst[j] = top + (bottom - top) * ly;
    }
}

/* Hot loops built for AVX-512, AVX2 and the baseline x86-64, the best chosen when the
 * program loads (GCC's and clang's function multiversioning); elsewhere built once. The
 * clones compute the same float32 operations in the same order (no FMA contraction:
 * -ffp-contract=off), so they give the same bits. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CPU_VECTOR_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define CPU_VECTOR_CLONES
#endif

/* Elements per block of an elementwise op's parallel loop: each thread takes whole blocks
 * (OpenMP's static schedule), the inner loop over a block is what vectorizes. */
enum { CPU_BLOCK = 8192 };

/* Reductions (BatchNorm's sums, the loss) sum fixed chunks of their rows into partials,
 * whichever thread takes each, and add the partials in chunk order: the result depends on
 * the size alone, not on the thread count or the schedule. At most CPU_SUM_CHUNKS chunks of
 * at least CPU_SUM_MIN_ROWS rows; returns the rows per chunk for `rows` rows. */
enum { CPU_SUM_CHUNKS = 64, CPU_SUM_MIN_ROWS = 1024 };
static inline size_t cpu_sum_chunk_rows(size_t rows)
{
    size_t per = (rows + CPU_SUM_CHUNKS - 1) / CPU_SUM_CHUNKS;
    return per < CPU_SUM_MIN_ROWS ? CPU_SUM_MIN_ROWS : per;
}

/* Every op of backend.h's list as cpu_<op>, defined in the file of its family:
 * cpu_backend.c (memory), cpu_conv.c, cpu_norm.c, cpu_elementwise.c (elementwise, layout,
 * loss), cpu_resample.c (pooling, upsampling, the embedding), cpu_diffusion.c (diffusion,
 * normalization, random numbers), cpu_optim.c (AdamW, EMA), cpu_data.c (the resident set's gather),
 * cpu_infer.c (InceptionV3's inference-only ops), cpu_timing.c (events, memory figure). */
#define CPU_OP_DECLARE(need, ret, op, params) ret cpu_##op params;
BACKEND_OPS(CPU_OP_DECLARE)
#undef CPU_OP_DECLARE

#endif
