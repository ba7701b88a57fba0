/* test_op_values.c: test_op_semantics's known values (b), one program with
 * test_op_semantics.c, whose main runs them after the write/accumulate contracts (a): upsample2
 * worked out by hand from TF's half-pixel rule, avgpool2, the sinusoidal embedding,
 * BatchNorm statistics and moving averages, AdamW against Keras's formula in double, EMA,
 * the diffusion schedule, (de)normalization, the losses, mixing, and the resident data's
 * gather. */
#include "test_op_semantics.h"

#include "backend.h"
#include "optim_math.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double pi_d = 3.14159265358979323846;

/* test_close with a printf-style label */
static void close_fmt(const float *got, const float *want, size_t n, float atol, float rtol,
                      const char *fmt, const char *arg, int iarg)
{
    char label[160];
    snprintf(label, sizeof label, fmt, arg, iarg);
    test_close(label, got, want, n, atol, rtol);
}

/* --- (b) known values ----------------------------------------------------------------- */

/* TF half-pixel rule, doubling: output o reads src = (o + 0.5)/2 - 0.5, i.e. -0.25, 0.25,
 * 0.75, 1.25, ... with taps floor/ceil clamped to the edge. Along an axis of 2 values a, b:
 * [a, a + (b-a)/4, a + 3(b-a)/4, b]. For [[1,2],[3,4]]: rows are 1..2 and 3..4 expanded,
 * and the four output rows mix them with weights 1, 3/4 1/4, 1/4 3/4, 1. */
static void check_upsample_known(void)
{
    const float x[4] = {1, 2, 3, 4};
    const float want[16] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                            2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
    float y[16];
    be->upsample2_forward(be, y, x, 1, 2, 2, 1);
    test_close("upsample2 [[1,2],[3,4]] known values", y, want, 16, 1e-6f, 0.0f);

    /* 1x3 with two channels (the second -10x the first): [0, 3, 6] -> src -0.25 .. 2.25 ->
     * [0, 0.75, 2.25, 3.75, 5.25, 6] on both output rows; channels stay separate */
    const float x2[6] = {0, -0, 3, -30, 6, -60};
    const float row[6] = {0, 0.75f, 2.25f, 3.75f, 5.25f, 6.0f};
    float want2[24], y2[24];
    for (int r = 0; r < 2; r++)
        for (int o = 0; o < 6; o++) {
            want2[(r * 6 + o) * 2] = row[o];
            want2[(r * 6 + o) * 2 + 1] = -10.0f * row[o];
        }
    be->upsample2_forward(be, y2, x2, 1, 1, 3, 2);
    test_close("upsample2 1x3 c2 known values", y2, want2, 24, 1e-5f, 0.0f);
}

static void check_avgpool_known(void)
{
    /* 1x2x4x2: channel 0 [[1,2,3,4],[5,6,7,8]], channel 1 = -channel 0 * 2 */
    float x[16], y[4];
    for (int i = 0; i < 8; i++) {
        x[2 * i] = (float)(i + 1);
        x[2 * i + 1] = -2.0f * (float)(i + 1);
    }
    const float want[4] = {3.5f, -7.0f, 5.5f, -11.0f};
    be->avgpool2_forward(be, y, x, 1, 2, 4, 2);
    test_close("avgpool2 known values", y, want, 4, 1e-6f, 0.0f);
}

/* Direct double computation of [sin(2 pi f_k v), cos(2 pi f_k v)]. The op works in float32
 * in TensorFlow's order: linspace, exp and 2*pi*f each round, so f_k carries a few 1e-7
 * of relative error, which at arguments up to 2*pi*1000 (v = 1) is up to ~1e-3 radians
 * (measured: 9e-4 at v = 1, k = 14, so a flat 1e-3 would leave no margin). The full range
 * gets 1e-4 + 1e-6*|arg| (6e-3 at v = 1, 4e-4 at v = 0.02), small variances (|arg| < 7) a
 * tight 2e-6 that catches even a 1e-5 relative frequency error. Broadcast over h*w must
 * be exact. */
