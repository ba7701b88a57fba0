/* ddim_prep.h: the parts of ddim-prep (src/programs/ddim_prep_*.c) shared between its files: the
 * synthetic flower generator, the seeded split shuffle and the output file (io/dataset.h's layout).
 */
#ifndef DDIM_PREP_H
#define DDIM_PREP_H

#include "dataset.h"
#include "image_io.h"

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Purposes of ddim-prep's Philox streams (src/base/rng.h); the trainer's are in backend.h. */
enum prep_rng_purpose { PREP_RNG_SPLIT = 101, PREP_RNG_SYNTHETIC = 102 };

/* Fisher-Yates shuffle of perm[0..n) with Philox(seed): the same permutation on every
 * machine. */
void prep_shuffle(long *perm, long n, uint64_t seed);

/* The image files directly inside dir (.jpg/.jpeg/.png, any case; no dot files), sorted by
 * name; *names: malloc'd array of malloc'd names. Errors name the folder; an empty folder is
 * an error, with a hint when a subfolder holds the images. */
int prep_list_images(const char *dir, char ***names, long *count, char *err, size_t errlen);

/* Whether --input names a file (an archive) rather than a folder. */
int prep_input_is_archive(const char *input);

/* The image entries of an archive (.tar, .tar.gz/.tgz, .zip: whatever libarchive reads):
 * regular files at any depth whose base name has an image extension and is no dot file,
 * sorted by their path (a folder's order when the archive holds one folder), duplicates
 * once. As prep_list_images; errors name the archive. */
int prep_archive_list(const char *archive, char ***names, long *count, char *err, size_t errlen);

/* Decodes entry names[order[i]] into slot i of images (n, size, size, 3) for i < n, reading
 * the archive once in its own order, with a progress line; ok[i] says whether it worked.
 * Returns the number skipped, or -1 with a message when the archive cannot be read. */
long prep_archive_load(const char *archive, char **names, long count, const long *order, long n,
                       int size, enum image_jpeg_dct dct, uint8_t *images, char *ok, char *err,
                       size_t errlen);

/* Hidden option --dump-resize IN OUT: writes int32 width, height, size, the decoded uint8
 * pixels (height, width, 3) and the preprocessed floats (size, size, 3), for
 * tools/check_resize.py. Returns the exit code. */
int prep_dump_resize(const char *in, const char *out, int size, enum image_jpeg_dct dct);

/* Renders synthetic flower number `index` of generator `seed` at size x size:
 * out (size, size, 3) floats in [0, 1]. Depends only on (seed, index, size). */
void prep_synthetic_image(uint64_t seed, long index, int size, float *out);

/* Stores x in [0, 1] as round(255 x). */
void prep_quantize(const float *x, size_t n, uint8_t *out);

/* Per-channel mean and biased variance of images (n, size, size, 3) as uint8 / 255,
 * computed exactly from per-channel histograms (in double). */
void prep_channel_stats(const uint8_t *images, long n, int size, double mean[3],
                        double variance[3]);

/* The output file is written as PATH.tmp and renamed to PATH only when complete, so an
 * error or an interrupt never leaves a half-written PATH behind. */
struct prep_output {
    char path[1024];
    char tmp_path[1040];
    hid_t file;
};

/* Creates PATH.tmp (and checks that PATH is writable) before any work is done. */
int prep_output_create(struct prep_output *o, const char *path, char *err, size_t errlen);
/* Writes images (n_train + n_val, size, size, 3), the first n_train the training split,
 * with meta and the training split's statistics (prep_channel_stats). */
int prep_output_write(struct prep_output *o, const uint8_t *images, long n_train, long n_val,
                      int size, const struct dataset_meta *meta, char *err, size_t errlen);
/* Closes PATH.tmp and renames it to PATH. */
int prep_output_commit(struct prep_output *o, char *err, size_t errlen);
/* Closes and deletes PATH.tmp (safe to call after a failed create or a commit). */
void prep_output_abort(struct prep_output *o);

#endif
