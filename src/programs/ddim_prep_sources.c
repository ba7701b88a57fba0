/* ddim_prep_sources.c: where ddim-prep's images come from: the folder listing (archives:
 * ddim_prep_archive.c, and stand-ins here for a build without libarchive), and the hidden
 * --dump-resize option that lets tools/check_resize.py compare our resize with TF's on the
 * very pixels libjpeg decoded. */
#define _POSIX_C_SOURCE 200809L
#include "ddim_prep.h"
#include "image_io.h"
#include "image_list.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int prep_list_images(const char *dir, char ***names, long *count, char *err, size_t errlen)
{
    struct image_list l;
    char why[512];
    if (image_list_folder(dir, &l, why, sizeof why) != 0)
        return util_error(err, errlen, "--input %s: cannot open the folder (%s)", dir, why);
    if (l.count == 0) {
        char hint[600] = "";
        if (l.image_subfolder[0])
            snprintf(hint, sizeof hint,
                     "; its subfolder '%s' holds images: did you mean --input %s/%s?",
                     l.image_subfolder, dir, l.image_subfolder);
        long others = l.others;
        image_list_free(&l);
        return util_error(err, errlen,
                          "--input %s: no image files (.jpg, .jpeg or .png) in the folder "
                          "(%ld other files)%s",
                          dir, others, hint);
    }
    if (l.others)
        fprintf(stderr,
                "ddim-prep: note: ignoring %ld files in %s without a .jpg/.jpeg/.png "
                "name\n",
                l.others, dir);
    *names = l.names; /* the caller frees them */
    *count = l.count;
    return 0;
}

int prep_input_is_archive(const char *input)
{
    struct stat st;
    return stat(input, &st) == 0 && S_ISREG(st.st_mode);
}

#ifndef DDIM_HAVE_LIBARCHIVE
/* Built without libarchive (src/programs/ddim_prep_archive.c): an archive is refused, clearly. */
int prep_archive_list(const char *archive, char ***names, long *count, char *err, size_t errlen)
{
    (void)names;
    (void)count;
    return util_error(err, errlen,
                      "--input %s: this ddim-prep was built without libarchive, so it reads "
                      "folders only: unpack the archive and give its folder, or install "
                      "libarchive (Debian: libarchive-dev) and rebuild",
                      archive);
}

long prep_archive_load(const char *archive, char **names, long count, const long *order, long n,
                       int size, enum image_jpeg_dct dct, uint8_t *images, char *ok, char *err,
                       size_t errlen)
{
    (void)names, (void)count, (void)order, (void)n, (void)size, (void)dct, (void)images, (void)ok;
    return util_error(err, errlen, "--input %s: built without libarchive", archive);
}
#endif

int prep_dump_resize(const char *in, const char *out, int size, enum image_jpeg_dct dct)
{
    char err[1024];
    struct image_u8 img;
    if (image_load_dct(in, &img, dct, err, sizeof err) != 0) {
        fprintf(stderr, "ddim-prep: error: %s\n", err);
        return 1;
    }
    size_t n = (size_t)size * (size_t)size * 3;
    float *x = util_xmalloc(n * sizeof(float));
    image_center_crop_resize(&img, size, x);
    int32_t header[3] = {img.width, img.height, size};
    FILE *f = fopen(out, "wb");
    int rc = 0;
    if (!f || fwrite(header, sizeof header, 1, f) != 1 ||
        fwrite(img.pixels, (size_t)img.width * (size_t)img.height * 3, 1, f) != 1 ||
        fwrite(x, n * sizeof(float), 1, f) != 1) {
        fprintf(stderr, "ddim-prep: error: cannot write %s (%s)\n", out, strerror(errno));
        rc = 1;
    }
    if (f && fclose(f) != 0)
        rc = 1;
    free(x);
    image_free(&img);
    return rc;
}
