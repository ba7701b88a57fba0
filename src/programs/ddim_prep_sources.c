/* ddim_prep_sources.c: where ddim-prep's images come from: the folder listing (archives:
 * ddim_prep_archive.c, and stand-ins here for a build without libarchive), and the hidden
 * --dump-resize option that lets tools/check_resize.py compare our resize with TF's on the
 * very pixels libjpeg decoded. */
#define _POSIX_C_SOURCE 200809L
#include "ddim_prep.h"
#include "image_io.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static int has_image_extension(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot &&
           (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png"));
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether sub (a subfolder of dir) directly holds an image file: for the error's hint. */
static int folder_has_images(const char *dir, const char *sub)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));)
        found = e->d_name[0] != '.' && has_image_extension(e->d_name);
    closedir(d);
    return found;
}

int prep_list_images(const char *dir, char ***names, long *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d)
        return util_error(err, errlen, "--input %s: cannot open the folder (%s)", dir,
                          strerror(errno));
    long n = 0, cap = 1024, others = 0;
    char **list = util_xmalloc((size_t)cap * sizeof(char *));
    char hint[600] = "", path[4096];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            if (!hint[0] && folder_has_images(dir, e->d_name))
                snprintf(hint, sizeof hint,
                         "; its subfolder '%s' holds images: did you mean "
                         "--input %s/%s?",
                         e->d_name, dir, e->d_name);
            continue;
        }
        if (!S_ISREG(st.st_mode) || !has_image_extension(e->d_name)) {
            others++;
            continue;
        }
        if (n == cap) {
            cap *= 2;
            char **grown = realloc(list, (size_t)cap * sizeof(char *));
            if (!grown)
                DDIM_FATAL("out of memory listing %s", dir);
            list = grown;
        }
        list[n] = util_xmalloc(strlen(e->d_name) + 1);
        memcpy(list[n], e->d_name, strlen(e->d_name) + 1);
        n++;
    }
    closedir(d);
    if (n == 0) {
        free(list);
        return util_error(err, errlen,
                          "--input %s: no image files (.jpg, .jpeg or .png) in the folder "
                          "(%ld other files)%s",
                          dir, others, hint);
    }
    if (others)
        fprintf(stderr,
                "ddim-prep: note: ignoring %ld files in %s without a .jpg/.jpeg/.png "
                "name\n",
                others, dir);
    qsort(list, (size_t)n, sizeof(char *), compare_names);
    *names = list;
    *count = n;
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
