/* trainer.c: the training step, validation losses and state of the Keras example's
 * DiffusionModel on one rank; see trainer.h. Sampling lends the EMA network to the sampler
 * (sampler.c). */
#include "trainer.h"
#include "config.h"
#include "grad_buckets.h"
#include "graph.h"
#include "optim_math.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *zalloc_floats(struct backend *be, size_t n)
{
    return be->alloc(be, (n ? n : 1) * sizeof(float));
}

struct trainer *trainer_create(struct backend *be, struct comm *comm,
                               const struct unet_config *ucfg, const struct diffusion_config *dc,
                               int batch, int global_batch, int first_example, char *err,
                               size_t errlen)
{
    char missing[1024];
    if (backend_missing_ops(be, missing, sizeof missing) > 0) {
        util_error(err, errlen, "the %s backend cannot train yet: it lacks %s", be->name, missing);
        return NULL;
    }
    if (config_check_diffusion(dc, err, errlen) != 0)
        return NULL;
    if (batch < 1 || global_batch < batch || first_example < 0 ||
        first_example + batch > global_batch) {
        util_error(err, errlen,
                   "batch: this rank's %d images starting at %d do not fit a global batch of %d",
                   batch, first_example, global_batch);
        return NULL;
    }
    struct unet *net = unet_create(ucfg, err, errlen);
    if (!net)
        return NULL;
    /* every op at its shape, training and sampling (BN in inference mode), before anything
     * runs: a shape the backend cannot take is an error here, not mid-run */
    if (unet_check_backend(be, net, batch, 1, err, errlen) != 0 ||
        unet_check_backend(be, net, batch, 0, err, errlen) != 0) {
        unet_destroy(net);
        return NULL;
    }
    struct trainer *t = util_xcalloc(1, sizeof *t);
    const struct param_table *pt = unet_params(net);
    size_t per = (size_t)ucfg->image_size * ucfg->image_size * 3;
    t->be = be;
    t->comm = comm;
    t->net = net;
    t->dc = *dc;
    t->batch = batch;
    t->global_batch = global_batch;
    t->first_example = first_example;
    t->per_image = per;
    t->acts = unet_acts_create(be, net, batch, 1);
    t->w = zalloc_floats(be, pt->total);
    t->ema_w = zalloc_floats(be, pt->total);
    t->adam_m = zalloc_floats(be, pt->trainable);
    t->adam_v = zalloc_floats(be, pt->trainable);
    t->grad = zalloc_floats(be, pt->trainable);
    t->norm = zalloc_floats(be, 6);
    float **images[] = {&t->images,      &t->noises,      &t->norm_images, &t->noisy,
                        &t->pred_noises, &t->pred_images, &t->dpred};
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
        *images[i] = zalloc_floats(be, (size_t)batch * per);
    t->times = zalloc_floats(be, (size_t)batch);
    t->noise_rates = zalloc_floats(be, (size_t)batch);
    t->signal_rates = zalloc_floats(be, (size_t)batch);
    t->variances = zalloc_floats(be, (size_t)batch);
    t->losses = zalloc_floats(be, 2);
    float unit[6] = {0, 0, 0, 1, 1, 1};
    be->upload(be, t->norm, unit, sizeof unit);
    t->counters = be->alloc(be, TC_COUNT * sizeof(int32_t));
    t->counter_step = be->alloc(be, TC_COUNT * sizeof(int32_t));
    t->adam_table = be->alloc(be, TRAINER_ADAM_TABLE * sizeof(struct adamw_scalars));
    const int32_t step[TC_COUNT] = {1, global_batch, 1, 1};
    be->upload(be, t->counter_step, step, sizeof step);
    trainer_set_position(t, 0, first_example, 0);
    trainer_set_buckets(t, 0);
    return t;
}

void trainer_destroy(struct trainer *t)
{
    if (!t)
        return;
    struct backend *be = t->be;
    float *bufs[] = {
        t->w,      t->ema_w,  t->adam_m,      t->adam_v,       t->grad,        t->norm,
        t->images, t->noises, t->norm_images, t->noisy,        t->pred_noises, t->pred_images,
        t->dpred,  t->times,  t->noise_rates, t->signal_rates, t->variances,   t->losses};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        be->free(be, bufs[i]);
    be->free(be, t->counters);
    be->free(be, t->counter_step);
    be->free(be, t->adam_table);
    grad_buckets_destroy(t->buckets);
    if (t->graph)
        be->graph_destroy(be, t->graph);
    unet_acts_destroy(be, t->acts);
    sampler_destroy(be, t->sampler);
    unet_destroy(t->net);
    free(t);
}

