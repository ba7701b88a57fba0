/* dataset.h: the preprocessed image dataset, one HDF5 file made by ddim-prep: its layout,
 * defined here once, the reader (dataset.c) and the writer (dataset_write.c).
 *
 * Layout (h5py / h5dump readable):
 *   /train/images       uint8 (N, S, S, 3), chunked one image per chunk, gzip
 *   /validation/images  uint8 (M, S, S, 3), same
 *   attributes of "/":
 *     format = "ddim-dist dataset 1", source (string), image_size, num_train,
 *     num_validation, split_seed, validation_fraction, skipped (unreadable inputs),
 *     preprocessing (string: crop and resize method),
 *     train_mean (3, float64), train_variance (3, float64): per-channel mean and
 *     (biased) variance of the training images scaled to [0, 1], as Keras
 *     Normalization.adapt computes them,
 *     train_xxh128, validation_xxh128 (strings, 32 hex digits): the split's content
 *     fingerprint, the XXH3 128-bit hash (xxHash) of its uint8 pixels in stored order (the
 *     dataset has no labels), what `xxh128sum` prints for the bytes of
 *     `h5dump -d /train/images -b LE -o x.bin` (files made before it have none: the reader
 *     computes it).
 * Images are read by index, so each rank reads only the images of its share of a batch;
 * or a whole split at once, to keep it resident in backend memory. */
#ifndef DDIM_DATASET_H
#define DDIM_DATASET_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#define DATASET_FORMAT "ddim-dist dataset 1"

enum dataset_split { SPLIT_TRAIN = 0, SPLIT_VALIDATION = 1 };

/* The names of the layout above, for the reader (dataset.c) and the writer
 * (dataset_write.c): indexed by enum dataset_split. */
extern const char *const dataset_split_group[2];       /* "/train", "/validation" */
extern const char *const dataset_split_images[2];      /* "/train/images", ... */
extern const char *const dataset_split_count[2];       /* "num_train", "num_validation" */
extern const char *const dataset_split_fingerprint[2]; /* "train_xxh128", ... */

struct dataset {
    char path[1024];
    hid_t file;
    hid_t images[2]; /* datasets of the two splits */
    long count[2];   /* images per split */
    int image_size;
    double mean[3], variance[3];
    char fingerprint[2][33]; /* per split: "" until dataset_fingerprint */
};

enum { DATASET_FINGERPRINT_HEX = 32 };

/* Opens and validates the file (format, shapes, attributes); errors name the file, the
 * object and what was expected. 0 or -1. */
int dataset_open(struct dataset *ds, const char *path, char *err, size_t errlen);
void dataset_close(struct dataset *ds);

/* Reads images idx[0..n) of a split into out (n, S, S, 3) as floats in [0, 1]. */
int dataset_read(struct dataset *ds, enum dataset_split split, const long *idx, int n, float *out,
                 char *err, size_t errlen);

/* Each split's content fingerprint (layout above) into ds->fingerprint: the stored
 * attribute, or, in a file made before fingerprints, computed from the pixels (one pass over
 * the file; *computed says so). 0 or -1 with a message naming the file. */
int dataset_fingerprint(struct dataset *ds, int *computed, char *err, size_t errlen);

/* The fingerprint of `bytes` pixels as hex (DATASET_FINGERPRINT_HEX digits and a NUL). */
void dataset_fingerprint_of(const uint8_t *pixels, size_t bytes, char hex[33]);

/* What the writer stores besides the images and their counts. */
struct dataset_meta {
    const char *source;        /* "folder ..." or "synthetic ..." */
    const char *preprocessing; /* crop and resize method */
    uint64_t split_seed;
    double validation_fraction;
    long skipped;                /* unreadable inputs */
    double mean[3], variance[3]; /* of the training images in [0, 1] */
};

/* Writes the layout above into an open (empty) file: images (n_train + n_val, S, S, 3),
 * the first n_train the training split, and the root attributes. 0, or -1 with a message
 * naming label. */
int dataset_write(hid_t file, const char *label, const uint8_t *images, long n_train, long n_val,
                  int size, const struct dataset_meta *meta, char *err, size_t errlen);

/* Reads a whole split into out (count, S, S, 3) as the stored uint8 pixels, in one
 * hyperslab: for keeping the training set resident in backend memory (data.resident). */
int dataset_read_all(struct dataset *ds, enum dataset_split split, uint8_t *out, char *err,
                     size_t errlen);

#endif
