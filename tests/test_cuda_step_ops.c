/* test_cuda_step_ops.c: part of test_cuda_ops (and test_cuda_emu): the ops a training step
 * feeds from its int32 counters in backend memory (backend.h), CUDA against the CPU: the
 * random draws with their step from a counter, counters_add and copy_to_slot, AdamW with its
 * scalars from a table at a counter, the EMA, and the resident data's gather from a counter's
 * index. The tolerances are test_cuda_ops.c's (test_cuda_pairs.h). */
#include "backend.h"
#include "optim_math.h"
#include "test_cuda_pairs.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* int32 counters (backend.h) with the same values on both backends */
struct counters {
    int32_t *c, *g;
    int n;
};

static struct counters counters_from(const int32_t *host, int n)
{
    struct counters k = {cpu->alloc(cpu, (size_t)n * sizeof(int32_t)),
                         ON_TESTED(gpu, alloc)(gpu, (size_t)n * sizeof(int32_t)), n};
    memcpy(k.c, host, (size_t)n * sizeof(int32_t));
    ON_TESTED(gpu, upload)(gpu, k.g, host, (size_t)n * sizeof(int32_t));
    return k;
}

static void counters_free(struct counters *k)
{
    cpu->free(cpu, k->c);
    ON_TESTED(gpu, free)(gpu, k->g);
}

static void test_random(int n, size_t per)
{
    size_t total = (size_t)n * per;
    uint64_t seed = 0x0123456789ABCDEFull;
    struct pair x = pair_poisoned(total);
    cpu->fill_normal(cpu, x.c, n, per, seed, 7, RNG_TRAIN_NOISE, 5, NULL);
    ON_TESTED(gpu, fill_normal)(gpu, x.g, n, per, seed, 7, RNG_TRAIN_NOISE, 5, NULL);
    check("fill_normal", &x, 1e-5f, TRANS_RTOL);
    struct pair u = pair_poisoned(total);
    cpu->fill_uniform(cpu, u.c, n, per, seed, 3, RNG_TRAIN_TIME, 11, NULL);
    ON_TESTED(gpu, fill_uniform)(gpu, u.g, n, per, seed, 3, RNG_TRAIN_TIME, 11, NULL);
    check("fill_uniform", &u, 0, 0);
    /* the step from a counter in backend memory: 1 + 6 on the GPU against 7 on the CPU */
    const int32_t six = 6, two = 2;
    struct counters k6 = counters_from(&six, 1), k2 = counters_from(&two, 1);
    ON_TESTED(gpu, fill)(gpu, x.g, NAN, total), ON_TESTED(gpu, fill)(gpu, u.g, NAN, total);
    ON_TESTED(gpu, fill_normal)(gpu, x.g, n, per, seed, 1, RNG_TRAIN_NOISE, 5, k6.g);
    check("fill_normal, step from a counter", &x, 1e-5f, TRANS_RTOL);
    ON_TESTED(gpu, fill_uniform)(gpu, u.g, n, per, seed, 1, RNG_TRAIN_TIME, 11, k2.g);
    check("fill_uniform, step from a counter", &u, 0, 0);
    counters_free(&k6), counters_free(&k2);
    pair_free(&x), pair_free(&u);
}

/* counters_add and copy_to_slot, exact */
static void test_counters(void)
{
    const int32_t c0[4] = {5, 64, 0, 2}, by[4] = {1, 64, 1, 1};
    struct counters c = counters_from(c0, 4), b = counters_from(by, 4);
    struct pair hist = pair_poisoned(8), src = pair_normal(2, 1.0f);
    for (int i = 0; i < 2; i++) {
        cpu->copy_to_slot(cpu, hist.c, c.c + 3, src.c, 2);
        ON_TESTED(gpu, copy_to_slot)(gpu, hist.g, c.g + 3, src.g, 2);
        cpu->counters_add(cpu, c.c, b.c, 4);
        ON_TESTED(gpu, counters_add)(gpu, c.g, b.g, 4);
    }
    int32_t got[4];
    ON_TESTED(gpu, download)(gpu, got, c.g, sizeof got);
    if (memcmp(got, c.c, sizeof got) != 0 || c.c[1] != 64 + 2 * 64 || c.c[3] != 4)
        test_fail("counters_add: cuda {%d,%d,%d,%d}, cpu {%d,%d,%d,%d} (want 7,192,2,4)", got[0],
                  got[1], got[2], got[3], c.c[0], c.c[1], c.c[2], c.c[3]);
    cpu->fill(cpu, hist.c, 0.0f, 4),
        ON_TESTED(gpu, fill)(gpu, hist.g, 0.0f, 4); /* slots 0, 1 untouched */
    check("copy_to_slot slots 2 and 3", &hist, 0, 0);
    counters_free(&c), counters_free(&b);
    pair_free(&hist), pair_free(&src);
}

