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

#include "params.h"
#include "weights_h5.h"

#include <stddef.h>

#define EMA_WEIGHTS_FORMAT "ddim-dist ema weights 1"

/* What the file holds, in host memory. The model layer (src/model/infer_model.h) turns the
 * stored config and shape into a network and reads the weights for its parameter table. */
struct ema_weights {
    struct model_shape shape; /* what the weights were written for */
    char *config_yaml;        /* the stored config text (malloc'd; "" when there was none) */
    float *w;                 /* the EMA network's weights (params->total floats), or NULL */
    float norm[6];            /* the normalizer: mean[3], variance[3] */
};

/* Reads the head of a checkpoint (from_checkpoint: format "ddim-dist checkpoint 1") or of
 * an EMA export (format EMA_WEIGHTS_FORMAT): the format, the stored config text and the
 * shape, into ew (weights not yet read). A missing or unreadable file, the other format,
 * a missing attribute is an error naming the file and what is wrong. 0 or -1. */
int ema_weights_read_head(const char *path, int from_checkpoint, struct ema_weights *ew, char *err,
                          size_t errlen);

/* Then the weights (group /ema_weights of a checkpoint, /weights of an export) by the
 * names and shapes of params, and the normalizer. 0 or -1. */
int ema_weights_read_weights(const char *path, int from_checkpoint,
                             const struct param_table *params, struct ema_weights *ew, char *err,
                             size_t errlen);

/* Writes ew (weights named by params) as an EMA export at path atomically (path.tmp,
 * fsync, rename). 0 or -1. */
int ema_weights_export(const char *path, const struct ema_weights *ew,
                       const struct param_table *params, char *err, size_t errlen);

void ema_weights_free(struct ema_weights *ew);

#endif
