/* cpu_ops.h: the CPU backend's ops, shared between its source files (not a public API:
 * everything outside kernels/ goes through struct backend). */
#ifndef DDIM_CPU_OPS_H
#define DDIM_CPU_OPS_H

#include "backend.h"

struct cpu_ctx {
    float *workspace; /* im2col buffer, grown to the largest layer once */
    size_t workspace_floats;
};

/* Every op of backend.h's list as cpu_<op>, defined in the file of its family:
 * cpu_backend.c (memory), cpu_conv.c, cpu_norm.c, cpu_elementwise.c (elementwise, layout,
 * loss), cpu_resample.c (pooling, upsampling, the embedding), cpu_diffusion.c (diffusion,
 * normalization, random numbers, optimizer), cpu_data.c (the resident set's gather),
 * cpu_infer.c (InceptionV3's inference-only ops), cpu_timing.c (events, memory figure). */
#define CPU_OP_DECLARE(need, ret, op, params) ret cpu_##op params;
BACKEND_OPS(CPU_OP_DECLARE)
#undef CPU_OP_DECLARE

#endif
