/* test_cuda_pairs.h: what test_cuda_ops.c and test_cuda_step_ops.c (one program: test_cuda_ops,
 * and test_cuda_emu on the host emulation) share: a tensor held on both backends, made and
 * checked CUDA against CPU, and the tolerances (test_cuda_ops.c's top says why each). */
#ifndef DDIM_TEST_CUDA_PAIRS_H
#define DDIM_TEST_CUDA_PAIRS_H

#include <stddef.h>

struct backend;
extern struct backend *cpu, *gpu; /* test_cuda_ops.c's main makes them */

/* The same tensor on both backends. */
struct pair {
    float *c; /* CPU backend memory */
    float *g; /* CUDA backend memory */
    size_t n;
};

struct pair pair_alloc(size_t n);
struct pair pair_from(const float *host, size_t n); /* n host floats on both */
struct pair pair_normal(size_t n, float stddev);
struct pair pair_uniform(size_t n, float lo, float hi);
/* An output: NaN on both sides until an op writes it. */
struct pair pair_poisoned(size_t n);
void pair_free(struct pair *p);
/* CUDA result against CPU result. Then the CPU's values are copied to the GPU, so that an
 * op reading this tensor next (or accumulating into it) starts from the same bits on both
 * sides: each op is judged on its own, and a failure is reported once. */
int check(const char *name, const struct pair *p, float atol, float rtol);

#define EXACT_ATOL 1e-6f
#define EXACT_RTOL 1e-6f
#define TRANS_RTOL 1e-5f

/* test_cuda_step_ops.c: the ops the training step feeds from its counters */
void test_step_ops(void);

#endif
