/* sampler.c: the Keras example's reverse_diffusion (deterministic DDIM) and denormalize,
 * with the EMA network in inference mode, and the options of sampler.h: DDIM's eta and
 * Heun's method on the DDIM ODE. Buffers for one sample size are kept between calls
 * (grids and KID ask for the same size every epoch).
 *
 * All images share one diffusion time per step, so the per-step coefficients of the eta
 * and Heun updates are read back as host scalars from the backend's own schedule (one
 * float each) and broadcast with fill: the updates are then plain mix/axpy ops that every
 * backend already has. */
#include "sampler.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>

struct sampler {
    int n;
    struct unet_acts *acts;
    float *noisy, *pred_noises, *pred_images;              /* (n, S, S, 3) */
    float *extra, *heun_noisy, *heun_noises;               /* (n, S, S, 3): eta, Heun */
    float *times, *noise_rates, *signal_rates, *variances; /* (n) */
    float *next_noise_rates, *next_signal_rates;           /* (n) */
    float *coef_a, *coef_b;                                /* (n) */
};

void sampler_destroy(struct backend *be, struct sampler *s)
{
    if (!s)
        return;
    float *bufs[] = {s->noisy,
                     s->pred_noises,
                     s->pred_images,
                     s->extra,
                     s->heun_noisy,
                     s->heun_noises,
                     s->times,
                     s->noise_rates,
                     s->signal_rates,
                     s->variances,
                     s->coef_a,
                     s->coef_b,
                     s->next_noise_rates,
                     s->next_signal_rates};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        be->free(be, bufs[i]);
    unet_acts_destroy(be, s->acts);
    free(s);
}

static struct sampler *sampler_for(struct infer_net *t, int n)
{
    if (t->sampler && t->sampler->n == n)
        return t->sampler;
    struct backend *be = t->be;
    sampler_destroy(be, t->sampler);
    struct sampler *s = util_xcalloc(1, sizeof *s);
    s->n = n;
    s->acts = unet_acts_create(be, t->net, n, 0);
    float **images[] = {&s->noisy, &s->pred_noises, &s->pred_images,
                        &s->extra, &s->heun_noisy,  &s->heun_noises};
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
        *images[i] = be->alloc(be, (size_t)n * t->per_image * sizeof(float));
    float **scalars[] = {&s->times,
                         &s->noise_rates,
                         &s->signal_rates,
                         &s->variances,
                         &s->next_noise_rates,
                         &s->next_signal_rates,
                         &s->coef_a,
                         &s->coef_b};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        *scalars[i] = be->alloc(be, (size_t)n * sizeof(float));
    t->sampler = s;
    return s;
}

/* The network's noise prediction for x at `time` (every image), into out; the rates of
 * that time are left in s->noise_rates and s->signal_rates. */
static void denoise(struct infer_net *t, struct sampler *s, const float *x, float time, float *out)
{
    struct backend *be = t->be;
    be->fill(be, s->times, time, (size_t)s->n);
    be->diffusion_schedule(be, s->noise_rates, s->signal_rates, s->times, s->n, t->min_signal_rate,
                           t->max_signal_rate);
    be->square(be, s->variances, s->noise_rates, (size_t)s->n);
    unet_forward(be, t->net, s->acts, t->w, x, s->variances, 0, t->comm, out);
}

/* The rates of `time` into s->next_noise_rates and s->next_signal_rates. */
static void schedule_next(struct infer_net *t, struct sampler *s, float time)
{
    struct backend *be = t->be;
    be->fill(be, s->times, time, (size_t)s->n);
    be->diffusion_schedule(be, s->next_noise_rates, s->next_signal_rates, s->times, s->n,
                           t->min_signal_rate, t->max_signal_rate);
}

/* Element 0 of a per-image vector (all images share it) as a host value. */
static double first_value(struct backend *be, const float *v)
{
    float x;
    be->download(be, &x, v, sizeof x);
    return x;
}

/* DDIM's stochastic remix (DDIM paper, eq. 12 and 16) in the example's rates, where
 * alpha = signal^2 and 1 - alpha = noise^2: sigma = eta * (noise'/noise) *
 * sqrt(1 - signal^2/signal'^2); x' = signal' x0 + sqrt(noise'^2 - sigma^2) eps + sigma z. */
static void remix_eta(struct infer_net *t, struct sampler *s, int step,
                      const struct sample_options *so)
{
    struct backend *be = t->be;
    size_t count = (size_t)s->n * t->per_image;
    double sr = first_value(be, s->signal_rates), nr = first_value(be, s->noise_rates);
    double nsr = first_value(be, s->next_signal_rates), nnr = first_value(be, s->next_noise_rates);
    double sigma = so->eta * (nnr / nr) * sqrt(fmax(1.0 - (sr * sr) / (nsr * nsr), 0.0));
    be->fill(be, s->coef_b, (float)sqrt(fmax(nnr * nnr - sigma * sigma, 0.0)), (size_t)s->n);
    be->mix(be, s->noisy, s->next_signal_rates, s->pred_images, s->coef_b, s->pred_noises, s->n,
            t->per_image);
    be->fill_normal(be, s->extra, s->n, t->per_image, so->seed, (uint32_t)step, RNG_SAMPLE_ETA,
                    so->first, NULL);
    be->axpy(be, s->noisy, (float)sigma, s->extra, count);
}

