/* test_rng.c: the Philox streams (src/base/rng.h) through the backend's fill ops: Random123's
 * published known answers, determinism in (seed, step, purpose, example, element),
 * independence of the example offset and count, and the moments of the distributions. */
#include "backend.h"
#include "rng.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct backend *be;

static const double pi_d = 3.14159265358979323846;

/* --- random numbers ------------------------------------------------------------------- */

static void check_rng_streams(int normal)
{
    enum { EX = 4, PER = 37, WIDE = 50 };
    const char *kind = normal ? "fill_normal" : "fill_uniform";
    void (*fill)(struct backend *, float *, int, size_t, uint64_t, uint32_t, uint32_t, uint32_t,
                 const int32_t *) = normal ? be->fill_normal : be->fill_uniform;
    const uint64_t seed = 0x123456789abcull;
    int failures = test_failures();
    float a[EX * WIDE], b[EX * WIDE], part[2 * PER];
    fill(be, a, EX, PER, seed, 7, RNG_TRAIN_NOISE, 0, NULL);
    fill(be, b, EX, PER, seed, 7, RNG_TRAIN_NOISE, 0, NULL);
    if (memcmp(a, b, sizeof(float) * EX * PER) != 0)
        test_fail("%s: two identical calls differ", kind);
    /* the step from a counter: step + *step_add, the same draw (and a wrong one differs) */
    const int32_t four = 4, five = 5;
    fill(be, b, EX, PER, seed, 3, RNG_TRAIN_NOISE, 0, &four);
    if (memcmp(a, b, sizeof(float) * EX * PER) != 0)
        test_fail("%s: step 3 + counter 4 differs from step 7", kind);
    fill(be, b, EX, PER, seed, 3, RNG_TRAIN_NOISE, 0, &five);
    if (memcmp(a, b, sizeof(float) * EX * PER) == 0)
        test_fail("%s: step 3 + counter 5 draws step 7's numbers", kind);
    /* examples 2, 3 drawn alone from first = 2 (another rank's share) */
    fill(be, part, 2, PER, seed, 7, RNG_TRAIN_NOISE, 2, NULL);
    if (memcmp(part, a + 2 * PER, sizeof part) != 0)
        test_fail("%s: examples 2..3 depend on how many examples are filled or on first", kind);
    /* element j of example i does not depend on the row length either */
    fill(be, b, EX, WIDE, seed, 7, RNG_TRAIN_NOISE, 0, NULL);
    for (int i = 0; i < EX; i++)
        if (memcmp(a + i * PER, b + i * WIDE, sizeof(float) * PER) != 0)
            test_fail("%s: example %d depends on the elements per example", kind, i);
    /* the same function as rng.h's, argument for argument (the CUDA backend uses rng.h) */
    int mism = 0;
    for (int i = 0; i < EX; i++)
        for (int j = 0; j < PER; j++) {
            float r = normal ? rng_normal(seed, RNG_TRAIN_NOISE, 7, (uint32_t)i, (uint32_t)j)
                             : rng_uniform(seed, RNG_TRAIN_NOISE, 7, (uint32_t)i, (uint32_t)j);
            mism += a[i * PER + j] != r;
        }
    if (mism)
        test_fail("%s: %d elements differ from rng.h (seed, purpose, step, example, j)", kind,
                  mism);
    /* any change of seed (low or high word), step, purpose or example gives other numbers */
    struct {
        const char *what;
        uint64_t seed;
        uint32_t step, purpose, first;
    } other[] = {{"seed+1", seed + 1, 7, RNG_TRAIN_NOISE, 0},
                 {"seed high word", seed ^ (1ull << 40), 7, RNG_TRAIN_NOISE, 0},
                 {"step", seed, 8, RNG_TRAIN_NOISE, 0},
                 {"purpose", seed, 7, RNG_VAL_NOISE, 0},
                 {"step<->purpose", seed, RNG_TRAIN_NOISE, 7, 0},
                 {"example", seed, 7, RNG_TRAIN_NOISE, 1}};
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        fill(be, b, EX - 1, PER, other[k].seed, other[k].step, other[k].purpose, other[k].first,
             NULL);
        int eq = 0;
        for (int i = 0; i < (EX - 1) * PER; i++)
            eq += a[i] == b[i];
        if (eq > 1)
            test_fail("%s: changing %s leaves %d of %d elements equal", kind, other[k].what, eq,
                      (EX - 1) * PER);
    }
    if (test_failures() == failures)
        printf("ok   %s: deterministic, first/count/length independent, streams distinct\n", kind);
}