static void check_embedding(void)
{
    const float v[6] = {0.0f, 1e-4f, 1e-3f, 0.02f, 0.37f, 1.0f};
    int n = 6, h = 2, w = 3, dims = 32, half = dims / 2;
    float *e = filled((size_t)n * h * w * dims, NAN);
    be->sinusoidal_embedding(be, e, v, n, h, w, dims, 1.0f, 1000.0f);
    int bad = 0;
    double worst_small = 0, worst = 0;
    for (int i = 0; i < n; i++) {
        const float *row = e + (size_t)i * h * w * dims;
        for (int k = 0; k < half; k++) {
            double f = exp(log(1.0) + k * (log(1000.0) - log(1.0)) / (half - 1));
            double arg = 2.0 * pi_d * f * (double)v[i];
            double es = fabs(row[k] - sin(arg)), ec = fabs(row[half + k] - cos(arg));
            double err = fmax(es, ec), tol = v[i] <= 1e-3f ? 2e-6 : 1e-4 + 1e-6 * arg;
            if (v[i] <= 1e-3f)
                worst_small = fmax(worst_small, err);
            worst = fmax(worst, err / tol);
            if (!(err <= tol) && bad++ < 5)
                test_fail("embedding v=%g k=%d: sin %.7f want %.7f, cos %.7f want %.7f (tol %.2g)",
                          v[i], k, row[k], sin(arg), row[half + k], cos(arg), tol);
        }
        for (int p = 1; p < h * w; p++)
            if (memcmp(row, row + (size_t)p * dims, (size_t)dims * sizeof(float)) != 0 && !bad++)
                test_fail("embedding v=%g: pixel %d differs from pixel 0", v[i], p);
    }
    if (!bad)
        printf("ok   sinusoidal embedding vs double: small-v max err %.3g, worst err/tol %.3g\n",
               worst_small, worst);
    free(e);
}

/* BatchNorm training: batch mean and biased variance normalize; the moving variance gets
 * the unbiased (count/(count-1)) variance. count = 2*rows with doubled sums is what two
 * ranks holding the same data all-reduce: the statistics must use count, not rows. */
static void check_bn_known(void)
{
    enum { ROWS = 10, C = 3 };
    float x[ROWS * C], y[ROWS * C], stats[2 * C], saved[2 * C], want[ROWS * C];
    test_fill_normal(x, ROWS * C, 1.5f);
    for (int ranks = 1; ranks <= 2; ranks++) {
        const float mm0[C] = {0.3f, -1.0f, 2.0f}, mv0[C] = {1.0f, 0.5f, 3.0f};
        float mm[C], mv[C];
        memcpy(mm, mm0, sizeof mm);
        memcpy(mv, mv0, sizeof mv);
        float wmm[C], wmv[C], wsaved[2 * C];
        double count = (double)ROWS * ranks;
        be->bn_stats(be, stats, x, ROWS, C);
        for (int j = 0; j < 2 * C; j++)
            stats[j] *= (float)ranks;
        be->bn_forward_train(be, y, saved, mm, mv, x, stats, count, ROWS, C, 0.9f, 1e-3f);
        for (int j = 0; j < C; j++) {
            double s = 0, ss = 0;
            for (int r = 0; r < ROWS; r++)
                s += x[r * C + j];
            double mean = s / ROWS;
            for (int r = 0; r < ROWS; r++)
                ss += (x[r * C + j] - mean) * (x[r * C + j] - mean);
            double var = ss / ROWS, invstd = 1.0 / sqrt(var + 1e-3);
            for (int r = 0; r < ROWS; r++)
                want[r * C + j] = (float)((x[r * C + j] - mean) * invstd);
            wsaved[j] = (float)mean;
            wsaved[C + j] = (float)invstd;
            wmm[j] = (float)(0.9 * mm0[j] + 0.1 * mean);
            wmv[j] = (float)(0.9 * mv0[j] + 0.1 * var * count / (count - 1));
        }
        int cnt = (int)count;
        close_fmt(y, want, ROWS * C, 2e-6f, 2e-5f, "bn_forward_train %s (count %d)", "y", cnt);
        close_fmt(saved, wsaved, 2 * C, 1e-6f, 1e-5f, "bn_forward_train %s (count %d)", "saved",
                  cnt);
        close_fmt(mm, wmm, C, 1e-6f, 1e-5f, "bn %s (count %d)", "moving_mean", cnt);
        close_fmt(mv, wmv, C, 1e-6f, 1e-5f, "bn %s (count %d)", "moving_var, count/(count-1)", cnt);
    }
    /* inference: the moving statistics, with epsilon inside the square root */
    const float xm[2 * C] = {1.0f, 2.0f, -3.0f, 0.5f, 0.0f, 4.0f};
    const float mm[C] = {0.5f, 1.0f, -1.0f}, mv[C] = {0.999f, 3.999f, 0.249f};
    const float wi[2 * C] = {0.5f, 0.5f, -4.0f, 0.0f, -0.5f, 10.0f};
    float yi[2 * C];
    be->bn_forward_infer(be, yi, xm, mm, mv, 2, C, 1e-3f);
    test_close("bn_forward_infer known values", yi, wi, 2 * C, 1e-6f, 1e-5f);
}

