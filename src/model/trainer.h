/* trainer.h: the Keras example's DiffusionModel: normalizer, diffusion schedule, training
 * step (train_step), validation losses (test_step), AdamW, EMA and the DDIM sampler, on
 * one rank's share of the global batch.
 *
 * Gradients follow the example exactly: Keras's mean_absolute_error returns the per-pixel
 * channel mean, shape (B,S,S), and GradientTape differentiates a non-scalar target by its
 * SUM. So the gradient is that of sum over pixels of mean over channels, i.e. B*S*S times
 * the gradient of the reported (mean) loss. Across ranks the per-rank sums therefore add
 * up (all-reduce sum), which is the gradient of the global batch. */
#ifndef DDIM_TRAINER_H
#define DDIM_TRAINER_H

#include "backend.h"
#include "comm.h"
#include "model_config.h"
#include "sampler.h"
#include "unet.h"

#include <stdint.h>

struct trainer {
    struct backend *be;
    struct comm *comm;
    struct unet *net;
    struct unet_acts *acts;
    struct diffusion_config dc;
    int batch;         /* this rank's images per step */
    int global_batch;  /* all ranks' images per step */
    int first_example; /* index of this rank's first image in the global batch */
    size_t per_image;  /* S*S*3 */

    /* state (backend memory); a checkpoint is exactly these plus `step` */
    float *w;      /* (total) training network, BN moving statistics included */
    float *ema_w;  /* (total) EMA network */
    float *adam_m; /* (trainable) */
    float *adam_v; /* (trainable) */
    float *norm;   /* (6) per-channel mean[3], variance[3] of the training images */
    int step;      /* optimizer steps done (Keras optimizer.iterations) */

    /* step buffers (backend memory), (batch, S, S, 3) unless noted */
    float *images; /* raw images in [0, 1]: the caller fills these */
    float *noises; /* standard normal */
    float *times;  /* (batch) uniform diffusion times */
    float *norm_images, *noisy, *pred_noises, *pred_images, *dpred;
    float *noise_rates, *signal_rates, *variances; /* (batch) */
    float *grad;                                   /* (trainable) */
    float *losses; /* (2): noise loss, image loss (means over this rank's batch) */

    struct sampler *sampler; /* inference buffers for the last sample size (sampler.c) */

    /* CUDA graph of the step (trainer_set_graph): data, forward, backward and all-reduce
     * are captured once and replayed; the draw before and AdamW/EMA after stay eager (their
     * step numbers are kernel arguments). */
    int graph_mode; /* 0 off, 1 on: warm-up step pending, 2 on: capture next */
    void *graph;    /* the backend's instantiated graph, or NULL */
};

/* Builds the network and all buffers. first_example/global_batch place this rank's batch
 * in the global one (random streams are keyed by the global position). */
struct trainer *trainer_create(struct backend *be, struct comm *comm,
                               const struct unet_config *ucfg, const struct diffusion_config *dc,
                               int batch, int global_batch, int first_example, char *err,
                               size_t errlen);
void trainer_destroy(struct trainer *t);

/* Keras initial weights for the network and, independently (clone_model re-initializes),
 * for the EMA network; zero Adam state; step 0. Rank 0's are broadcast to all ranks. */
void trainer_init_weights(struct trainer *t);

/* Set the normalizer statistics (host values). */
void trainer_set_normalizer(struct trainer *t, const float mean[3], const float var[3]);

/* Draws this step's noises and diffusion times from the Philox streams (train or val). */
void trainer_draw(struct trainer *t, uint32_t stream_step, int validation);

/* One training step on t->images, t->noises, t->times: forward (BN in training mode),
 * losses, backward, gradient all-reduce, AdamW, EMA. */
void trainer_train_step(struct trainer *t);

/* trainer_train_step's phases, which it runs in this order (ddim-bench times them apart):
 * data: normalize, diffusion schedule, mix; forward: the U-Net, BN in training mode;
 * backward: losses, their gradient, the U-Net's backward; allreduce: the gradient summed
 * over the ranks; update: AdamW (step + 1) and the EMA. */
void trainer_step_data(struct trainer *t);
void trainer_step_forward(struct trainer *t);
void trainer_step_backward(struct trainer *t);
void trainer_step_allreduce(struct trainer *t);
void trainer_step_update(struct trainer *t);

/* run.cuda_graph: on (1) captures trainer_train_step's data, forward, backward and
 * all-reduce once, after one eager warm-up step, and replays them each step. Returns 1 if
 * on, 0 if the backend has no graphs or asked for off. Only with one rank for now (the
 * NCCL all-reduce inside a capture needs checking on GPUs). A failed capture logs why and
 * turns it off. The buffers the graph reads must not move: the trainer never reallocates. */
int trainer_set_graph(struct trainer *t, int on);

/* The example's test_step losses with the EMA network in inference mode, into t->losses. */
void trainer_eval_losses(struct trainer *t);

/* Host copies of the last losses (noise, image): mean over this rank's batch. */
void trainer_read_losses(struct trainer *t, float out[2]);

/* DDIM sampling with the EMA network (inference mode), for n images from initial_noise
 * (n, S, S, 3) (backend memory): pred_images (normalized space; may be NULL) and images
 * (denormalized, clipped to [0, 1]; may be NULL). */
void trainer_sample(struct trainer *t, const float *initial_noise, int n, int steps,
                    float *pred_images, float *images);

/* The trainer's EMA network as an inference network (its buffers, not copies). */
struct infer_net trainer_infer_net(struct trainer *t);

/* sampler_run (sampler.h) on the trainer's EMA network, with options. */
int trainer_sample_ex(struct trainer *t, const float *initial_noise, int n, int steps,
                      const struct sample_options *so, float *pred_images, float *images);

#endif
