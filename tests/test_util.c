/* test_util.c: see test_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"
#include "backend.h"
#ifdef DDIM_CUDA_EMU
#include "cuda_emu_backend.h"
#endif

#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static uint64_t test_state = 0x9E3779B97F4A7C15ull;
static int test_failed = 0;
static int test_checked = 0;

void test_seed(uint64_t seed)
{
    test_state = seed * 0x9E3779B97F4A7C15ull + 1;
}

static uint64_t test_next(void)
{ /* splitmix64 */
    uint64_t z = (test_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float test_uniform(float lo, float hi)
{
    double u = (double)(test_next() >> 11) * (1.0 / 9007199254740992.0);
    return lo + (float)(u * (hi - lo));
}

float test_normal(void)
{
    double u1 = ((double)(test_next() >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double u2 = (double)(test_next() >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void test_fill_uniform(float *x, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = test_uniform(lo, hi);
}

void test_fill_normal(float *x, size_t n, float stddev)
{
    for (size_t i = 0; i < n; i++)
        x[i] = stddev * test_normal();
}

float *test_alloc_normal(size_t n, float stddev)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    test_fill_normal(x, n, stddev);
    return x;
}

float *test_alloc_zeros(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "test: out of memory\n");
        exit(2);
    }
    return p;
}

void test_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    test_failed++;
}

int test_close(const char *name, const float *got, const float *want, size_t n, float atol,
               float rtol)
{
    test_checked++;
    double worst = 0;
    size_t worst_i = 0;
    for (size_t i = 0; i < n; i++) {
        float g = got[i], w = want[i];
        if (!isfinite(g) || !isfinite(w)) {
            test_fail("%s[%zu]: non-finite value got %g want %g", name, i, g, w);
            return 0;
        }
        double err = fabs((double)g - (double)w);
        double tol = atol + rtol * fabs((double)w);
        if (err > tol) {
            test_fail("%s[%zu] of %zu: got %.9g want %.9g (|diff| %.3g > atol %.3g + rtol %.3g "
                      "* |want|)",
                      name, i, n, g, w, err, atol, rtol);
            return 0;
        }
        if (err - tol > worst - tol) {
            worst = err;
            worst_i = i;
        }
    }
    printf("ok   %-40s n=%-8zu max|diff| %.3g at %zu\n", name, n, worst, worst_i);
    return 1;
}

int test_rel_l2(const char *name, const float *got, const float *want, size_t n, double tol)
{
    test_checked++;
    double num = 0, den = 0, maxdiff = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) {
            test_fail("%s[%zu]: non-finite value %g", name, i, got[i]);
            return 0;
        }
        double d = (double)got[i] - (double)want[i];
        num += d * d;
        den += (double)want[i] * want[i];
        if (fabs(d) > maxdiff)
            maxdiff = fabs(d);
    }
    double rel = sqrt(num) / fmax(sqrt(den), 1e-30);
    if (!(rel <= tol)) {
        test_fail("%s: relative L2 error %.3g > %.3g (max|diff| %.3g, ||want|| %.3g)", name, rel,
                  tol, maxdiff, sqrt(den));
        return 0;
    }
    printf("ok   %-40s n=%-8zu rel-L2 %.3g  max|diff| %.3g\n", name, n, rel, maxdiff);
    return 1;
}

int test_failures(void)
{
    return test_failed;
}

/* Every HDF5 object this process opened must be closed by now, error paths included: a
 * file left open is closed (and flushed) by the library's clean-up at exit, which crashed
 * after a failed write. Names the files still open. */
static void check_hdf5_closed(void)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n <= 0)
        return;
    hid_t ids[16];
    ssize_t files = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_FILE, 16, ids);
    char names[1024] = "";
    for (ssize_t i = 0; i < files; i++) {
        char name[256] = "?";
        H5Fget_name(ids[i], name, sizeof name);
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "", name);
    }
    test_fail("%zd HDF5 object(s) still open at the end (files: %s): a handle leaked", n,
              files > 0 ? names : "none");
}

int test_finish(const char *suite)
{
    check_hdf5_closed();
    printf("%s: %d checks, %d failed\n", suite, test_checked, test_failed);
    return test_failed ? 1 : 0;
}

int test_run_program(const char *cmd, char *out, size_t outlen)
{
    char full[8192], drop[4096];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    fflush(NULL); /* the child's output comes after ours */
    FILE *p = popen(full, "r");
    if (!p) {
        test_fail("cannot run '%s'", cmd);
        return -1;
    }
    size_t n = 0;
    while (out && outlen > 0 && n < outlen - 1) {
        size_t k = fread(out + n, 1, outlen - 1 - n, p);
        if (k == 0)
            break;
        n += k;
    }
    if (out && outlen > 0)
        out[n] = '\0';
    while (fread(drop, 1, sizeof drop, p) > 0) {
    }
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) >= 128) {
        int sig = st == -1 ? 0 : WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st) - 128;
        test_fail("'%s' was killed by signal %d (status %#x): a crash, never an expected exit", cmd,
                  sig, (unsigned)st);
        return -1;
    }
    return WEXITSTATUS(st);
}