/* Keras AdamW.update_step, in double with the float32 hyperparameters: decay first
 * (w -= w*wd*lr), then m += (g-m)(1-b1), v += (g^2-v)(1-b2),
 * w -= m*lr*sqrt(1-b2^t)/(1-b1^t) / (sqrt(v) + eps). Large lr and wd and some tiny
 * gradients (where eps dominates sqrt(v)) make order, bias correction and the place of
 * eps all visible; float32 rounding stays ~1e-7 relative. */
static void check_adamw(void)
{
    enum { N = 64 };
    const float lr = 0.05f, b1 = 0.9f, b2 = 0.999f, eps = 1e-7f, wd = 0.2f;
    float w[N], m[N] = {0}, v[N] = {0}, g[N], fw[N], fm[N], fv[N];
    double dw[N], dm[N] = {0}, dv[N] = {0}, dm_abs[N] = {0}; /* |terms| of m: its scale */
    test_fill_normal(w, N, 1.0f);
    for (int i = 0; i < N; i++)
        dw[i] = w[i];
    for (int t = 1; t <= 3; t++) {
        test_fill_normal(g, N, 1.0f);
        for (int i = 0; i < N; i += 4)
            g[i] *= 1e-7f;
        struct adamw_scalars table[2] = {adamw_scalars_for_step(lr, b1, b2, eps, wd, t + 1),
                                         adamw_scalars_for_step(lr, b1, b2, eps, wd, t)};
        const int32_t entry = 1; /* the table's entry for step t, picked by a counter */
        be->adamw_update(be, w, g, m, v, N, table, &entry);
        double alpha = lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t));
        for (int i = 0; i < N; i++) {
            dw[i] -= dw[i] * wd * lr;
            dm[i] += (g[i] - dm[i]) * (1.0 - b1);
            dm_abs[i] = dm_abs[i] * b1 + fabs(g[i]) * (1.0 - b1);
            dv[i] += ((double)g[i] * g[i] - dv[i]) * (1.0 - b2);
            dw[i] -= dm[i] * alpha / (sqrt(dv[i]) + eps);
            fw[i] = (float)dw[i], fm[i] = (float)dm[i], fv[i] = (float)dv[i];
        }
        close_fmt(w, fw, N, 1e-6f, 1e-5f, "adamw %s after step %d", "w", t);
        /* m is a sum of terms that may cancel: its float32 rounding is relative to the
         * terms' size, not to m's */
        for (int i = 0; i < N; i++)
            if (!(fabs((double)m[i] - fm[i]) <= 1e-5 * dm_abs[i]))
                test_fail("adamw m after step %d [%d]: got %.9g want %.9g (|terms| %.3g)", t, i,
                          m[i], fm[i], dm_abs[i]);
        close_fmt(v, fv, N, 0.0f, 1e-5f, "adamw %s after step %d", "v", t);
    }
}

static void check_ema(void)
{
    enum { N = 50 };
    float ema[N], w[N], want[N];
    test_fill_normal(ema, N, 1.0f);
    test_fill_normal(w, N, 1.0f);
    const float decays[2] = {0.999f, 0.5f};
    for (int d = 0; d < 2; d++) {
        for (int i = 0; i < N; i++)
            want[i] = (float)(decays[d] * (double)ema[i] + (1.0 - decays[d]) * (double)w[i]);
        be->ema_update(be, ema, w, N, decays[d]);
        test_close(d ? "ema_update decay 0.5" : "ema_update decay 0.999", ema, want, N, 1e-6f,
                   1e-6f);
    }
}