static void test_optimizer(size_t n)
{
    struct pair w = pair_normal(n, 0.2f), m = pair_normal(n, 0.01f);
    struct pair v = pair_uniform(n, 0.0f, 1e-3f), ema = pair_normal(n, 0.2f);
    /* steps 3 and 4's scalars at table entries 1 and 2, picked by a counter */
    struct adamw_scalars table[3];
    for (int k = 0; k < 3; k++)
        table[k] = adamw_scalars_for_step(1e-3f, 0.9f, 0.999f, 1e-7f, 1e-4f, 2 + k);
    struct adamw_scalars *tc = cpu->alloc(cpu, sizeof table),
                         *tg = ON_TESTED(gpu, alloc)(gpu, sizeof table);
    memcpy(tc, table, sizeof table);
    ON_TESTED(gpu, upload)(gpu, tg, table, sizeof table);
    const int32_t one = 1;
    struct counters index = counters_from(&one, 1), inc = counters_from(&one, 1);
    for (int step = 3; step <= 4; step++) {
        struct pair g = pair_normal(n, 0.05f);
        cpu->adamw_update(cpu, w.c, g.c, m.c, v.c, n, tc, index.c);
        ON_TESTED(gpu, adamw_update)(gpu, w.g, g.g, m.g, v.g, n, tg, index.g);
        cpu->ema_update(cpu, ema.c, w.c, n, 0.999f);
        ON_TESTED(gpu, ema_update)(gpu, ema.g, w.g, n, 0.999f);
        cpu->counters_add(cpu, index.c, inc.c, 1);
        ON_TESTED(gpu, counters_add)(gpu, index.g, inc.g, 1);
        pair_free(&g);
    }
    counters_free(&index), counters_free(&inc);
    cpu->free(cpu, tc), ON_TESTED(gpu, free)(gpu, tg);
    check("adamw_update w (2 steps)", &w, EXACT_ATOL, EXACT_RTOL);
    check("adamw_update m", &m, EXACT_ATOL, EXACT_RTOL);
    check("adamw_update v", &v, EXACT_ATOL, EXACT_RTOL);
    check("ema_update", &ema, EXACT_ATOL, EXACT_RTOL);
    pair_free(&w), pair_free(&m), pair_free(&v), pair_free(&ema);
}

/* The resident data's gather: the same uint8 images and int32 indices on both backends
 * (indices repeated, out of order, the last image included); u / 255 is one correctly
 * rounded float32 division on both, so the bits must match. Then again from an offset into
 * the indices, as the training step passes it (a counter: b*global_batch + first_example). */
static void test_gather_images(int count, int n, size_t per)
{
    size_t bytes = (size_t)count * per;
    uint8_t *h = malloc(bytes);
    int32_t *hidx = malloc((size_t)n * sizeof(int32_t));
    for (size_t k = 0; k < bytes; k++)
        h[k] = (uint8_t)fminf(test_uniform(0.0f, 256.0f), 255.0f);
    h[0] = 0, h[1] = 255, h[bytes - 1] = 255;
    for (int i = 0; i < n; i++)
        hidx[i] = (int32_t)((i * 7 + 3) % count);
    hidx[n - 1] = count - 1;
    uint8_t *ic = cpu->alloc(cpu, bytes), *ig = ON_TESTED(gpu, alloc)(gpu, bytes);
    int32_t *xc = cpu->alloc(cpu, (size_t)n * sizeof(int32_t));
    int32_t *xg = ON_TESTED(gpu, alloc)(gpu, (size_t)n * sizeof(int32_t));
    memcpy(ic, h, bytes);
    ON_TESTED(gpu, upload)(gpu, ig, h, bytes);
    memcpy(xc, hidx, (size_t)n * sizeof(int32_t));
    ON_TESTED(gpu, upload)(gpu, xg, hidx, (size_t)n * sizeof(int32_t));

    char name[96];
    struct pair out = pair_poisoned((size_t)n * per);
    cpu->gather_images(cpu, out.c, ic, xc, NULL, n, per);
    ON_TESTED(gpu, gather_images)(gpu, out.g, ig, xg, NULL, n, per);
    snprintf(name, sizeof name, "gather_images count=%d n=%d per=%zu", count, n, per);
    check(name, &out, 0, 0);
    int32_t skip = n / 3;
    struct counters first = counters_from(&skip, 1);
    cpu->fill(cpu, out.c, NAN, out.n), ON_TESTED(gpu, fill)(gpu, out.g, NAN, out.n);
    cpu->gather_images(cpu, out.c, ic, xc + skip, NULL, n - skip, per);
    ON_TESTED(gpu, gather_images)(gpu, out.g, ig, xg, first.g, n - skip, per);
    counters_free(&first);
    cpu->fill(cpu, out.c + (size_t)(n - skip) * per, 0.0f, (size_t)skip * per); /* not written */
    ON_TESTED(gpu, fill)(gpu, out.g + (size_t)(n - skip) * per, 0.0f, (size_t)skip * per);
    snprintf(name, sizeof name, "gather_images from index %d", skip);
    check(name, &out, 0, 0);
    pair_free(&out);
    cpu->free(cpu, ic), ON_TESTED(gpu, free)(gpu, ig), cpu->free(cpu, xc),
        ON_TESTED(gpu, free)(gpu, xg);
    free(h), free(hidx);
}

void test_step_ops(void)
{
    test_random(3, 1001); /* per not a multiple of 4: partial Philox blocks */
    test_optimizer(12345);
    test_counters();
    test_gather_images(10, 16, 16 * 16 * 3);
    test_gather_images(5, 3, 1001);          /* per odd, n < count */
    test_gather_images(40, 64, 64 * 64 * 3); /* a flowers64 batch of 64 */
}