struct backend *test_gpu_backend(char *err, size_t errlen)
{
    /* plain float32 convolutions, read once by cuda_backend_create */
    setenv("DDIM_CUDNN_NO_TF32", "1", 1);
#ifdef DDIM_CUDA_EMU
    return backend_cuda_emu_create(err, errlen);
#else
    return cuda_backend_create(0, err, errlen);
#endif
}

static unsigned char test_ops_ran[BACKEND_OP_COUNT];

void test_op_ran(int op)
{
    if (op >= 0 && op < BACKEND_OP_COUNT)
        test_ops_ran[op] = 1;
}

int test_ops_checked(const struct backend *be, unsigned needs)
{
    int missing = 0, absent = 0;
    for (int op = 0; op < BACKEND_OP_COUNT; op++) {
        if (!(needs & (1u << backend_op_need_of((enum backend_op_id)op))) || test_ops_ran[op])
            continue;
        if (!backend_has_op(be, (enum backend_op_id)op)) {
            printf("note %s: not on the %s backend, not checked here\n",
                   backend_op_name((enum backend_op_id)op), be->name);
            absent++;
            continue;
        }
        test_fail("op %s of the op list (src/base/backend.h) has no check in this test: add "
                  "one that runs it on both backends (ON_TESTED)",
                  backend_op_name((enum backend_op_id)op));
        missing++;
    }
    if (!missing)
        printf("ok   every op of the list's needs %#x is checked (%d not on this backend)\n", needs,
               absent);
    return missing;
}

/* Backend buffer of n floats holding host values (or NaN where host is NULL). */
static float *epi_buffer(struct backend *be, const float *host, size_t n)
{
    float *p = be->alloc(be, n * sizeof(float));
    if (host)
        be->upload(be, p, host, n * sizeof(float));
    else
        be->fill(be, p, NAN, n);
    return p;
}

static void epi_expect_same(struct backend *be, const char *what, const struct conv_shape *s,
                            const float *got, const float *want, size_t n)
{
    float *hg = malloc(n * sizeof(float)), *hw = malloc(n * sizeof(float));
    be->download(be, hg, got, n * sizeof(float));
    be->download(be, hw, want, n * sizeof(float));
    char name[160];
    snprintf(name, sizeof name, "%s conv epilogue %s (k=%d %d->%d): bits of the ops apart",
             be->name, what, s->k, s->cin, s->cout);
    test_close(name, hg, hw, n, 0.0f, 0.0f);
    if (memcmp(hg, hw, n * sizeof(float)) != 0)
        test_fail("%s: the bits differ", name);
    free(hg), free(hw);
}

void test_conv_epilogue(struct backend *be, const struct conv_shape *s)
{
    size_t nx = (size_t)s->n * s->h * s->w * s->cin, ny = (size_t)s->n * s->h * s->w * s->cout;
    size_t nw = (size_t)conv_kh(s) * conv_kw(s) * s->cin * s->cout;
    float *hx = test_alloc_normal(nx, 1.0f), *hw = test_alloc_normal(nw, 0.5f);
    float *hb = test_alloc_normal((size_t)s->cout, 0.5f), *hr = test_alloc_normal(ny, 2.0f);
    float *x = epi_buffer(be, hx, nx), *w = epi_buffer(be, hw, nw);
    float *b = epi_buffer(be, hb, (size_t)s->cout), *res = epi_buffer(be, hr, ny);
    float *y = epi_buffer(be, NULL, ny), *act = epi_buffer(be, NULL, ny);
    float *ref = epi_buffer(be, NULL, ny), *ref_sum = epi_buffer(be, NULL, ny);
    float *ref_act = epi_buffer(be, NULL, ny);
    /* apart: the convolution, the add (the convolution as in0, as the U-Net builds it),
     * the swish of the sum and of the plain output */
    be->conv2d_forward(be, ref, x, w, b, s, NULL);
    be->add(be, ref_sum, ref, res, ny);
    struct conv_epilogue epi = {res, NULL};
    be->conv2d_forward(be, y, x, w, b, s, &epi);
    epi_expect_same(be, "residual", s, y, ref_sum, ny);
    be->swish_forward(be, ref_act, ref, ny);
    epi = (struct conv_epilogue){NULL, act};
    be->conv2d_forward(be, y, x, w, b, s, &epi);
    epi_expect_same(be, "swish: y", s, y, ref, ny);
    epi_expect_same(be, "swish: swish(y)", s, act, ref_act, ny);
    be->swish_forward(be, ref_act, ref_sum, ny);
    be->fill(be, act, NAN, ny);
    epi = (struct conv_epilogue){res, act};
    be->conv2d_forward(be, y, x, w, b, s, &epi);
    epi_expect_same(be, "residual and swish: y", s, y, ref_sum, ny);
    epi_expect_same(be, "residual and swish: swish(y)", s, act, ref_act, ny);
    float *bufs[] = {x, w, b, res, y, act, ref, ref_sum, ref_act};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        be->free(be, bufs[i]);
    free(hx), free(hw), free(hb), free(hr);
}