static void check_schedule_and_mixing(void)
{
    enum { N = 5, PER = 7 };
    const float t[N] = {0.0f, 1.0f, 0.5f, 0.25f, 0.9f};
    float nr[N], sr[N], want_s[N], want_n[N], one[N], sum2[N];
    be->diffusion_schedule(be, nr, sr, t, N, 0.02f, 0.95f);
    for (int i = 0; i < N; i++) {
        double a0 = acos((double)0.95f), a1 = acos((double)0.02f);
        double a = a0 + t[i] * (a1 - a0);
        want_s[i] = (float)cos(a), want_n[i] = (float)sin(a);
        one[i] = 1.0f, sum2[i] = nr[i] * nr[i] + sr[i] * sr[i];
    }
    test_close("schedule t=0 signal rate 0.95", &sr[0], (float[]){0.95f}, 1, 1e-6f, 0.0f);
    test_close("schedule t=1 signal rate 0.02", &sr[1], (float[]){0.02f}, 1, 1e-6f, 0.0f);
    test_close("schedule signal rates vs double", sr, want_s, N, 1e-6f, 0.0f);
    test_close("schedule noise rates vs double", nr, want_n, N, 1e-6f, 0.0f);
    test_close("schedule noise^2 + signal^2 = 1", sum2, one, N, 1e-6f, 0.0f);

    /* mixing images with noises and pred_images invert each other */
    float img[N * PER], noise[N * PER], noisy[N * PER], back[N * PER], want[N * PER];
    test_fill_uniform(img, N * PER, -1.0f, 1.0f);
    test_fill_normal(noise, N * PER, 1.0f);
    be->mix(be, noisy, sr, img, nr, noise, N, PER);
    for (int i = 0; i < N * PER; i++)
        want[i] = (float)((double)sr[i / PER] * img[i] + (double)nr[i / PER] * noise[i]);
    test_close("mix = signal*images + noise*noises", noisy, want, N * PER, 1e-6f, 1e-6f);
    be->pred_images(be, back, noisy, noise, nr, sr, N, PER);
    /* dividing by signal rate 0.02 amplifies the rounding of noisy (~1e-7) 50-fold */
    test_close("pred_images inverts mix", back, img, N * PER, 1e-5f, 1e-5f);
}

static void check_normalization_and_losses(void)
{
    enum { ROWS = 40, C = 3, N = ROWS * C };
    const float mean[C] = {0.4f, 0.5f, 0.6f}, var[C] = {0.04f, 0.09f, 0.01f};
    float x[N], y[N], back[N], want[N];
    test_fill_uniform(x, N, 0.0f, 1.0f);
    be->normalize(be, y, x, mean, var, ROWS, C);
    for (int i = 0; i < N; i++)
        want[i] = (float)(((double)x[i] - mean[i % C]) / sqrt((double)var[i % C]));
    test_close("normalize vs double", y, want, N, 1e-6f, 1e-5f);
    be->denormalize(be, back, y, mean, var, ROWS, C);
    test_close("denormalize(normalize(x)) = x in [0,1]", back, x, N, 2e-7f, 1e-6f);
    /* values from outside [0, 1] come back clipped, exactly 0 or 1 */
    test_fill_uniform(x, N, -0.6f, 1.6f);
    be->normalize(be, y, x, mean, var, ROWS, C);
    be->denormalize(be, back, y, mean, var, ROWS, C);
    for (int i = 0; i < N; i++)
        want[i] = x[i] < 0 ? 0.0f : x[i] > 1 ? 1.0f : x[i];
    test_close("denormalize clips to [0,1]", back, want, N, 2e-7f, 1e-6f);
    /* Keras Normalization: a zero variance divides by epsilon 1e-7, not by 0 */
    const float zm[C] = {0, 0, 0}, zv[C] = {0, 1, 0}, zx[C] = {1e-8f, 2.0f, -3e-7f};
    const float zw[C] = {0.1f, 2.0f, -3.0f};
    float zy[C];
    be->normalize(be, zy, zx, zm, zv, 1, C);
    test_close("normalize with zero variance uses 1e-7", zy, zw, C, 0.0f, 1e-5f);

    float out[2], want2[2];
    double mae = 0, mse = 0;
    test_fill_normal(x, N, 1.0f);
    test_fill_normal(y, N, 1.0f);
    for (int i = 0; i < N; i++) {
        mae += fabs((double)x[i] - y[i]);
        mse += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    }
    be->loss_value(be, &out[0], x, y, N, LOSS_MAE);
    be->loss_value(be, &out[1], x, y, N, LOSS_MSE);
    want2[0] = (float)(mae / N), want2[1] = (float)(mse / N);
    test_close("loss_value [MAE, MSE] vs double", out, want2, 2, 0.0f, 1e-6f);
    be->square(be, back, x, N);
    for (int i = 0; i < N; i++)
        want[i] = x[i] * x[i];
    test_close("square", back, want, N, 0.0f, 0.0f);
}

