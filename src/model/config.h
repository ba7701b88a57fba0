/* config.h: every setting of a training run (struct run_config), loaded from a YAML file
 * (config_yaml.c, through libyaml) and `--set section.key=value` overrides; the resolved
 * configuration is printed at start and saved as config.yaml in the run directory. Keys are
 * "section.key" as in the YAML file. Each key's type, default (the Keras example's values),
 * bounds and doc line are one row of the key table, config_keys.c; docs/config.md lists
 * them (ddim-dist --list-keys writes that list). */
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
    char data_path[CONFIG_PATH_MAX]; /* data.path */
    int dataset_repetitions;         /* data.dataset_repetitions */
    char resident[8];                /* data.resident */
    /* model and diffusion: the network, schedule, loss, optimizer, EMA, seed */
    struct unet_config model;
    struct diffusion_config diffusion;
    /* train */
    int num_epochs;           /* train.num_epochs */
    int batch_size;           /* train.batch_size: the global batch, split across ranks */
    long max_steps;           /* train.max_steps */
    int resume;               /* train.resume: enum resume_mode */
    double divergence_factor; /* train.divergence_factor (see run_guard.h) */
    /* eval */
    int kid_image_size;                      /* eval.kid_image_size */
    int kid_diffusion_steps;                 /* eval.kid_diffusion_steps */
    int kid_every;                           /* eval.kid_every */
    int plot_diffusion_steps;                /* eval.plot_diffusion_steps */
    int plot_rows, plot_cols;                /* eval.plot_rows, eval.plot_cols */
    char inception_weights[CONFIG_PATH_MAX]; /* eval.inception_weights ("": no KID) */
    /* run */
    char run_dir[CONFIG_PATH_MAX]; /* run.dir: everything a run writes goes here */
    char backend[16];              /* run.backend */
    double progress_seconds;       /* run.progress_seconds */
    double collective_timeout_s;   /* run.collective_timeout_s */
    char cuda_graph[8];            /* run.cuda_graph */
    double allreduce_bucket_mib;   /* run.allreduce_bucket_mib */
    char tensorboard[8];           /* run.tensorboard: TensorBoard event files in run_dir */
};

/* Every key's default, from the key table (config_keys.c): the Keras example's settings, and
 * the run's (runs/ddim, backend auto, ...). The model's and the diffusion's alone: */
void config_defaults(struct run_config *c);
struct unet_config config_default_model(void);
struct diffusion_config config_default_diffusion(void);

/* Applies a YAML file on top of c. Unknown keys (with a did-you-mean), wrong types and
 * out-of-range values are errors naming the file, line and key. 0 or -1. */
int config_load_yaml(struct run_config *c, const char *path, char *err, size_t errlen);

/* The same for YAML text held in memory (e.g. a checkpoint's config attribute); `label`
 * stands for the file name in messages. */
int config_load_yaml_text(struct run_config *c, const char *label, const char *text, char *err,
                          size_t errlen);

/* Applies one "section.key=value" override (value in YAML syntax, e.g. widths=[8,16]). */
int config_set(struct run_config *c, const char *assignment, char *err, size_t errlen);

/* Every value within its key's bounds (the table's), and the cross-field rules (model
 * shape, signal rates; batch vs ranks is checked by the trainer). 0, or -1 with a message
 * naming the key. The model's and the diffusion's settings alone (unet_create and
 * trainer_create check theirs so): */
int config_check(const struct run_config *c, char *err, size_t errlen);
int config_check_model(const struct unet_config *m, char *err, size_t errlen);
int config_check_diffusion(const struct diffusion_config *d, char *err, size_t errlen);

/* Every key with its default, what it accepts and its doc line: text for --help, or a
 * markdown table (docs/config.md). */
void config_write_keys(FILE *out, int markdown);

/* Writes the resolved configuration as YAML that config_load_yaml reads back. */
void config_write_yaml(const struct run_config *c, FILE *out);

/* Key `name`'s value in c as the YAML file spells it ("bf16" for model.precision): 0, or -1
 * for an unknown key. */
int config_value_text(const struct run_config *c, const char *name, char *buf, size_t len);

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
