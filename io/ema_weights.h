/* ema_weights.h: what sampling needs from a trained model, read from a checkpoint
 * (checkpoint.h: /ema_weights) or from an EMA export, and the export itself: a small HDF5
 * file with only
 *   /weights/<layer>/<weight>               the EMA network (BN moving statistics included)
 *   /normalizer/mean, /normalizer/variance  (3) each
 *   root attributes: format ("ddim-dist ema weights 1"), image_size, widths, block_depth,
 *   embedding_dims, config (the training run's resolved configuration as YAML).
 * Weights use the layout of weights_h5.h, so h5py and h5dump show them by name. */
#ifndef DDIM_EMA_WEIGHTS_H
#define DDIM_EMA_WEIGHTS_H

#include "config.h"
#include "unet.h"

#include <stddef.h>

#define EMA_WEIGHTS_FORMAT "ddim-dist ema weights 1"

struct ema_weights {
    struct run_config cfg; /* defaults, then the stored config, then the stored model shape */
    char *config_yaml;     /* the stored config text (malloc'd; "" when there was none) */
    struct unet *net;      /* built from cfg.model (host only: the parameter table) */
    float *w;              /* the EMA network's weights, unet_params(net)->total floats */
    float norm[6];         /* the normalizer: mean[3], variance[3] */
};

/* Reads a checkpoint (from_checkpoint: format "ddim-dist checkpoint 1", group
 * /ema_weights) or an EMA export (format EMA_WEIGHTS_FORMAT, group /weights). A missing or
 * unreadable file, the other format, a missing dataset or attribute, or a stored config or
 * shape that cannot be built is an error naming the file and what is wrong. 0 or -1. */
int ema_weights_read(const char *path, int from_checkpoint, struct ema_weights *ew, char *err,
                     size_t errlen);

/* Writes ew as an EMA export at path atomically (path.tmp, fsync, rename). 0 or -1. */
int ema_weights_export(const char *path, const struct ema_weights *ew, char *err, size_t errlen);

void ema_weights_free(struct ema_weights *ew);

#endif