/* --- the resident training set ------------------------------------------------------- */

/* gather_images: rows picked by index (repeats and any order), every uint8 value u to the
 * correctly rounded float32 u / 255 (0 and 255 to exactly 0 and 1), written over garbage,
 * nothing written past n rows. */
static void check_gather_images(void)
{
    enum { COUNT = 3, PER = 256, N = 5 };
    uint8_t images[COUNT * PER];
    for (int u = 0; u < PER; u++) {
        images[u] = (uint8_t)u;                 /* image 0: every value */
        images[PER + u] = (uint8_t)(255 - u);   /* image 1: reversed */
        images[2 * PER + u] = (uint8_t)(u % 2); /* image 2: 0 and 1 */
    }
    const int32_t idx[N] = {1, 0, 2, 0, 1};
    float *out = filled((N + 1) * PER, NAN), *want = test_alloc_zeros(N * PER);
    out[N * PER] = 1e30f; /* a row past n: must stay */
    be->gather_images(be, out, images, idx, NULL, N, PER);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < PER; j++)
            want[i * PER + j] = (float)((double)images[idx[i] * PER + j] / 255.0);
    test_close("gather_images = u/255 correctly rounded", out, want, N * PER, 0.0f, 0.0f);
    for (int i = 0; i < N; i++) /* io/dataset.c's host expression, bit for bit */
        for (int j = 0; j < PER; j++)
            want[i * PER + j] = (float)images[idx[i] * PER + j] / 255.0f;
    test_close("gather_images = dataset_read's u / 255.0f", out, want, N * PER, 0.0f, 0.0f);
    if (out[1 * PER + 0] != 0.0f || out[1 * PER + 255] != 1.0f || out[0] != 1.0f ||
        out[255] != 0.0f)
        test_fail("gather_images: 0 -> %g, 255 -> %g (want exactly 0 and 1)", out[PER],
                  out[PER + 255]);
    if (out[N * PER] != 1e30f)
        test_fail("gather_images wrote past its %d rows", N);
    /* from the index a counter holds: rows 2..4 of the gather above */
    const int32_t first = 2;
    float *part = filled(3 * PER, NAN);
    be->gather_images(be, part, images, idx, &first, 3, PER);
    test_close("gather_images from a counter's index", part, out + 2 * PER, 3 * PER, 0.0f, 0.0f);
    free(out), free(want), free(part);
}

/* counters_add advances each counter by its step; copy_to_slot writes the slot a counter
 * names and nothing else */
static void check_counters(void)
{
    int32_t c[3] = {7, 40, 1};
    const int32_t by[3] = {1, 8, 1};
    float hist[8] = {-1, -1, -1, -1, -1, -1, -1, -1}, src[2] = {0.25f, 3.5f};
    for (int i = 0; i < 2; i++) {
        be->copy_to_slot(be, hist, c + 2, src, 2);
        be->counters_add(be, c, by, 3);
    }
    const float want[8] = {-1, -1, 0.25f, 3.5f, 0.25f, 3.5f, -1, -1};
    test_close("copy_to_slot at slots 1 and 2", hist, want, 8, 0.0f, 0.0f);
    if (c[0] != 9 || c[1] != 56 || c[2] != 3)
        test_fail("counters_add: {%d, %d, %d}, want {9, 56, 3}", c[0], c[1], c[2]);
}

void test_op_values(void)
{
    check_upsample_known();
    check_avgpool_known();
    check_embedding();
    check_bn_known();
    check_adamw();
    check_ema();
    check_schedule_and_mixing();
    check_normalization_and_losses();
    check_gather_images();
    check_counters();
}
