/* sampler.c: the Keras example's reverse_diffusion (deterministic DDIM) and denormalize,
 * with the EMA network in inference mode. Buffers for one sample size are kept between
 * calls (grids and KID ask for the same size every epoch). */
#include "trainer.h"
#include "util.h"

#include <stdlib.h>

struct sampler {
    int n;
    struct unet_acts *acts;
    float *noisy, *pred_noises, *pred_images;              /* (n, S, S, 3) */
    float *times, *noise_rates, *signal_rates, *variances; /* (n) */
    float *next_noise_rates, *next_signal_rates;           /* (n) */
};

void sampler_destroy(struct backend *be, struct sampler *s)
{
    if (!s)
        return;
    float *bufs[] = {s->noisy,     s->pred_noises,      s->pred_images,
                     s->times,     s->noise_rates,      s->signal_rates,
                     s->variances, s->next_noise_rates, s->next_signal_rates};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        be->free(be, bufs[i]);
    unet_acts_destroy(be, s->acts);
    free(s);
}

static struct sampler *sampler_for(struct trainer *t, int n)
{
    if (t->sampler && t->sampler->n == n)
        return t->sampler;
    struct backend *be = t->be;
    sampler_destroy(be, t->sampler);
    struct sampler *s = util_xcalloc(1, sizeof *s);
    s->n = n;
    s->acts = unet_acts_create(be, t->net, n, 0);
    float **images[] = {&s->noisy, &s->pred_noises, &s->pred_images};
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
        *images[i] = be->alloc(be, (size_t)n * t->per_image * sizeof(float));
    float **scalars[] = {&s->times,     &s->noise_rates,      &s->signal_rates,
                         &s->variances, &s->next_noise_rates, &s->next_signal_rates};
    for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++)
        *scalars[i] = be->alloc(be, (size_t)n * sizeof(float));
    t->sampler = s;
    return s;
}

void trainer_sample(struct trainer *t, const float *initial_noise, int n, int steps,
                    float *pred_images, float *images)
{
    if (n < 1 || steps < 1)
        DDIM_FATAL("sampling needs at least one image and one step (got %d images, %d steps)", n,
                   steps);
    struct backend *be = t->be;
    struct sampler *s = sampler_for(t, n);
    size_t per = t->per_image;
    double step_size = 1.0 / steps;
    be->copy(be, s->noisy, initial_noise, (size_t)n * per * sizeof(float));
    for (int step = 0; step < steps; step++) {
        /* float32 as TensorFlow: ones - float32(step * step_size), then - step_size */
        float time = 1.0f - (float)(step * step_size);
        float next_time = time - (float)step_size;
        be->fill(be, s->times, time, (size_t)n);
        be->diffusion_schedule(be, s->noise_rates, s->signal_rates, s->times, n,
                               t->dc.min_signal_rate, t->dc.max_signal_rate);
        be->square(be, s->variances, s->noise_rates, (size_t)n);
        unet_forward(be, t->net, s->acts, t->ema_w, s->noisy, s->variances, 0, t->comm,
                     s->pred_noises);
        be->pred_images(be, s->pred_images, s->noisy, s->pred_noises, s->noise_rates,
                        s->signal_rates, n, per);
        if (step == steps - 1)
            break; /* the last remix is never used */
        be->fill(be, s->times, next_time, (size_t)n);
        be->diffusion_schedule(be, s->next_noise_rates, s->next_signal_rates, s->times, n,
                               t->dc.min_signal_rate, t->dc.max_signal_rate);
        be->mix(be, s->noisy, s->next_signal_rates, s->pred_images, s->next_noise_rates,
                s->pred_noises, n, per);
    }
    if (pred_images)
        be->copy(be, pred_images, s->pred_images, (size_t)n * per * sizeof(float));
    if (images)
        be->denormalize(be, images, s->pred_images, t->norm, t->norm + 3, (size_t)n * per / 3, 3);
}
