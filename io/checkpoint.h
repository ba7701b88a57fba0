/* checkpoint.h: a training run's whole state in one HDF5 file, so that a stopped run
 * continues exactly where it left off (the random streams are keyed by the global step and
 * the epoch, so the state below is all there is):
 *   /weights/<layer>/<weight>         training network, BN moving statistics included
 *   /ema_weights/<layer>/<weight>     EMA network
 *   /optimizer/m/..., /optimizer/v/...  Adam moments (trainable weights only)
 *   /normalizer/mean, /normalizer/variance  (3) each
 *   root attributes: format ("ddim-dist checkpoint 1"), optimizer_step, epoch (epochs
 *   done), global_step, step_in_epoch (steps done of the next epoch), image_size, widths,
 *   block_depth, embedding_dims, config (the resolved configuration as YAML),
 *   data_train_xxh128, data_validation_xxh128 (the content fingerprints of the dataset it
 *   was trained on, dataset.h; absent in checkpoints made before them).
 * h5py and h5dump read it. Weights use the layout of weights_h5.h. */
#ifndef DDIM_CHECKPOINT_H
#define DDIM_CHECKPOINT_H

#include "params.h"
#include "weights_h5.h"

#include <stddef.h>

#define CHECKPOINT_FORMAT "ddim-dist checkpoint 1"

/* A training state in host memory: all that a checkpoint holds. src/model/trainer_state.c fills
 * it from a trainer and loads it back; it is the one list of what a training state is. */
struct train_state {
    struct model_shape shape;
    const struct param_table *params; /* the network's weights, by name */
    float *w;                         /* (total) training network, BN moving statistics */
    float *ema_w;                     /* (total) EMA network */
    float *adam_m, *adam_v;           /* (trainable) Adam moments */
    float norm[6];                    /* normalizer: mean[3], variance[3] */
    int step;                         /* optimizer steps done */
};

struct checkpoint_info {
    int epoch;                    /* epochs done */
    long global_step;             /* training steps done in all */
    long step_in_epoch;           /* steps done of epoch `epoch` (0-based) */
    char data_fingerprint[2][33]; /* the dataset's, per split (dataset.h); "": unknown */
};

/* Writes s and the position to path atomically: path.tmp is written, flushed, closed and
 * fsync'ed, then renamed over path, so that a crash while writing leaves the previous
 * checkpoint whole. 0, or -1 with a message naming the file. */
int checkpoint_write(const char *path, const struct train_state *s,
                     const struct checkpoint_info *pos, const char *config_yaml, char *err,
                     size_t errlen);

/* Checks the format and the model shape against s->shape (a difference is an error that
 * names the file, the attribute and both values), then reads the state into s's buffers
 * (allocated by the caller for s->params) and the position into *pos. On error s may be
 * partly overwritten. */
int checkpoint_read(const char *path, struct train_state *s, struct checkpoint_info *pos, char *err,
                    size_t errlen);

/* The settings the checkpoint was written with (its "config" attribute, YAML; "" if it has
 * none), malloc'ed; NULL with a message. */
char *checkpoint_read_config(const char *path, char *err, size_t errlen);

#endif
