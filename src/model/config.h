/* config.h: every setting of a training run, with the Keras example's values as defaults.
 *
 * A run is configured by a YAML file (src/model/config_yaml.c, through libyaml) and `--set
 * section.key=value` overrides; the resolved configuration is printed at start and saved
 * as config.yaml in the run directory. Keys are "section.key" as in the YAML file:
 *
 *   data:      path, dataset_repetitions, resident
 *   model:     image_size, widths, block_depth, embedding_dims, embedding_min_frequency,
 *              embedding_max_frequency, bn_momentum, bn_epsilon
 *   diffusion: min_signal_rate, max_signal_rate
 *   train:     num_epochs, batch_size, learning_rate, weight_decay, adam_beta_1,
 *              adam_beta_2, adam_epsilon, ema, loss, seed, max_steps, resume,
 *              divergence_factor
 *   eval:      kid_image_size, kid_diffusion_steps, kid_every, plot_diffusion_steps, plot_rows,
 *              plot_cols, inception_weights
 *   run:       dir, backend, cuda_graph, progress_seconds, collective_timeout_s,
 *              allreduce_bucket_mib
 */
#ifndef DDIM_CONFIG_H
#define DDIM_CONFIG_H

#include "model_config.h"

#include <stdio.h>

enum { CONFIG_PATH_MAX = 1024 };

/* train.resume: auto continues from run.dir/checkpoint.h5 when there is one (refusing
 * settings that change the training: see run_guard.h); never refuses to start when there is
 * one; force continues from it whatever the settings. */
enum resume_mode { RESUME_AUTO, RESUME_NEVER, RESUME_FORCE };

struct run_config {
    /* data */
    char data_path[CONFIG_PATH_MAX]; /* HDF5 dataset made by ddim-prep */
    int dataset_repetitions;         /* 5: each epoch sees the training split this often */
    char resident[8];                /* auto, on or off: images kept in backend memory */
    /* model and diffusion: the network, schedule, loss, optimizer, EMA, seed */
    struct unet_config model;
    struct diffusion_config diffusion;
    /* train */
    int num_epochs;           /* the example's code says 1 and recommends at least 50 */
    int batch_size;           /* global batch, 64; split across ranks */
    long max_steps;           /* stop after this many steps in total (0: no limit) */
    int resume;               /* enum resume_mode: what to do with run.dir/checkpoint.h5 */
    double divergence_factor; /* 20: stop when the loss explodes (see run_guard.h); 0: off */
    /* eval */
    int kid_image_size;                      /* 75 */
    int kid_diffusion_steps;                 /* 5 */
    int kid_every;                           /* 1: KID every epoch; 0: never */
    int plot_diffusion_steps;                /* 20 */
    int plot_rows, plot_cols;                /* 3 x 6 */
    char inception_weights[CONFIG_PATH_MAX]; /* Keras InceptionV3 notop .h5; "" = no KID */
    /* run */
    char run_dir[CONFIG_PATH_MAX]; /* everything a run writes goes here */
    char backend[16];              /* auto, cpu or cuda */
    double progress_seconds;       /* seconds between progress lines */
    double collective_timeout_s;   /* 600: a rank missing from a collective ends the job */
    char cuda_graph[8];            /* auto, on or off: the step as one CUDA graph */
    double allreduce_bucket_mib;   /* 1: the gradient all-reduced in 1 MiB buckets (0: whole) */
};

/* The Keras example's settings (and run defaults: runs/ddim, backend auto, 5 s, data.resident
 * auto). */
void run_config_defaults(struct run_config *c);

/* Applies a YAML file on top of c. Unknown keys (with a did-you-mean), wrong types and
 * out-of-range values are errors naming the file, line and key. 0 or -1. */
int config_load_yaml(struct run_config *c, const char *path, char *err, size_t errlen);

/* The same for YAML text held in memory (e.g. a checkpoint's config attribute); `label`
 * stands for the file name in messages. */
int config_load_yaml_text(struct run_config *c, const char *label, const char *text, char *err,
                          size_t errlen);

/* Applies one "section.key=value" override (value in YAML syntax, e.g. widths=[8,16]). */
int config_set(struct run_config *c, const char *assignment, char *err, size_t errlen);

/* Cross-field checks (model shape, batch vs ranks is checked by the trainer). 0 or -1. */
int run_config_check(const struct run_config *c, char *err, size_t errlen);

/* Writes the resolved configuration as YAML that config_load_yaml reads back. */
void config_write_yaml(const struct run_config *c, FILE *out);

/* One key whose value differs between two configurations, as the YAML file spells them. */
struct config_difference {
    const char *key; /* "section.key" */
    char old_value[256], new_value[256];
};

/* The keys whose values differ between a and b, in table order: up to max into out; returns
 * how many differ. */
int config_differences(const struct run_config *a, const struct run_config *b,
                       struct config_difference *out, int max);

#endif
