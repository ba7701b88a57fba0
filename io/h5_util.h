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

/* Reads string attribute `attr` of the file root (fixed or variable length) into buf. */
int h5u_read_attr_str(hid_t file, const char *file_label, const char *attr, char *buf, size_t len,
                      char *err, size_t errlen);

/* Root attribute `name`: n int64 values (a scalar when n == 1). 0 or -1. */
int h5u_write_attr_i64(hid_t file, const char *name, const long long *v, int n);

/* Root attribute `name`: a fixed-length string (h5py reads it as bytes). 0 or -1. */
int h5u_write_attr_str(hid_t file, const char *name, const char *text);

/* Dataset `name` (parent groups created): n float32 values. 0 or -1. */
int h5u_write_floats(hid_t file, const char *name, const float *v, size_t n);

/* Atomic files: h5u_create_tmp creates the file in memory (its name "path.tmp" into tmp);
 * h5u_commit takes the open file and the writer's status rc: when rc is 0 it writes the
 * file's image with atomic_file_write (path.tmp, fsync, rename: a crash or a full disk
 * leaves the previous file whole, and the message says the system's cause). The file is
 * closed in every case. Takes the file's size in host memory twice while committing.
 * 0, or -1 with a message naming the file. */
hid_t h5u_create_tmp(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen);
int h5u_commit(hid_t file, const char *tmp, const char *path, int rc, char *err, size_t errlen);

#endif
