/* model_config.h: the plain settings of the network and of the diffusion (struct
 * unet_config, struct diffusion_config), with their defaults and checks: what config.h
 * gathers from YAML, and what unet.h and trainer.h are built from, without the network or
 * the trainer themselves (so config.c and config_yaml.c compile against settings only).
 * The defaults and checks are defined in unet.c and trainer.c. */
#ifndef DDIM_MODEL_CONFIG_H
#define DDIM_MODEL_CONFIG_H

#include "backend.h" /* enum loss_kind */

#include <stddef.h>
#include <stdint.h>

enum { UNET_MAX_LEVELS = 8 };

struct unet_config {
    int image_size;                /* square images, divisible by 2^(levels-1) */
    int widths[UNET_MAX_LEVELS];   /* channels per level; the last is the middle */
    int num_levels;                /* entries used in widths (>= 2) */
    int block_depth;               /* residual blocks per level */
    int embedding_dims;            /* sinusoidal embedding size, even */
    float embedding_min_frequency; /* 1 in the example */
    float embedding_max_frequency; /* 1000 in the example */
    float bn_momentum;             /* Keras default 0.99 */
    float bn_epsilon;              /* Keras default 1e-3 */
};

/* The example's network: 64 px, widths 32,64,96,128, depth 2, 32-dim embedding. */
struct unet_config unet_config_default(void);

/* 0 if the configuration can be built; else -1 and a message naming the bad field. */
int unet_config_check(const struct unet_config *cfg, char *err, size_t errlen);

struct diffusion_config {
    float min_signal_rate, max_signal_rate;     /* 0.02, 0.95 */
    enum loss_kind loss;                        /* MAE */
    float learning_rate, weight_decay;          /* 1e-3, 1e-4 */
    float adam_beta1, adam_beta2, adam_epsilon; /* 0.9, 0.999, 1e-7 (Keras) */
    float ema;                                  /* 0.999 */
    uint64_t seed;                              /* keys every random stream */
};

struct diffusion_config diffusion_config_default(void);
int diffusion_config_check(const struct diffusion_config *c, char *err, size_t errlen);

#endif
