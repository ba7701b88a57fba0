/* sampler.h: sampling from an inference network (struct infer_net: the EMA network and the
 * normalizer on a backend, the trainer's or one read from a file): the Keras example's
 * deterministic DDIM (no options), and options beyond it: DDIM's eta (stochastic sampling),
 * a second-order sampler (Heun's method on the DDIM ODE) and a per-step hook that lets
 * ddim-sample draw the sampling process. The sampler knows the network (unet.h) and the
 * backend, nothing of training: the trainer lends it its EMA network (trainer.h). */
#ifndef DDIM_SAMPLER_H
#define DDIM_SAMPLER_H

#include "backend.h"
#include "comm.h"
#include "unet.h"

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

/* An inference network on a backend: all that sampling needs (the EMA network, run in
 * inference mode, and the normalizer), without a trainer's optimizer state or gradients.
 * The trainer lends its own (trainer_infer_net); ddim-sample makes one from a file
 * (infer_model_upload in infer_model.h). */
struct infer_net {
    struct backend *be;
    struct comm *comm; /* passed to the network (inference BatchNorm does not use it) */
    const struct unet *net;
    float *w;                               /* (total) EMA weights, backend memory */
    float *norm;                            /* (6) normalizer mean[3], variance[3], backend */
    float min_signal_rate, max_signal_rate; /* the diffusion schedule */
    size_t per_image;                       /* S*S*3 */
    struct sampler *sampler;                /* buffers for the last sample size (NULL at first) */
};

/* Samples n images from initial_noise (n, S, S, 3) (backend memory) with options so (NULL:
 * the deterministic DDIM sampler). DDIM with K steps evaluates the network K times at times
 * 1, 1 - 1/K, ..., 1/K and returns the last predicted image. Heun with K steps integrates
 * the ODE from time 1 to time 0 in K steps of two evaluations each and predicts the image
 * at time 0 with one more: 2K + 1 evaluations. pred_images (normalized space) and images
 * (denormalized, clipped to [0, 1]) may each be NULL. Returns the number of network
 * evaluations. */
int sampler_run(struct infer_net *m, const float *initial_noise, int n, int steps,
                const struct sample_options *so, float *pred_images, float *images);

/* The buffers an inference network keeps for its last sample size (infer_net.sampler). */
struct sampler;
void sampler_destroy(struct backend *be, struct sampler *s);

#endif
