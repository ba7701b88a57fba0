/* sampler.h: the sampler's options beyond the Keras example's deterministic DDIM
 * (trainer_sample in trainer.h stays that sampler): DDIM's eta (stochastic sampling), a
 * second-order sampler (Heun's method on the DDIM ODE) and a per-step hook that lets
 * ddim-sample draw the sampling process. */
#ifndef DDIM_SAMPLER_H
#define DDIM_SAMPLER_H

#include "trainer.h"

#include <stdint.h>

enum sampler_kind {
    SAMPLER_DDIM = 0, /* the example's reverse_diffusion, with DDIM's eta */
    SAMPLER_HEUN = 1, /* Heun's method on the DDIM ODE (DDIM paper, eq. 13) */
};

struct sample_options {
    enum sampler_kind kind;
    /* DDIM only, in [0, 1]: 0 is the deterministic sampler (bit for bit), 1 DDPM-like. The
     * fresh noise of step k for image first + i is Philox(seed, RNG_SAMPLE_ETA, k, first + i):
     * the same on every backend and for any chunking of the images. */
    float eta;
    uint64_t seed;
    uint32_t first;
    /* Called after each network evaluation of the trajectory (not Heun's corrector) with
     * the step's noisy images and predicted images, (n, S, S, 3) backend memory in the
     * normalized space; NULL for none. */
    void (*on_step)(void *ctx, int step, const float *noisy, const float *pred_images);
    void *ctx;
};

/* trainer_sample with options (so NULL: the deterministic DDIM sampler). DDIM with K steps
 * evaluates the network K times at times 1, 1 - 1/K, ..., 1/K and returns the last
 * predicted image. Heun with K steps integrates the ODE from time 1 to time 0 in K steps of
 * two evaluations each and predicts the image at time 0 with one more: 2K + 1 evaluations.
 * Returns the number of network evaluations. */
int trainer_sample_ex(struct trainer *t, const float *initial_noise, int n, int steps,
                      const struct sample_options *so, float *pred_images, float *images);

#endif
