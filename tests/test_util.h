/* test_util.h: what every C test shares: random inputs, tolerance checks, failing loudly.
 * A check prints the tensor's name, the first bad index, both values and the tolerance,
 * and counts a failure; test_finish() turns the count into the exit code. */
#ifndef DDIM_TEST_UTIL_H
#define DDIM_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct backend;

#define TEST_SKIP 77 /* CTest's SKIP_RETURN_CODE */

/* Deterministic test random numbers (not the trainer's generator). */
void test_seed(uint64_t seed);
float test_uniform(float lo, float hi);
float test_normal(void);
void test_fill_uniform(float *x, size_t n, float lo, float hi);
void test_fill_normal(float *x, size_t n, float stddev);
float *test_alloc_normal(size_t n, float stddev); /* malloc'd */
float *test_alloc_zeros(size_t n);                /* calloc'd; exits if out of memory */

/* |got - want| <= atol + rtol*|want| element-wise, and no NaN/Inf. Returns 1 if all pass. */
int test_close(const char *name, const float *got, const float *want, size_t n, float atol,
               float rtol);
/* Relative L2 error ||got - want|| / max(||want||, tiny), printed; passes if <= tol. */
int test_rel_l2(const char *name, const float *got, const float *want, size_t n, double tol);
/* Runs `cmd` through the shell, its stdout and stderr into out (outlen bytes, always
 * NUL-terminated; the rest is read and dropped). Returns the exit status 0..127. A death by
 * a signal (or a shell status of 128 and more, e.g. 139 after a segmentation fault) is
 * recorded as a test failure naming the command and returns -1, so that no test of an
 * error path can take a crash for the error it expects. */
int test_run_program(const char *cmd, char *out, size_t outlen);
/* Record a failed condition with a message. */
/* The CUDA backend on GPU 0 for the gpu tests, or the host emulation's in a test built with
 * DDIM_CUDA_EMU (tests/cuda_emu); convolutions in plain float32 (no TF32). NULL with the
 * reason when there is none: the test then skips. */
struct backend *test_gpu_backend(char *err, size_t errlen);

/* The op list's coverage by a cross-backend test. ON_TESTED(be, op) is be->op, marked as run
 * by this test: `ON_TESTED(gpu, fill)(gpu, x, 0.0f, n)`. test_ops_checked(be, needs) then
 * fails, naming it, every op of the list (BACKEND_OPS) of those needs (a mask: 1 << OP_REQUIRED
 * | ...) that be has and that no check ran: a new op without its check fails the test. Ops
 * be leaves NULL are listed as not checked here. Returns the number of ops missing. */
void test_op_ran(int op);
#define ON_TESTED(be, op) (test_op_ran(BACKEND_OP_##op), (be)->op)
int test_ops_checked(const struct backend *be, unsigned needs);

/* conv2d_forward on be with each epilogue (backend.h's struct conv_epilogue: residual,
 * swish, both) against the same convolution followed by add and swish_forward on be: the
 * same bits, every output written over NaN. */
struct conv_shape;
void test_conv_epilogue(struct backend *be, const struct conv_shape *s);

void test_fail(const char *fmt, ...);
/* Print the summary line and return the process exit code (0 pass, 1 fail). First fails
 * the test if any HDF5 object is still open (a handle leaked on some path). */
int test_finish(const char *suite);
int test_failures(void);

#endif
