/* test_keras_fixture.c: the C trainer against the Keras model itself.
 *
 * tools/keras_reference.py builds the Keras example's network (Keras 2 semantics), gives
 * every weight a random value, runs one train_step with fixed images, noises and times, and
 * the DDIM sampler with 1, 2 and 5 steps, and writes every tensor to an HDF5 fixture
 * (tests/data/README.md). This test loads the same weights and inputs, runs the same
 * computations and compares every tensor, naming the first one that differs.
 *
 * usage: test_keras_fixture [FIXTURE.h5] [--backend cpu|cuda] [--tf32]
 * (built again as test_keras_fixture_emu, which also takes --backend cuda-emu: the CUDA
 * backend's kernels on the host emulation, tests/cuda_emu, with plain convolutions)
 * The CUDA backend runs in exact mode (DDIM_CUDNN_NO_TF32=1, set here) and is held to the
 * CPU backend's tolerances; --tf32 runs it with TF32 tensor cores (the default of a real
 * run) against the TF32 tolerances below. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "config.h"
#include "h5_util.h"
#include "test_util.h"
#ifdef DDIM_CUDA_EMU
#include "cuda_emu_backend.h"
#endif
#include "trainer.h"
#include "util.h"
#include "weights_h5.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tolerances, as relative L2 error ||c - keras|| / ||keras|| per tensor. TensorFlow and the
 * CPU backend both compute in float32 but sum convolutions in different orders; the
 * embedding's arguments reach 2*pi*1000, where one ulp of the variance moves them ~4e-4 rad.
 * Each bound is about ten times the largest error seen on the small and the full-size
 * fixture (tests/data/README.md), so a real change of formula (a missing Bessel correction,
 * a gradient scale, an AdamW step order) fails while float32 reordering passes:
 * - INPUT-level tensors (normalization, schedule, mixing): seen 0 (bit-identical).
 * - network outputs and losses, ~40 layers: seen <= 5e-7.
 * - gradients, twice the depth with BN's mean subtractions: seen <= 2e-6.
 * - weights after one AdamW + EMA step: seen <= 3e-7.
 * - sampler, up to 5 network evaluations, denormalized and clipped: seen <= 6e-6. */
struct tolerances {
    double input, network, grad, weights, sampler;
    double max_sign_flip_fraction; /* see check_stepped_weights */
};
static const struct tolerances TOL_FLOAT32 = {1e-6, 2e-4, 1e-3, 2e-6, 2e-4, 1e-3};
/* Adam's first step from a fresh state moves a weight by lr * g / (|g| + eps/sqrt(1-b2)),
 * about lr*sign(g): where a gradient is within float32 noise of zero, our step and Keras's
 * legitimately differ by what the two gradients explain (up to 2*lr on a sign flip). Sign
 * flips must stay rare.
 *
 * TF32 (--tf32): each convolution product is formed from inputs rounded to a 10-bit
 * mantissa, unit roundoff u = 2^-11 = 4.9e-4, and accumulated in float32. With random-sign
 * terms a sum of K products then errs by about u*sqrt(2/3) = 4e-4 of its magnitude,
 * whatever K (k*k*cin <= 360 here, n*h*w = 1024 for weight gradients). Errors of
 * successive layers add up like a random walk through the BN-normalized path: the longest
 * path has 20 convolutions forward (output about 4e-4*sqrt(20) = 1.8e-3) and 40 with the
 * backward (gradients about 2.5e-3, times up to 4 where BN's mean subtraction cancels).
 * The bounds are about 4x those estimates and below the worst case of errors adding
 * linearly (20 * 4.9e-4 * 2 = 2e-2 forward):
 * - network outputs and losses 1e-2; sampler (up to 5 network evaluations) 3e-2;
 * - gradients 5e-2;
 * - weights after the step: the moving BN statistics take 1% (momentum 0.99) of batch
 *   statistics within ~1e-2, so 1e-4; the AdamW step itself is lr*sign(g) and is covered
 *   by the gradient-explained term; sign flips where |g| is within TF32 noise (5e-2 of
 *   the rms: about 4% of normal values) up to 5e-2 of all;
 * - inputs (normalization, schedule, mixing: no convolution) keep 1e-6.
 * A formula error (a wrong tap or gradient, a missing term) is of order 1 and still fails;
 * the exact-mode test catches what is finer. */
static const struct tolerances TOL_TF32 = {1e-6, 1e-2, 5e-2, 1e-4, 3e-2, 5e-2};
static const struct tolerances *tols = &TOL_FLOAT32; /* the set in use */

