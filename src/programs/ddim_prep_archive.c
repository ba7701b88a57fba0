/* ddim_prep_archive.c: ddim-prep's --input ARCHIVE: the images of a .tar, .tar.gz/.tgz, .zip (any
 * archive libarchive reads) decoded straight from the archive, never unpacked. The order is
 * the folder's (entries sorted by their path), so an archive and its unpacked folder give
 * the same dataset. A compressed tar cannot be read out of order, so the archive is read
 * twice: once for the list of names (the sort, the split and --limit need all of them), once
 * for the pixels, decoded in parallel a batch of entries at a time. */
#define _POSIX_C_SOURCE 200809L
#include "ddim_prep.h"
#include "image_list.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { ARCHIVE_BATCH = 64, ARCHIVE_BLOCK = 1 << 16 };

/* An image entry: a regular file whose base name has an image extension and is no dot
 * file (such as the ._name files macOS adds to archives). */
static int is_image_entry(struct archive_entry *e)
{
    if (archive_entry_filetype(e) != AE_IFREG || !archive_entry_pathname(e))
        return 0;
    const char *path = archive_entry_pathname(e), *base = strrchr(path, '/');
    return image_list_name_ok(base ? base + 1 : path); /* the folders' rule (image_list.h) */
}

static struct archive *open_archive(const char *path, char *err, size_t errlen)
{
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_filename(a, path, ARCHIVE_BLOCK) != ARCHIVE_OK) {
        util_error(err, errlen, "--input %s: cannot read it as an archive (libarchive: %s)", path,
                   archive_error_string(a) ? archive_error_string(a) : "unknown error");
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* The next entry: 1, 0 at the end, -1 with a message on a damaged archive. */
static int next_entry(struct archive *a, const char *path, struct archive_entry **e, char *err,
                      size_t errlen)
{
    int r = archive_read_next_header(a, e);
    if (r == ARCHIVE_EOF)
        return 0;
    if (r == ARCHIVE_OK || r == ARCHIVE_WARN)
        return 1;
    return util_error(err, errlen, "--input %s: damaged or truncated archive (libarchive: %s)",
                      path, archive_error_string(a) ? archive_error_string(a) : "unknown error");
}

int prep_archive_list(const char *path, char ***names, long *count, char *err, size_t errlen)
{
    struct archive *a = open_archive(path, err, errlen);
    if (!a)
        return -1;
    long n = 0, cap = 1024, others = 0;
    char **list = util_xmalloc((size_t)cap * sizeof(char *));
    struct archive_entry *e;
    int r;
    while ((r = next_entry(a, path, &e, err, errlen)) == 1) {
        if (!is_image_entry(e)) {
            others += archive_entry_filetype(e) == AE_IFREG;
            continue;
        }
        if (n == cap) {
            cap *= 2;
            char **grown = realloc(list, (size_t)cap * sizeof(char *));
            if (!grown)
                DDIM_FATAL("out of memory listing %s", path);
            list = grown;
        }
        const char *name = archive_entry_pathname(e);
        list[n] = util_xmalloc(strlen(name) + 1);
        memcpy(list[n++], name, strlen(name) + 1);
    }
    archive_read_free(a);
    qsort(list, (size_t)n, sizeof(char *), image_list_compare);
    long unique = 0; /* a tar may hold a path twice (appended): the later copy wins below */
    for (long i = 0; i < n; i++) {
        if (unique > 0 && !strcmp(list[i], list[unique - 1]))
            free(list[i]);
        else
            list[unique++] = list[i];
    }
    if (r == 0 && unique == 0)
        r = util_error(err, errlen,
                       "--input %s: no image files (.jpg, .jpeg or .png) in the archive (%ld "
                       "other files)",
                       path, others);
    if (r != 0) {
        for (long i = 0; i < unique; i++)
            free(list[i]);
        free(list);
        return -1;
    }
    if (others)
        fprintf(stderr,
                "ddim-prep: note: ignoring %ld files in %s without a .jpg/.jpeg/.png name\n",
                others, path);
    *names = list;
    *count = unique;
    return 0;
}

/* The current entry's bytes (malloc'd). 0, or -1 with a message. */
static int read_data(struct archive *a, struct archive_entry *e, const char *path,
                     unsigned char **data, size_t *size, char *err, size_t errlen)
{
    const char *name = archive_entry_pathname(e);
    la_int64_t hint = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    size_t cap = hint > 0 ? (size_t)hint + 1 : ARCHIVE_BLOCK, len = 0;
    unsigned char *buf = util_xmalloc(cap);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            unsigned char *grown = realloc(buf, cap);
            if (!grown)
                DDIM_FATAL("out of memory reading %s from %s", name, path);
            buf = grown;
        }
        la_ssize_t got = archive_read_data(a, buf + len, cap - len);
        if (got == 0)
            break;
        if (got < 0) {
            free(buf);
            return util_error(err, errlen, "--input %s: cannot read %s (libarchive: %s)", path,
                              name, archive_error_string(a) ? archive_error_string(a) : "?");
        }
        len += (size_t)got;
    }
    *data = buf;
    *size = len;
    return 0;
}