void trainer_init_weights(struct trainer *t)
{
    const struct param_table *pt = unet_params(t->net);
    float *host = util_xmalloc(pt->total * sizeof(float));
    unet_init_weights(t->net, host, t->dc.seed, 0);
    t->be->upload(t->be, t->w, host, pt->total * sizeof(float));
    unet_init_weights(t->net, host, t->dc.seed, 1);
    t->be->upload(t->be, t->ema_w, host, pt->total * sizeof(float));
    free(host);
    t->be->fill(t->be, t->adam_m, 0.0f, pt->trainable);
    t->be->fill(t->be, t->adam_v, 0.0f, pt->trainable);
    t->step = 0;
    /* identical start on every rank, whatever each computed */
    t->comm->broadcast(t->comm, t->w, pt->total * sizeof(float));
    t->comm->broadcast(t->comm, t->ema_w, pt->total * sizeof(float));
}

void trainer_set_normalizer(struct trainer *t, const float mean[3], const float var[3])
{
    float host[6] = {mean[0], mean[1], mean[2], var[0], var[1], var[2]};
    t->be->upload(t->be, t->norm, host, sizeof host);
}

void trainer_draw(struct trainer *t, uint32_t stream_step, int validation)
{
    struct backend *be = t->be;
    uint32_t noise = validation ? RNG_VAL_NOISE : RNG_TRAIN_NOISE;
    uint32_t time = validation ? RNG_VAL_TIME : RNG_TRAIN_TIME;
    be->fill_normal(be, t->noises, t->batch, t->per_image, t->dc.seed, stream_step, noise,
                    (uint32_t)t->first_example, NULL);
    be->fill_uniform(be, t->times, t->batch, 1, t->dc.seed, stream_step, time,
                     (uint32_t)t->first_example, NULL);
}

void trainer_set_position(struct trainer *t, uint32_t draw_step, long data_first, long slot)
{
    if (data_first < 0 || data_first > INT32_MAX || slot < 0 || slot > INT32_MAX)
        DDIM_FATAL("trainer_set_position: data index %ld or slot %ld outside int32", data_first,
                   slot);
    int32_t c[TC_COUNT] = {(int32_t)draw_step, (int32_t)data_first,
                           t->adam_next ? t->adam_next - t->adam_first : 0, (int32_t)slot};
    t->be->upload(t->be, t->counters, c, sizeof c);
}

void trainer_set_data(struct trainer *t, const uint8_t *images, const int32_t *order)
{
    t->data_images = images;
    t->data_order = order;
}

void trainer_set_loss_history(struct trainer *t, float *hist)
{
    t->loss_hist = hist;
}

void trainer_set_buckets(struct trainer *t, double mib)
{
    grad_buckets_destroy(t->buckets);
    t->buckets = NULL;
    if (t->comm->world > 1 && t->comm->allreduce_start && t->comm->allreduce_finish) {
        size_t floats = (size_t)(mib * 1048576.0 / sizeof(float));
        t->buckets = grad_buckets_create(t->comm, t->grad, unet_params(t->net)->trainable,
                                         mib > 0 && floats == 0 ? 1 : floats);
    }
    if (t->graph) /* recorded with the old buckets */
        trainer_set_graph(t, t->graph_partial ? TRAINER_GRAPH_PARTIAL : TRAINER_GRAPH_WHOLE);
}

/* Host side of a step: the optimizer step count, and AdamW's scalars for it in the table,
 * which is refilled (an upload: a wait, once every TRAINER_ADAM_TABLE steps) when the step
 * lies beyond it or the step count was set from outside (a resumed checkpoint). */
