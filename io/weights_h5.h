/* weights_h5.h: a network's weights and shape in HDF5, one dataset per weight at
 * "<group>/<layer>/<weight>" (e.g. "/weights/down0_block1_conv2/kernel"), in Keras's shapes
 * (kernels HWIO). The same layout serves checkpoints, EMA exports and the Keras fixture,
 * so h5py and h5dump show every weight by its Keras-style name. */
#ifndef DDIM_WEIGHTS_H5_H
#define DDIM_WEIGHTS_H5_H

#include "params.h"

#include <hdf5.h>
#include <stddef.h>

enum { MODEL_SHAPE_MAX_LEVELS = 8 };

/* The U-Net's shape as checkpoints and EMA exports store it (root attributes image_size,
 * widths, block_depth, embedding_dims): what the weights were written for. */
struct model_shape {
    int image_size;
    int widths[MODEL_SHAPE_MAX_LEVELS]; /* channels per level; the last is the middle */
    int num_levels;
    int block_depth;
    int embedding_dims;
};

/* The four shape attributes on the file's root group. 0, or -1 (nothing said). */
int weights_h5_write_shape(hid_t file, const struct model_shape *s);

/* Reads them, each a positive whole number; 0, or -1 with a message naming the file and
 * the attribute. */
int weights_h5_read_shape(hid_t file, const char *file_label, struct model_shape *s, char *err,
                          size_t errlen);

/* 0 when the file's shape is `want`; else -1 with a message naming the file, the attribute
 * and both values. */
int weights_h5_check_shape(hid_t file, const char *file_label, const struct model_shape *want,
                           char *err, size_t errlen);

/* Reads every weight of the table from `group` into host (params->total floats), checking
 * each one's presence and shape; 0, or -1 with a message naming the file and weight. With
 * trainable_only, moving statistics are skipped (for gradient groups). With host NULL it
 * only checks presence and shapes: before allocating for a model that a file describes. */
int weights_read_h5(hid_t file, const char *file_label, const char *group,
                    const struct param_table *params, float *host, int trainable_only, char *err,
                    size_t errlen);

/* Writes every weight (or only trainable ones) under `group` (created with parents). */
int weights_write_h5(hid_t file, const char *file_label, const char *group,
                     const struct param_table *params, const float *host, int trainable_only,
                     char *err, size_t errlen);

#endif