static char first_failure[256] = "";

static void check(const char *name, const float *got, const float *want, size_t n, double tol)
{
    if (!test_rel_l2(name, got, want, n, tol) && !first_failure[0])
        snprintf(first_failure, sizeof first_failure, "%s", name);
}

static hid_t fixture;
static const char *fixture_path;

static float *read_alloc(const char *name, size_t count)
{
    char err[512];
    float *x = util_xmalloc(count * sizeof(float));
    if (h5u_read_floats(fixture, fixture_path, name, x, count, err, sizeof err) != 0) {
        fprintf(stderr, "test_keras_fixture: %s\n", err);
        exit(1);
    }
    return x;
}

static double attr(const char *name)
{
    double v[1];
    size_t n = 1;
    char err[512];
    if (h5u_read_attr_doubles(fixture, fixture_path, "/config", name, v, &n, err, sizeof err)) {
        fprintf(stderr, "test_keras_fixture: %s\n", err);
        exit(1);
    }
    return v[0];
}

static void read_config(struct unet_config *u, struct diffusion_config *d, int *batch, int *samples)
{
    *u = config_default_model();
    *d = config_default_diffusion();
    u->image_size = (int)attr("image_size");
    double widths[UNET_MAX_LEVELS];
    size_t nw = UNET_MAX_LEVELS;
    char err[512];
    if (h5u_read_attr_doubles(fixture, fixture_path, "/config", "widths", widths, &nw, err,
                              sizeof err)) {
        fprintf(stderr, "test_keras_fixture: %s\n", err);
        exit(1);
    }
    u->num_levels = (int)nw;
    for (size_t i = 0; i < nw; i++)
        u->widths[i] = (int)widths[i];
    u->block_depth = (int)attr("block_depth");
    u->embedding_dims = (int)attr("embedding_dims");
    u->embedding_max_frequency = (float)attr("embedding_max_frequency");
    u->bn_momentum = (float)attr("bn_momentum");
    u->bn_epsilon = (float)attr("bn_epsilon");
    d->min_signal_rate = (float)attr("min_signal_rate");
    d->max_signal_rate = (float)attr("max_signal_rate");
    d->learning_rate = (float)attr("learning_rate");
    d->weight_decay = (float)attr("weight_decay");
    d->ema = (float)attr("ema");
    d->adam_beta1 = (float)attr("adam_beta_1");
    d->adam_beta2 = (float)attr("adam_beta_2");
    d->adam_epsilon = (float)attr("adam_epsilon");
    *batch = (int)attr("batch_size");
    *samples = (int)attr("num_sample_images");
}

static void load_weights(struct trainer *t, const char *group, float *dst)
{
    const struct param_table *pt = unet_params(t->net);
    float *host = util_xmalloc(pt->total * sizeof(float));
    char err[512];
    if (weights_read_h5(fixture, fixture_path, group, pt, host, 0, err, sizeof err) != 0) {
        fprintf(stderr, "test_keras_fixture: %s\n", err);
        exit(1);
    }
    t->be->upload(t->be, dst, host, pt->total * sizeof(float));
    free(host);
}

/* Compare a backend buffer with a dataset of the same size. */
static void check_buffer(struct trainer *t, const char *name, const float *buf, size_t n,
                         double tol)
{
    float *want = read_alloc(name, n), *got = util_xmalloc(n * sizeof(float));
    t->be->download(t->be, got, buf, n * sizeof(float));
    check(name, got, want, n, tol);
    free(want);
    free(got);
}

/* Compare each weight of a flat backend buffer with `group` in the fixture. */
/* The first Adam step's direction for gradient g (see tols->max_sign_flip_fraction). */
static double first_step(const struct diffusion_config *dc, double g)
{
    return g / (fabs(g) + dc->adam_epsilon / sqrt(1.0 - dc->adam_beta2));
}

/* After one AdamW step: every trainable weight within tols->weights (relative to the
 * tensor's RMS) of Keras's, plus what the difference of the two gradients explains
 * through the first Adam step; and gradient sign flips must be rare. */