static void check_rng_moments(void)
{
    enum { EX = 100, PER = 1000, N = EX * PER };
    float *x = test_alloc_zeros(N);
    be->fill_normal(be, x, EX, PER, 42, 3, RNG_TRAIN_NOISE, 5, NULL);
    double s = 0, ss = 0, lag = 0, cross = 0;
    for (int i = 0; i < N; i++) {
        s += x[i], ss += (double)x[i] * x[i];
        if (i % PER + 1 < PER)
            lag += (double)x[i] * x[i + 1]; /* the Box-Muller cos/sin partner */
        if (i + PER < N)
            cross += (double)x[i] * x[i + PER]; /* same j, next example */
    }
    double mean = s / N, var = ss / N - mean * mean;
    lag /= (double)EX * (PER - 1), cross /= (double)N - PER;
    if (!(fabs(mean) < 0.02 && fabs(var - 1) < 0.03 && fabs(lag) < 0.02 && fabs(cross) < 0.02))
        test_fail("fill_normal moments: mean %.4f var %.4f lag-1 corr %.4f cross-example corr "
                  "%.4f (want |mean|,|corr| < 0.02, |var-1| < 0.03)",
                  mean, var, lag, cross);
    else
        printf("ok   fill_normal 1e5: mean %.4f var %.4f lag-1 %.4f cross %.4f\n", mean, var, lag,
               cross);
    be->fill_uniform(be, x, EX, PER, 42, 3, RNG_TRAIN_TIME, 0, NULL);
    double lo = 1, hi = 0;
    s = ss = 0;
    for (int i = 0; i < N; i++) {
        s += x[i], ss += (double)x[i] * x[i];
        lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
    }
    mean = s / N, var = ss / N - mean * mean;
    if (!(lo > 0 && hi < 1 && fabs(mean - 0.5) < 0.01 && fabs(var - 1.0 / 12) < 0.005))
        test_fail("fill_uniform 1e5: min %g max %g mean %.4f var %.4f (want (0,1), 0.5, 1/12)", lo,
                  hi, mean, var);
    else
        printf("ok   fill_uniform 1e5: in (%g, %g), mean %.4f var %.4f\n", lo, hi, mean, var);
    free(x);
}

/* Random123's published known answers for Philox4x32-10 (kat_vectors): counter {0,0,0,0},
 * key {0,0} and the pi-digits counter/key. Counter = {j/4, example, step, purpose}, key =
 * the seed's low and high words (rng.h). */
static void check_rng_known_answers(void)
{
    const uint32_t zero[4] = {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u};
    const uint32_t pi[4] = {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u};
    float u[4], want[4];
    be->fill_uniform(be, u, 1, 4, 0, 0, 0, 0, NULL);
    for (int q = 0; q < 4; q++)
        want[q] = rng_u01(zero[q]);
    test_close("philox zero-vector KAT via fill_uniform", u, want, 4, 0.0f, 0.0f);
    float nrm[2];
    be->fill_normal(be, nrm, 1, 2, 0, 0, 0, 0, NULL);
    double r = sqrt(-2.0 * log((double)rng_u01(zero[0])));
    float wn[2] = {(float)(r * cos(2 * pi_d * rng_u01(zero[1]))),
                   (float)(r * sin(2 * pi_d * rng_u01(zero[1])))};
    test_close("philox zero-vector Box-Muller pair", nrm, wn, 2, 1e-5f, 1e-5f);
    philox4x32_ctr_t c =
        rng_block(0x299f31d0a4093822ull, 0x03707344u, 0x13198a2eu, 0x85a308d3u, 0x243f6a88u);
    int ok = 1;
    for (int q = 0; q < 4; q++)
        ok &= c.v[q] == pi[q];
    if (!ok)
        test_fail("philox pi-vector KAT: got %08x %08x %08x %08x", c.v[0], c.v[1], c.v[2], c.v[3]);
}

int main(void)
{
    be = cpu_backend_create();
    test_seed(99);
    check_rng_streams(1);
    check_rng_streams(0);
    check_rng_moments();
    check_rng_known_answers();
    be->destroy(be);
    return test_finish("test_rng");
}