/* The example's sampler, with eta. Returns the network evaluations. */
static int sample_ddim(struct infer_net *t, struct sampler *s, int steps,
                       const struct sample_options *so)
{
    struct backend *be = t->be;
    double step_size = 1.0 / steps;
    for (int step = 0; step < steps; step++) {
        /* float32 as TensorFlow: ones - float32(step * step_size), then - step_size */
        float time = 1.0f - (float)(step * step_size);
        float next_time = time - (float)step_size;
        denoise(t, s, s->noisy, time, s->pred_noises);
        be->pred_images(be, s->pred_images, s->noisy, s->pred_noises, s->noise_rates,
                        s->signal_rates, s->n, t->per_image);
        if (so && so->on_step)
            so->on_step(so->ctx, step, s->noisy, s->pred_images);
        if (step == steps - 1)
            break; /* the last remix is never used */
        schedule_next(t, s, next_time);
        if (so && so->eta > 0.0f)
            remix_eta(t, s, step, so);
        else
            be->mix(be, s->noisy, s->next_signal_rates, s->pred_images, s->next_noise_rates,
                    s->pred_noises, s->n, t->per_image);
    }
    return steps;
}

/* Heun's method on the DDIM ODE d(x/signal) = eps(x, t) d(noise/signal): with
 * a = signal'/signal and b = noise' - signal' noise/signal, the Euler step (which is the
 * DDIM step) is x' = a x + b eps(x, t); Heun's corrector re-evaluates eps at (x', t') and
 * steps with the mean of both. Times 1 - k/K, the last step ending at time 0. */
static int sample_heun(struct infer_net *t, struct sampler *s, int steps,
                       const struct sample_options *so)
{
    struct backend *be = t->be;
    size_t count = (size_t)s->n * t->per_image;
    double step_size = 1.0 / steps;
    int evaluations = 0;
    for (int step = 0;; step++) {
        float time = step == steps ? 0.0f : 1.0f - (float)(step * step_size);
        denoise(t, s, s->noisy, time, s->pred_noises);
        evaluations++;
        be->pred_images(be, s->pred_images, s->noisy, s->pred_noises, s->noise_rates,
                        s->signal_rates, s->n, t->per_image);
        if (so->on_step)
            so->on_step(so->ctx, step, s->noisy, s->pred_images);
        if (step == steps)
            break;
        float next_time = step == steps - 1 ? 0.0f : 1.0f - (float)((step + 1) * step_size);
        double sr = first_value(be, s->signal_rates), nr = first_value(be, s->noise_rates);
        schedule_next(t, s, next_time);
        double nsr = first_value(be, s->next_signal_rates);
        double nnr = first_value(be, s->next_noise_rates);
        be->fill(be, s->coef_a, (float)(nsr / sr), (size_t)s->n);
        be->fill(be, s->coef_b, (float)(nnr - nsr * nr / sr), (size_t)s->n);
        be->mix(be, s->heun_noisy, s->coef_a, s->noisy, s->coef_b, s->pred_noises, s->n,
                t->per_image);
        denoise(t, s, s->heun_noisy, next_time, s->heun_noises);
        evaluations++;
        be->axpy(be, s->heun_noises, 1.0f, s->pred_noises, count);
        be->scale(be, s->heun_noises, 0.5f, count);
        be->mix(be, s->heun_noisy, s->coef_a, s->noisy, s->coef_b, s->heun_noises, s->n,
                t->per_image);
        float *swap = s->noisy; /* the corrected point becomes the current one */
        s->noisy = s->heun_noisy;
        s->heun_noisy = swap;
    }
    return evaluations;
}

int sampler_run(struct infer_net *t, const float *initial_noise, int n, int steps,
                const struct sample_options *so, float *pred_images, float *images)
{
    if (n < 1 || steps < 1)
        DDIM_FATAL("sampling needs at least one image and one step (got %d images, %d steps)", n,
                   steps);
    if (so && !(so->eta >= 0.0f && so->eta <= 1.0f))
        DDIM_FATAL("sampling: eta must be in [0, 1] (got %g)", (double)so->eta);
    struct backend *be = t->be;
    struct sampler *s = sampler_for(t, n);
    size_t per = t->per_image;
    be->copy(be, s->noisy, initial_noise, (size_t)n * per * sizeof(float));
    int evaluations = so && so->kind == SAMPLER_HEUN ? sample_heun(t, s, steps, so)
                                                     : sample_ddim(t, s, steps, so);
    if (pred_images)
        be->copy(be, pred_images, s->pred_images, (size_t)n * per * sizeof(float));
    if (images)
        be->denormalize(be, images, s->pred_images, t->norm, t->norm + 3, (size_t)n * per / 3, 3);
    return evaluations;
}
