/* params.h: the table of every weight of a network, by name, in one flat buffer.
 *
 * All trainable weights (kernels, biases) come first, then the non-trainable BatchNorm
 * moving statistics. So the gradients are one buffer of `trainable` floats (one fused
 * all-reduce, one AdamW launch), and the EMA runs over all `total` floats, as the Keras
 * example's EMA loop runs over network.weights, moving statistics included. Names are
 * "<layer>/<weight>" (e.g. "down0_block1_conv2/kernel"), the same in checkpoints and in
 * the Keras fixture. */
#ifndef DDIM_PARAMS_H
#define DDIM_PARAMS_H

#include <stddef.h>

enum param_kind { PARAM_KERNEL, PARAM_BIAS, PARAM_MOVING_MEAN, PARAM_MOVING_VARIANCE };

struct param {
    char name[64];
    enum param_kind kind;
    int ndim;
    int shape[4];  /* kernels: (k, k, cin, cout); vectors: (c) */
    size_t offset; /* in floats, into the flat buffer */
    size_t count;
};

struct param_table {
    struct param *items;
    int count, capacity;
    size_t trainable; /* floats of trainable weights: [0, trainable) */
    size_t total;     /* all floats */
};

/* Adds a parameter (in any order); returns its index. */
int params_add(struct param_table *t, const char *layer, enum param_kind kind, int ndim,
               const int *shape);
/* Assigns offsets: trainable weights first, then moving statistics. */
void params_finalize(struct param_table *t);
void params_free(struct param_table *t);
int params_is_trainable(enum param_kind kind);
const char *params_kind_name(enum param_kind kind); /* "kernel", "bias", ... */

#endif