void trainer_step_begin(struct trainer *t)
{
    int next = t->step + 1;
    if (next != t->adam_next || next >= t->adam_first + TRAINER_ADAM_TABLE) {
        const struct diffusion_config *c = &t->dc;
        struct adamw_scalars *host = util_xmalloc(TRAINER_ADAM_TABLE * sizeof *host);
        for (int i = 0; i < TRAINER_ADAM_TABLE; i++)
            host[i] = adamw_scalars_for_step(c->learning_rate, c->adam_beta1, c->adam_beta2,
                                             c->adam_epsilon, c->weight_decay, next + i);
        t->be->upload(t->be, t->adam_table, host, TRAINER_ADAM_TABLE * sizeof *host);
        free(host);
        const int32_t zero = 0;
        t->be->upload(t->be, t->counters + TC_ADAM, &zero, sizeof zero);
        t->adam_first = next;
    }
    t->step = next;
    t->adam_next = next + 1; /* where the counter points once this step has run */
}

/* resident images (if any), noises and times of the training step the counters point at */
void trainer_step_draw(struct trainer *t)
{
    struct backend *be = t->be;
    if (t->data_images)
        be->gather_images(be, t->images, t->data_images, t->data_order, t->counters + TC_DATA,
                          t->batch, t->per_image);
    be->fill_normal(be, t->noises, t->batch, t->per_image, t->dc.seed, 0, RNG_TRAIN_NOISE,
                    (uint32_t)t->first_example, t->counters + TC_DRAW);
    be->fill_uniform(be, t->times, t->batch, 1, t->dc.seed, 0, RNG_TRAIN_TIME,
                     (uint32_t)t->first_example, t->counters + TC_DRAW);
}

/* normalize, schedule, mix: the network's inputs t->noisy and t->variances */
void trainer_step_data(struct trainer *t)
{
    struct backend *be = t->be;
    int b = t->batch;
    size_t rows = (size_t)b * t->per_image / 3;
    be->normalize(be, t->norm_images, t->images, t->norm, t->norm + 3, rows, 3);
    be->diffusion_schedule(be, t->noise_rates, t->signal_rates, t->times, b, t->dc.min_signal_rate,
                           t->dc.max_signal_rate);
    be->mix(be, t->noisy, t->signal_rates, t->norm_images, t->noise_rates, t->noises, b,
            t->per_image);
    be->square(be, t->variances, t->noise_rates, (size_t)b);
}

/* predict noise with the training network (BN in training mode) or the EMA network */
static void predict_noise(struct trainer *t, int training)
{
    unet_forward(t->be, t->net, t->acts, training ? t->w : t->ema_w, t->noisy, t->variances,
                 training, t->comm, t->pred_noises);
}

/* pred_images and both losses into t->losses */
static void compute_losses(struct trainer *t)
{
    struct backend *be = t->be;
    int b = t->batch;
    size_t n = (size_t)b * t->per_image;
    be->pred_images(be, t->pred_images, t->noisy, t->pred_noises, t->noise_rates, t->signal_rates,
                    b, t->per_image);
    be->loss_value(be, t->losses, t->pred_noises, t->noises, n, t->dc.loss);
    be->loss_value(be, t->losses + 1, t->pred_images, t->norm_images, n, t->dc.loss);
}

void trainer_step_forward(struct trainer *t)
{
    predict_noise(t, 1);
}

void trainer_step_backward(struct trainer *t)
{
    size_t n = (size_t)t->batch * t->per_image;
    compute_losses(t);
    /* d/dpred of sum over pixels of the channel mean (see trainer.h) */
    t->be->loss_backward(t->be, t->dpred, t->pred_noises, t->noises, n, 1.0f / 3.0f, t->dc.loss);
    struct grad_listener buckets = {grad_buckets_written, t->buckets};
    unet_backward(t->be, t->net, t->acts, t->w, t->grad, t->dpred, t->comm,
                  t->buckets ? &buckets : NULL);
}

void trainer_step_allreduce(struct trainer *t)
{
    if (t->buckets)
        grad_buckets_finish(t->buckets);
    else
        t->comm->allreduce_sum(t->comm, t->grad, unet_params(t->net)->trainable);
}

void trainer_step_update(struct trainer *t)
{
    struct backend *be = t->be;
    const struct param_table *pt = unet_params(t->net);
    be->adamw_update(be, t->w, t->grad, t->adam_m, t->adam_v, pt->trainable, t->adam_table,
                     t->counters + TC_ADAM);
    be->ema_update(be, t->ema_w, t->w, pt->total, t->dc.ema);
}