static void check_stepped_weights(struct trainer *t)
{
    const struct param_table *pt = unet_params(t->net);
    float *w = util_xmalloc(pt->total * sizeof(float));
    float *g = util_xmalloc(pt->trainable * sizeof(float));
    t->be->download(t->be, w, t->w, pt->total * sizeof(float));
    t->be->download(t->be, g, t->grad, pt->trainable * sizeof(float));
    size_t flips = 0, total = 0;
    for (int i = 0; i < pt->count; i++) {
        const struct param *p = &pt->items[i];
        char name[256], gname[256];
        snprintf(name, sizeof name, "/after_step/weights/%s", p->name);
        float *want = read_alloc(name, p->count);
        if (!params_is_trainable(p->kind)) {
            check(name, w + p->offset, want, p->count, tols->weights);
            free(want);
            continue;
        }
        snprintf(gname, sizeof gname, "/grads/%s", p->name);
        float *gk = read_alloc(gname, p->count);
        double rms = 0;
        for (size_t j = 0; j < p->count; j++)
            rms += (double)want[j] * want[j];
        rms = sqrt(rms / (double)p->count);
        size_t bad = 0, tensor_flips = 0;
        for (size_t j = 0; j < p->count; j++) {
            double diff = fabs((double)w[p->offset + j] - want[j]);
            tensor_flips += (size_t)((g[p->offset + j] > 0) != (gk[j] > 0));
            double explained = t->dc.learning_rate * fabs(first_step(&t->dc, g[p->offset + j]) -
                                                          first_step(&t->dc, gk[j]));
            double bound = tols->weights * rms + 1.01 * explained;
            if (!(diff <= bound)) {
                if (!bad)
                    test_fail("%s[%zu]: got %.9g want %.9g (|diff| %.3g > %.3g; gradients %g "
                              "and %g)",
                              name, j, w[p->offset + j], want[j], diff, bound, g[p->offset + j],
                              gk[j]);
                bad++;
            }
        }
        flips += tensor_flips;
        total += p->count;
        if (bad && !first_failure[0])
            snprintf(first_failure, sizeof first_failure, "%s", name);
        else if (!bad)
            printf("ok   %-40s n=%-8zu gradient sign flips %zu\n", name, p->count, tensor_flips);
        free(want);
        free(gk);
    }
    if ((double)flips > tols->max_sign_flip_fraction * (double)total) {
        test_fail("after_step: %zu of %zu gradients differ in sign from Keras's", flips, total);
        if (!first_failure[0])
            snprintf(first_failure, sizeof first_failure, "/after_step/weights (sign flips)");
    }
    printf("after_step: %zu of %zu gradient signs differ from Keras (allowed %.0e)\n", flips, total,
           tols->max_sign_flip_fraction);
    free(w);
    free(g);
}

static void check_weights(struct trainer *t, const char *group, const float *buf,
                          int trainable_only, double tol)
{
    const struct param_table *pt = unet_params(t->net);
    float *got = util_xmalloc(pt->total * sizeof(float));
    t->be->download(t->be, got, buf, (trainable_only ? pt->trainable : pt->total) * sizeof(float));
    for (int i = 0; i < pt->count; i++) {
        const struct param *p = &pt->items[i];
        if (trainable_only && !params_is_trainable(p->kind))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s/%s", group, p->name);
        float *want = read_alloc(name, p->count);
        check(name, got + p->offset, want, p->count, tol);
        free(want);
    }
    free(got);
}

static void upload_dataset(struct trainer *t, const char *name, float *dst, size_t n)
{
    float *x = read_alloc(name, n);
    t->be->upload(t->be, dst, x, n * sizeof(float));
    free(x);
}

static void check_sampler(struct trainer *t, int samples)
{
    struct backend *be = t->be;
    size_t n = (size_t)samples * t->per_image;
    float *noise = be->alloc(be, n * sizeof(float));
    float *pred = be->alloc(be, n * sizeof(float)), *images = be->alloc(be, n * sizeof(float));
    upload_dataset(t, "/sampler/initial_noise", noise, n);
    load_weights(t, "/ema_weights",
                 t->ema_w); /* the sampler uses the EMA weights before the step */
    int steps[] = {1, 2, 5};
    for (int i = 0; i < 3; i++) {
        char name[128];
        trainer_sample(t, noise, samples, steps[i], pred, images);
        snprintf(name, sizeof name, "/sampler/steps_%d/pred_images", steps[i]);
        check_buffer(t, name, pred, n, tols->sampler);
        snprintf(name, sizeof name, "/sampler/steps_%d/images", steps[i]);
        check_buffer(t, name, images, n, tols->sampler);
    }
    be->free(be, noise);
    be->free(be, pred);
    be->free(be, images);
}

