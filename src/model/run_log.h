/* run_log.h: what rank 0 writes under the run directory while training:
 *   config.yaml          the resolved configuration (atomically)
 *   metrics.jsonl        one JSON object per line, each written whole as it comes:
 *                        {"type":"step",...} after every step, {"type":"epoch",...} after
 *                        every epoch (train and validation losses, val_kid: the validation
 *                        KID, null when not measured), and the run guard's
 *                        {"type":"config_change"|"checkpoint_failed"|"stop",...}
 *   loss.png             the loss curves, redrawn after every epoch (atomically)
 *   kid.png              the validation KID per epoch, beside it (when KID is measured)
 *   samples/epoch_NNNN.png  the epoch's sample grid (EMA network, plot_diffusion_steps)
 *   events.out.tfevents.*   with run.tensorboard on: TensorBoard's event files (tb_events.h),
 *                        one per start of the run: at every step train/noise_loss,
 *                        train/image_loss, train/learning_rate, train/images_per_second (one
 *                        record); at every epoch's last step epoch/noise_loss,
 *                        epoch/image_loss (the epoch's training means), val/noise_loss,
 *                        val/image_loss, val/kid (those measured) and the image "samples"
 *                        (the grid's PNG); at the first step a run writes, a SessionLog START
 *                        and the text "config" (config.yaml). Their failures are warnings. */
#ifndef DDIM_RUN_LOG_H
#define DDIM_RUN_LOG_H

#include "config.h"
#include "line_log.h"
#include "tb_events.h"

#include <stdio.h>

/* A growable array of doubles: one curve coordinate for the plot. */
struct history {
    double *v;
    long n, cap;
};

struct run_log {
    char dir[CONFIG_PATH_MAX];
    struct line_log metrics; /* metrics.jsonl: whole lines, written as they come */
    int open;                /* metrics is open */
    struct tb_events tb;     /* this run's TensorBoard event file (tb.open: in use) */
    double learning_rate;    /* train.learning_rate, a scalar of every step */
    /* the training noise loss averaged over windows of steps, and per-epoch values */
    struct history step_x, step_noise;
    double window_sum;
    long window_count;
    struct history epoch_x, epoch_val_noise, epoch_val_image, epoch_val_kid;
};

/* Creates the run directory (and samples/), writes config.yaml, opens metrics.jsonl: a new
 * one when resume_step < 0; else (resuming from a checkpoint at that global step) the
 * existing one is kept up to that step (lines of later steps, written after the checkpoint
 * by a run that then died, are dropped: the resumed run writes them again) and appended
 * to, and its curves go on in loss.png. The event files already there are cut after the
 * same step (step 0 for a new run; tb_events_trim), and with run.tensorboard on a new one is
 * begun. */
int run_log_open(struct run_log *log, const struct run_config *cfg, long resume_step, char *err,
                 size_t errlen);
void run_log_step(struct run_log *log, int epoch, long step, double noise_loss, double image_loss,
                  double images_per_second);
void run_log_epoch(struct run_log *log, int epoch, long step, double noise_loss, double image_loss,
                   double val_noise_loss, double val_image_loss, double val_kid, double seconds);
/* Writes samples/epoch_NNNN.png from images (rows*cols, size, size, 3) in [0, 1], and the
 * same PNG to TensorBoard at step. */
int run_log_grid(struct run_log *log, int epoch, long step, const float *images, int rows, int cols,
                 int size, char *err, size_t errlen);
/* One more line of metrics.jsonl: a JSON object (no newline), e.g. a config change. */
void run_log_line(struct run_log *log, const char *json);
/* text as a JSON string, quotes included (cut to fit len). */
void run_log_json_string(char *out, size_t len, const char *text);
/* Closes metrics.jsonl and the event file: 0, or -1 when lines of metrics.jsonl it held back
 * could not be written (printed; the event file's losses are printed, not returned). */
int run_log_close(struct run_log *log);

/* mkdir -p; 0 or -1 with a message. */
int run_log_make_dirs(const char *path, char *err, size_t errlen);

#endif