struct pending {
    long slot;
    char label[1024];
    unsigned char *data;
    size_t size;
};

/* Decodes and preprocesses a batch of entries in parallel into their slots; frees their
 * bytes. Returns how many could not be decoded (reported by name). */
static long decode_batch(struct pending *batch, int nb, int size, enum image_jpeg_dct dct,
                         uint8_t *images, char *ok)
{
    const size_t per_image = (size_t)size * (size_t)size * 3;
    long failed = 0;
#pragma omp parallel reduction(+ : failed)
    {
        float *x = util_xmalloc(per_image * sizeof(float));
        char err[1200];
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < nb; i++) {
            struct image_u8 img;
            struct pending *p = &batch[i];
            ok[p->slot] = image_decode(p->label, p->data, p->size, &img, dct, err, sizeof err) == 0;
            if (ok[p->slot]) {
                image_center_crop_resize(&img, size, x);
                prep_quantize(x, per_image, images + (size_t)p->slot * per_image);
                image_free(&img);
            } else {
                failed++;
#pragma omp critical(prep_archive_warn)
                fprintf(stderr, "ddim-prep: warning: skipping %s\n", err);
            }
            free(p->data);
        }
        free(x);
    }
    return failed;
}

long prep_archive_load(const char *path, char **names, long count, const long *order, long n,
                       int size, enum image_jpeg_dct dct, uint8_t *images, char *ok, char *err,
                       size_t errlen)
{
    struct archive *a = open_archive(path, err, errlen);
    if (!a)
        return -1;
    long *slot_of = util_xmalloc((size_t)count * sizeof(long));
    for (long j = 0; j < count; j++)
        slot_of[j] = -1;
    for (long i = 0; i < n; i++)
        slot_of[order[i]] = i;
    memset(ok, 0, (size_t)n);
    struct pending *batch = util_xcalloc(ARCHIVE_BATCH, sizeof *batch);
    int nb = 0, r;
    long done = 0;
    double t0 = util_now(), last = t0;
    struct archive_entry *e;
    while ((r = next_entry(a, path, &e, err, errlen)) == 1) {
        const char *name = archive_entry_pathname(e);
        char **hit = is_image_entry(e)
                         ? bsearch(&name, names, (size_t)count, sizeof(char *), image_list_compare)
                         : NULL;
        if (!hit || slot_of[hit - names] < 0)
            continue; /* not used (--limit): libarchive skips its bytes */
        struct pending *p = &batch[nb];
        p->slot = slot_of[hit - names];
        snprintf(p->label, sizeof p->label, "%s:%s", path, name);
        if ((r = read_data(a, e, path, &p->data, &p->size, err, errlen)) != 0)
            break;
        if (++nb == ARCHIVE_BATCH || done + nb == n) {
            decode_batch(batch, nb, size, dct, images, ok);
            done += nb;
            nb = 0;
            double now = util_now();
            if (now - last >= 1.0 || done == n) {
                fprintf(stderr, "ddim-prep: %ld/%ld images from the archive, %.0f images/s\n", done,
                        n, (double)done / (now - t0 + 1e-9));
                last = now;
            }
        }
    }
    for (int i = 0; i < nb && r != 0; i++)
        free(batch[i].data);
    if (r == 0 && nb > 0)
        decode_batch(batch, nb, size, dct, images, ok);
    archive_read_free(a);
    free(batch);
    free(slot_of);
    if (r != 0)
        return -1;
    long skipped = 0;
    for (long i = 0; i < n; i++)
        skipped += !ok[i];
    return skipped;
}
