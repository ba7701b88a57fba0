/* h5_util.h: small HDF5 helpers with errors that name the file, the object and what was
 * expected. Used by the dataset reader, checkpoints and the Keras fixture test. HDF5's own
 * error stack printing is turned off; callers get one clear message instead. */
#ifndef DDIM_H5_UTIL_H
#define DDIM_H5_UTIL_H

#include <hdf5.h>
#include <stddef.h>

enum { H5U_MAX_DIMS = 8 };

/* HDF5's member of the check family (CUDA_CHECK, MPI_CHECK, ...), for calls that cannot
 * fail on good handles (closing, dataspaces, attributes of a file just written): a
 * negative result ends the program through DDIM_FATAL, naming the rank, the host,
 * file:line, the call and HDF5's own innermost message. Bad input never goes through it:
 * readers return errors that name the file and the object. */
#define H5_CHECK(expr) h5u_check_at(__FILE__, __LINE__, (long long)(expr), #expr)
void h5u_check_at(const char *file, int line, long long rc, const char *call);

/* HDF5's description of the innermost error on this thread's stack into buf ("" when
 * none), e.g. "unable to open file: name = 'x.h5', errno = 2, ..."; returns buf. */
const char *h5u_last_error(char *buf, size_t len);

/* Why the read that just failed failed, into buf: HDF5's innermost message
 * (h5u_last_error), with what it means when it is a Fletcher32 checksum error (the file is
 * damaged); returns buf. Call before any other HDF5 call clears the error stack. */
const char *h5u_read_failure(char *buf, size_t len);

/* Opens read-only; returns < 0 with a message in err. */
hid_t h5u_open_read(const char *path, char *err, size_t errlen);

/* Whether an object (dataset or group) exists at `name` (intermediate groups may be
 * missing). */
int h5u_exists(hid_t file, const char *name);

/* Shape of dataset `name`: *ndim dims into shape. Every element it declares must be stored
 * in the file (a contiguous dataset's bytes allocated, every chunk of a chunked one
 * written), so that a small file cannot make a reader allocate for 2^31 images it does not
 * hold. 0 on success, -1 with a message. */
int h5u_shape(hid_t file, const char *file_label, const char *name, int *ndim,
              size_t shape[H5U_MAX_DIMS], char *err, size_t errlen);

/* malloc of `bytes` for dataset `name` of a file, when they fit in host memory
 * (util_memory_check); else NULL with "FILE: dataset 'NAME' needs 3.2 GiB of host memory,
 * more than ..." in err. */
void *h5u_alloc_for(const char *file_label, const char *name, size_t bytes, char *err,
                    size_t errlen);

/* Reads dataset `name` as float32 into out, which holds `count` floats; the dataset must
 * have exactly `count` elements (its shape is reported in the error otherwise). */
int h5u_read_floats(hid_t file, const char *file_label, const char *name, float *out, size_t count,
                    char *err, size_t errlen);

/* h5u_read_floats, then every value must be a finite number: a NaN or an infinity is an
 * error naming the file, the dataset and the first such element (a damaged file, or one
 * saved from a run that had diverged). For weights, normalizers, anything a model uses. */
int h5u_read_finite_floats(hid_t file, const char *file_label, const char *name, float *out,
                           size_t count, char *err, size_t errlen);

/* Reads a numeric attribute of object `obj` ("/" for the file) as doubles; *count in:
 * capacity, out: elements read. */
int h5u_read_attr_doubles(hid_t file, const char *file_label, const char *obj, const char *attr,
                          double *out, size_t *count, char *err, size_t errlen);

/* Reads string attribute `attr` of the file root (fixed or variable length) into buf. */
int h5u_read_attr_str(hid_t file, const char *file_label, const char *attr, char *buf, size_t len,
                      char *err, size_t errlen);

/* String-array attribute `attr` of object `obj` (fixed or variable length strings, ASCII or
 * UTF-8, as Keras's HDF5 files hold `layer_names` and `weight_names`; an attribute with no
 * elements, of any type, is an empty list: Keras stores `[]` as a float64 array of length
 * 0): *out gets *count malloc'd strings in one malloc'd array (free with
 * h5u_free_strings). 0, or -1 with a message. */
int h5u_read_attr_strings(hid_t file, const char *file_label, const char *obj, const char *attr,
                          char ***out, int *count, char *err, size_t errlen);
void h5u_free_strings(char **strings, int count);

/* Root attribute `name`: n int64 values (a scalar when n == 1). 0 or -1. */
int h5u_write_attr_i64(hid_t file, const char *name, const long long *v, int n);

/* Root attribute `name`: a fixed-length string (h5py reads it as bytes). 0 or -1. */
int h5u_write_attr_str(hid_t file, const char *name, const char *text);

/* Creates dataset `name` of loc (parent groups created) of `type` and shape dims (rank
 * dims), as every dataset the project writes is stored: chunked (chunk: one chunk of the
 * given shape; NULL: the whole dataset in one chunk), deflated at `gzip` (0: not
 * compressed), and with HDF5's Fletcher32 checksum of every chunk as the last filter, which
 * HDF5 verifies on every read: a flipped bit fails the read ("data error detected by
 * Fletcher32 checksum") instead of loading a wrong value. A dataset with no elements is
 * stored contiguous (HDF5 has no chunk of size 0). The id, or < 0. */
hid_t h5u_create_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                         const hsize_t *chunk, int gzip);

/* Whether h5u_create_dataset adds the checksums (1, the default). Off only to measure what
 * they cost (tools/bench_checkpoint.sh): the datasets are then stored as they were before
 * the checksums (contiguous unless compressed or given a chunk shape). */
void h5u_set_checksums(int on);

/* Dataset `name` (parent groups created): n float32 values, as h5u_create_dataset stores
 * them. 0 or -1. */
int h5u_write_floats(hid_t file, const char *name, const float *v, size_t n);

/* Atomic files, built in memory: h5u_create_tmp opens an empty HDF5 file that lives in
 * memory and puts the name of its temporary, "path.tmp", into tmp (h5u_create_mem does the
 * same under a name of the caller's, which must be "path.tmp" for a later h5u_commit).
 * h5u_commit takes that file and the writer's status rc, and always closes the file; when
 * rc is 0 it writes the file's image with atomic_file_write (path.tmp, fsync, rename: a
 * crash or a full disk leaves the previous file whole, and the message says the system's
 * cause). HDF5 itself never writes to the disk, so no error leaves an HDF5 file half-open.
 * Takes the file's size in host memory twice while committing. 0, or -1 with a message
 * naming the file. */
hid_t h5u_create_mem(const char *name, char *err, size_t errlen);
hid_t h5u_create_tmp(const char *path, char *tmp, size_t tmplen, char *err, size_t errlen);
int h5u_commit(hid_t file, const char *tmp, const char *path, int rc, char *err, size_t errlen);

#endif
