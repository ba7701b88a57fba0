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
    float *images; /* raw images in [0, 1]: the caller fills these (or trainer_set_data) */
    float *noises; /* standard normal */
    float *times;  /* (batch) uniform diffusion times */
    float *norm_images, *noisy, *pred_noises, *pred_images, *dpred;
    float *noise_rates, *signal_rates, *variances; /* (batch) */
    float *grad;                                   /* (trainable) */
    float *losses; /* (2): noise loss, image loss (means over this rank's batch) */

    struct sampler *sampler; /* inference buffers for the last sample size (sampler.c) */

    /* What changes from step to step lives in backend memory (backend.h), so that the whole
     * step can be recorded once: counters[TC_*] (int32), advanced by counter_step each step;
     * AdamW's scalars for TRAINER_ADAM_TABLE steps from adam_first on, computed on the host */
    int32_t *counters, *counter_step;
    struct adamw_scalars *adam_table;
    int adam_first; /* host: the step adam_table[0] is for */
    int adam_next;  /* host: the step counters[TC_ADAM] points at (0: none yet) */
    /* resident training data (trainer_set_data; NULL: the caller fills images) and the loss
     * history (trainer_set_loss_history; NULL: none), backend memory */
    const uint8_t *data_images;
    const int32_t *data_order;
    float *loss_hist;
    /* the gradient's all-reduce in buckets during the backward pass (trainer_set_buckets),
     * or NULL: one allreduce_sum after it */
    struct grad_buckets *buckets;

    /* CUDA graph of the step (trainer_set_graph): the whole step, from the gather and the
     * draw to AdamW, the EMA and the counters, captured once and replayed. */
    int graph_mode;    /* 0 off, 1 on: warm-up step pending, 2 on: capture next */
    int graph_partial; /* TRAINER_GRAPH_PARTIAL was asked */
    void *graph;       /* the backend's instantiated graph, or NULL */
};

/* The step counters (trainer->counters): the random streams' step (trainer_draw's
 * stream_step of a training step), this rank's first index into the resident order, the
 * AdamW table's entry, the loss history's slot. */
enum { TC_DRAW, TC_DATA, TC_ADAM, TC_SLOT, TC_COUNT };
#define TRAINER_ADAM_TABLE 1024

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

/* Draws noises and diffusion times of stream step stream_step from the Philox streams
 * (train or val): validation and sampling. A training step draws its own (trainer_step_draw,
 * from counters[TC_DRAW]). */
void trainer_draw(struct trainer *t, uint32_t stream_step, int validation);

/* Where the next training step starts (uploaded: the counters): its random streams' step
 * (the global step), this rank's first index into the resident order (trainer_set_data;
 * b * global_batch + first_example for global batch b) and its slot in the loss history;
 * each step then advances them by 1, global_batch and 1. trainer_create sets 0, first_example,
 * 0. */
void trainer_set_position(struct trainer *t, uint32_t draw_step, long data_first, long slot);

/* Resident training data: each step gathers its images (images[order[counters[TC_DATA] +
 * i]], gather_images) itself. Both backend memory; NULL images: the caller fills t->images. */
void trainer_set_data(struct trainer *t, const uint8_t *images, const int32_t *order);

/* Each step copies its losses (summed over the ranks when there are several: means of
 * means after division by the rank count) into hist[2 * slot] (backend memory; NULL: no
 * history). */
void trainer_set_loss_history(struct trainer *t, float *hist);

/* run.allreduce_bucket_mib: with several ranks over a communicator that has a non-blocking
 * all-reduce (MPI, NCCL), the gradient is all-reduced in buckets of this many MiB, each
 * started as soon as the backward pass has written it (grad_buckets.h); 0 (the default): in
 * one piece after the backward pass. The same bits either way (comm.h: MPI for any number
 * of ranks, NCCL for two). A no-op with one rank. */
void trainer_set_buckets(struct trainer *t, double mib);

/* One training step: the gather (resident data), the draw, forward (BN in training mode),
 * losses, backward, gradient all-reduce, AdamW, EMA, the loss history, the counters. */
void trainer_train_step(struct trainer *t);

/* trainer_train_step's phases, which it runs in this order (ddim-bench times them apart):
 * begin (host only: the step count, AdamW's table when it runs out); draw: the gather of
 * resident data, noises and times; data: normalize, diffusion schedule, mix; forward: the
 * U-Net, BN in training mode; backward: losses, their gradient, the U-Net's backward;
 * allreduce: the gradient summed over the ranks; update: AdamW and the EMA; end: the loss
 * history and the counters. All but begin only enqueue backend work (a graph records
 * them). A caller that sets noises and times itself skips draw. */
void trainer_step_begin(struct trainer *t);
void trainer_step_draw(struct trainer *t);
void trainer_step_data(struct trainer *t);
void trainer_step_forward(struct trainer *t);
void trainer_step_backward(struct trainer *t);
void trainer_step_allreduce(struct trainer *t);
void trainer_step_update(struct trainer *t);
void trainer_step_end(struct trainer *t);

/* run.cuda_graph: TRAINER_GRAPH_WHOLE captures trainer_train_step's backend work (all but
 * begin) once, after one eager warm-up step, and replays it each step: one graph launch per
 * step. TRAINER_GRAPH_PARTIAL (ddim-bench's comparison) records data to all-reduce only,
 * the draw before and the update and end after it run op by op. Returns 1 if on, 0 if the
 * backend has no graphs, the communicator cannot take part in one (several ranks need
 * NCCL's: collectives captured, comm->watch) or TRAINER_GRAPH_OFF was asked. A failed
 * capture logs why and turns it off. The buffers the graph reads must not move: the trainer
 * never reallocates. */
enum { TRAINER_GRAPH_OFF = 0, TRAINER_GRAPH_WHOLE = 1, TRAINER_GRAPH_PARTIAL = 2 };
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
