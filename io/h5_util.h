/* h5_util.h: small HDF5 helpers with errors that name the file, the object and what was
 * expected. Used by the dataset reader, checkpoints and the Keras fixture test. HDF5's own
 * error stack printing is turned off; callers get one clear message instead. */
#ifndef DDIM_H5_UTIL_H
#define DDIM_H5_UTIL_H

#include <hdf5.h>
#include <stddef.h>

enum { H5U_MAX_DIMS = 8 };

/* Opens read-only; returns < 0 with a message in err. */
hid_t h5u_open_read(const char *path, char *err, size_t errlen);

/* Whether an object (dataset or group) exists at `name` (intermediate groups may be
 * missing). */
int h5u_exists(hid_t file, const char *name);

/* Shape of dataset `name`: *ndim dims into shape. 0 on success, -1 with a message. */
int h5u_shape(hid_t file, const char *file_label, const char *name, int *ndim,
              size_t shape[H5U_MAX_DIMS], char *err, size_t errlen);

/* Reads dataset `name` as float32 into out, which holds `count` floats; the dataset must
 * have exactly `count` elements (its shape is reported in the error otherwise). */
int h5u_read_floats(hid_t file, const char *file_label, const char *name, float *out, size_t count,
                    char *err, size_t errlen);

/* Reads a numeric attribute of object `obj` ("/" for the file) as doubles; *count in:
 * capacity, out: elements read. */
int h5u_read_attr_doubles(hid_t file, const char *file_label, const char *obj, const char *attr,
                          double *out, size_t *count, char *err, size_t errlen);

#endif
