/* model_config.h: the plain settings of the network and of the diffusion (struct
 * unet_config, struct diffusion_config): what config.h gathers from YAML, and what unet.h
 * and trainer.h are built from. Their defaults, bounds and checks are the key table's
 * (config_keys.c; config.h: config_default_model, config_check_model, ...). */
#ifndef DDIM_MODEL_CONFIG_H
#define DDIM_MODEL_CONFIG_H

#include "backend.h" /* enum loss_kind */

#include <stddef.h>
#include <stdint.h>

enum { UNET_MAX_LEVELS = 8 };

struct unet_config {
    int image_size;                /* model.image_size */
    int widths[UNET_MAX_LEVELS];   /* model.widths: channels per level; the last is the middle */
    int num_levels;                /* entries used in widths */
    int block_depth;               /* model.block_depth */
    int embedding_dims;            /* model.embedding_dims */
    float embedding_min_frequency; /* model.embedding_min_frequency */
    float embedding_max_frequency; /* model.embedding_max_frequency */
    float bn_momentum;             /* model.bn_momentum */
    float bn_epsilon;              /* model.bn_epsilon */
};

struct diffusion_config {
    float min_signal_rate, max_signal_rate;     /* diffusion.min_signal_rate, ... */
    enum loss_kind loss;                        /* train.loss */
    float learning_rate, weight_decay;          /* train.learning_rate, train.weight_decay */
    float adam_beta1, adam_beta2, adam_epsilon; /* train.adam_beta_1, ... */
    float ema;                                  /* train.ema */
    uint64_t seed;                              /* train.seed: keys every random stream */
};

#endif
