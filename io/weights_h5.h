/* weights_h5.h: a network's weights in HDF5, one dataset per weight at
 * "<group>/<layer>/<weight>" (e.g. "/weights/down0_block1_conv2/kernel"), in Keras's shapes
 * (kernels HWIO). The same layout serves checkpoints, EMA exports and the Keras fixture,
 * so h5py and h5dump show every weight by its Keras-style name. */
#ifndef DDIM_WEIGHTS_H5_H
#define DDIM_WEIGHTS_H5_H

#include "params.h"

#include <hdf5.h>
#include <stddef.h>

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