void trainer_step_end(struct trainer *t)
{
    struct backend *be = t->be;
    if (t->loss_hist) {
        if (t->comm->world > 1)
            t->comm->allreduce_sum(t->comm, t->losses, 2);
        be->copy_to_slot(be, t->loss_hist, t->counters + TC_SLOT, t->losses, 2);
    }
    be->counters_add(be, t->counters, t->counter_step, TC_COUNT);
}

/* The part of the step a TRAINER_GRAPH_PARTIAL graph records */
static void step_core(struct trainer *t)
{
    trainer_step_data(t);
    trainer_step_forward(t);
    trainer_step_backward(t);
    trainer_step_allreduce(t);
}

/* Everything of the step but begin: backend work only, so it can be recorded once. */
static void step_body(struct trainer *t)
{
    trainer_step_draw(t);
    step_core(t);
    trainer_step_update(t);
    trainer_step_end(t);
}

int trainer_set_graph(struct trainer *t, int on)
{
    struct backend *be = t->be;
    int can = be->graph_capture_begin && be->graph_capture_end && be->graph_launch &&
              be->graph_destroy && (t->comm->world == 1 || t->comm->watch);
    if (t->graph)
        be->graph_destroy(be, t->graph);
    t->graph = NULL;
    t->graph_mode = on && can ? 1 : 0;
    t->graph_partial = on == TRAINER_GRAPH_PARTIAL;
    return t->graph_mode != 0;
}

/* Graph mode: step 1 eager (conv plans and workspaces are made on first use, which
 * allocates and synchronizes: not allowed in a capture), step 2 captured then launched.
 * A graph gone stale (other work, e.g. sampling or KID, grew a workspace it uses) is
 * captured again: the step's own plans exist by then, so that capture allocates nothing. */
static void step_graphed(struct trainer *t, void (*body)(struct trainer *))
{
    struct backend *be = t->be;
    if (t->graph_mode == 1) {
        body(t);
        t->graph_mode = 2;
        return;
    }
    if (t->graph && be->graph_launch(be, t->graph)) {
        comm_watch(t->comm, "the training step's CUDA graph");
        return;
    }
    if (t->graph) { /* stale */
        be->graph_destroy(be, t->graph);
        t->graph = NULL;
    }
    char err[512];
    be->graph_capture_begin(be);
    body(t);
    t->graph = be->graph_capture_end(be, err, sizeof err);
    if (!t->graph) {
        util_log("ddim: %s; run.cuda_graph off, the step runs op by op\n", err);
        t->graph_mode = 0;
        body(t);
    } else if (!be->graph_launch(be, t->graph)) {
        DDIM_FATAL("a CUDA graph went stale between its capture and its launch");
    } else {
        comm_watch(t->comm, "the training step's CUDA graph");
    }
}

void trainer_train_step(struct trainer *t)
{
    trainer_step_begin(t);
    if (!t->graph_mode) {
        step_body(t);
    } else if (!t->graph_partial) {
        step_graphed(t, step_body);
    } else { /* as before the whole step could be recorded: draw and update apart */
        trainer_step_draw(t);
        step_graphed(t, step_core);
        trainer_step_update(t);
        trainer_step_end(t);
    }
}

void trainer_eval_losses(struct trainer *t)
{
    trainer_step_data(t);
    predict_noise(t, 0);
    compute_losses(t);
}

void trainer_read_losses(struct trainer *t, float out[2])
{
    t->be->download(t->be, out, t->losses, 2 * sizeof(float));
}

/* --- sampling with the EMA network (sampler.h) --- */

int trainer_sample_ex(struct trainer *t, const float *initial_noise, int n, int steps,
                      const struct sample_options *so, float *pred_images, float *images)
{
    struct infer_net view = trainer_infer_net(t);
    int evaluations = sampler_run(&view, initial_noise, n, steps, so, pred_images, images);
    t->sampler = view.sampler; /* the buffers stay with the trainer for the next call */
    return evaluations;
}

struct infer_net trainer_infer_net(struct trainer *t)
{
    return (struct infer_net){t->be,
                              t->comm,
                              t->net,
                              t->ema_w,
                              t->norm,
                              t->dc.min_signal_rate,
                              t->dc.max_signal_rate,
                              t->per_image,
                              t->sampler};
}

void trainer_sample(struct trainer *t, const float *initial_noise, int n, int steps,
                    float *pred_images, float *images)
{
    trainer_sample_ex(t, initial_noise, n, steps, NULL, pred_images, images);
}