int main(int argc, char **argv)
{
    fixture_path = "tests/data/keras_small.h5";
    const char *backend_name = "cpu";
    int tf32 = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc)
            backend_name = argv[++i];
        else if (!strcmp(argv[i], "--tf32"))
            tf32 = 1;
        else
            fixture_path = argv[i];
    }
    if (tf32 && strcmp(backend_name, "cuda") != 0) {
        fprintf(stderr, "test_keras_fixture: --tf32 needs --backend cuda\n");
        return 2;
    }
    /* read once by cuda_backend_create: exact mode unless --tf32 */
    if (tf32) {
        unsetenv("DDIM_CUDNN_NO_TF32");
        tols = &TOL_TF32;
    } else {
        setenv("DDIM_CUDNN_NO_TF32", "1", 1);
    }
    char err[512];
#ifdef DDIM_CUDA_EMU /* the CUDA kernels on the CPU, plain convolutions */
    struct backend *be = !strcmp(backend_name, "cuda-emu")
                             ? backend_cuda_emu_create_with_conv(err, sizeof err)
                             : cpu_backend_create();
#else
    struct backend *be = !strcmp(backend_name, "cuda") ? cuda_backend_create(0, err, sizeof err)
                                                       : cpu_backend_create();
#endif
    if (!be) {
        printf("SKIP: %s\n", err);
        return TEST_SKIP;
    }
    fixture = h5u_open_read(fixture_path, err, sizeof err);
    if (fixture < 0) {
        fprintf(stderr, "test_keras_fixture: %s\n", err);
        return 1;
    }
    struct unet_config ucfg;
    struct diffusion_config dc;
    int batch, samples;
    read_config(&ucfg, &dc, &batch, &samples);
    struct comm *comm = comm_single();
    struct trainer *t = trainer_create(be, comm, &ucfg, &dc, batch, batch, 0, err, sizeof err);
    if (!t) {
        /* the CPU backend must always train; a CUDA backend that still lacks ops skips */
        printf("%s: %s\n", strcmp(be->name, "cpu") ? "SKIP" : "FAIL", err);
        return strcmp(be->name, "cpu") ? TEST_SKIP : 1;
    }
    printf("fixture %s: image %d, %d levels, batch %d, %s backend, %s tolerances\n", fixture_path,
           ucfg.image_size, ucfg.num_levels, batch, be->name, tf32 ? "TF32" : "float32");
    load_weights(t, "/weights", t->w);
    load_weights(t, "/ema_weights", t->ema_w);
    float *norm = read_alloc("/normalizer/mean", 3), *var = read_alloc("/normalizer/variance", 3);
    trainer_set_normalizer(t, norm, var);
    size_t n = (size_t)batch * t->per_image;
    upload_dataset(t, "/inputs/images", t->images, n);
    upload_dataset(t, "/inputs/noises", t->noises, n);
    upload_dataset(t, "/inputs/diffusion_times", t->times, (size_t)batch);

    /* the fixture's noises and times: the step's phases without the draw */
    trainer_step_begin(t);
    trainer_step_data(t);
    trainer_step_forward(t);
    trainer_step_backward(t);
    trainer_step_allreduce(t);
    trainer_step_update(t);
    check_buffer(t, "/forward/normalized_images", t->norm_images, n, tols->input);
    check_buffer(t, "/forward/noise_rates", t->noise_rates, (size_t)batch, tols->input);
    check_buffer(t, "/forward/signal_rates", t->signal_rates, (size_t)batch, tols->input);
    check_buffer(t, "/forward/noisy_images", t->noisy, n, tols->input);
    check_buffer(t, "/forward/pred_noises", t->pred_noises, n, tols->network);
    check_buffer(t, "/forward/pred_images", t->pred_images, n, tols->network);
    check_buffer(t, "/forward/noise_loss", t->losses, 1, tols->network);
    check_buffer(t, "/forward/image_loss", t->losses + 1, 1, tols->network);
    check_weights(t, "/grads", t->grad, 1, tols->grad);
    check_stepped_weights(t);
    check_weights(t, "/after_step/ema_weights", t->ema_w, 0, tols->weights);
    check_sampler(t, samples);

    free(norm);
    free(var);
    trainer_destroy(t);
    comm->destroy(comm);
    be->destroy(be);
    H5Fclose(fixture);
    if (first_failure[0])
        fprintf(stderr, "FIRST MISMATCH: %s (see above)\n", first_failure);
    return test_finish("test_keras_fixture");
}
