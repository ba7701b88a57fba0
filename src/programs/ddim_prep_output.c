/* ddim_prep_output.c: ddim-prep's output file (its layout written by io/dataset_write.c), the
 * split shuffle and the training statistics. The file is built in memory, written as PATH.tmp and
 * renamed when complete. */
#define _POSIX_C_SOURCE 200809L
#include "dataset.h"
#include "ddim_prep.h"
#include "h5_util.h"
#include "rng.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void prep_shuffle(long *perm, long n, uint64_t seed)
{
    for (long i = n - 1; i > 0; i--) {
        /* one 32-bit Philox word per step, mapped to [0, i] by multiply-shift */
        philox4x32_ctr_t r = rng_block(seed, PREP_RNG_SPLIT, 0, 0, (uint32_t)(i / 4));
        long j = (long)(((uint64_t)r.v[i % 4] * (uint64_t)(i + 1)) >> 32);
        long t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void prep_quantize(const float *x, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i] < 0.0f ? 0.0f : (x[i] > 1.0f ? 1.0f : x[i]);
        out[i] = (uint8_t)lrintf(255.0f * v);
    }
}

void prep_channel_stats(const uint8_t *images, long n, int size, double mean[3], double variance[3])
{
    size_t pixels = (size_t)n * (size_t)size * (size_t)size;
    long long hist[3][256];
    memset(hist, 0, sizeof hist);
    for (size_t p = 0; p < pixels; p++)
        for (int c = 0; c < 3; c++)
            hist[c][images[p * 3 + c]]++;
    for (int c = 0; c < 3; c++) {
        double sum = 0.0, sq = 0.0;
        for (int v = 0; v < 256; v++)
            sum += (double)hist[c][v] * (v / 255.0);
        mean[c] = pixels ? sum / (double)pixels : 0.0;
        for (int v = 0; v < 256; v++) {
            double d = v / 255.0 - mean[c];
            sq += (double)hist[c][v] * d * d;
        }
        variance[c] = pixels ? sq / (double)pixels : 0.0;
    }
}

/* ---- interrupt safety: remove PATH.tmp on SIGINT/SIGTERM ------------------------------- */

static char pending_tmp[1040]; /* the .tmp being written, or "" */

static void on_signal(int sig)
{
    if (pending_tmp[0])
        unlink(pending_tmp); /* async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

int prep_output_create(struct prep_output *o, const char *path, char *err, size_t errlen)
{
    o->file = -1;
    o->tmp_path[0] = '\0';
    if (strlen(path) >= sizeof o->path - 8)
        return util_error(err, errlen, "--output: path too long (%zu characters)", strlen(path));
    snprintf(o->path, sizeof o->path, "%s", path);
    snprintf(o->tmp_path, sizeof o->tmp_path, "%s.tmp", path);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return util_error(err, errlen,
                          "--output %s: is a directory, expected a file name such as "
                          "%s/flowers64.h5",
                          path, path);
    /* a plain fopen first, for an errno that says why (missing folder, permissions) */
    FILE *probe = fopen(o->tmp_path, "wb");
    if (!probe) {
        int e = errno;
        o->tmp_path[0] = '\0';
        return util_error(err, errlen,
                          "--output %s: cannot create %s.tmp (%s): is the folder "
                          "there and writable?",
                          path, path, strerror(e));
    }
    fclose(probe);
    snprintf(pending_tmp, sizeof pending_tmp, "%s", o->tmp_path);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* built in memory, then written out by h5u_commit: a full disk fails a plain write,
     * never one of HDF5's (which would leave the file half-open) */
    o->file = h5u_create_mem(o->tmp_path, err, errlen);
    if (o->file < 0) {
        prep_output_abort(o);
        return -1;
    }
    return 0;
}

int prep_output_write(struct prep_output *o, const uint8_t *images, long n_train, long n_val,
                      int size, const struct dataset_meta *meta, char *err, size_t errlen)
{
    struct dataset_meta m = *meta;
    prep_channel_stats(images, n_train, size, m.mean, m.variance);
    return dataset_write(o->file, o->tmp_path, images, n_train, n_val, size, &m, err, errlen);
}

int prep_output_commit(struct prep_output *o, char *err, size_t errlen)
{
    int rc = h5u_commit(o->file, o->tmp_path, o->path, 0, err, errlen); /* closes the file */
    o->file = -1;
    if (rc != 0)
        return -1;
    o->tmp_path[0] = '\0';
    pending_tmp[0] = '\0';
    return 0;
}

void prep_output_abort(struct prep_output *o)
{
    if (o->file >= 0)
        H5Fclose(o->file);
    o->file = -1;
    if (o->tmp_path[0])
        unlink(o->tmp_path);
    o->tmp_path[0] = '\0';
    pending_tmp[0] = '\0';
}
