/* test_prep_archive.c: ddim-prep --input ARCHIVE. A folder of images (PNGs, a JPEG, an
 * unreadable .jpg and a text file) is prepared from the folder and from a .tgz (tar), a
 * .tar and a .zip (libarchive) of it; the HDF5 contents (both splits' pixels, the counts,
 * the statistics, skipped) are identical, also with --limit; the archive run prints its
 * progress; macOS dot files and folders inside the archive are ignored. A truncated
 * archive, a file that is no archive and an archive without images fail with a message
 * naming the file.
 *
 * usage: test_prep_archive PATH/TO/ddim-prep */
#define _POSIX_C_SOURCE 200809L
#include "h5_util.h"
#include "image_io.h"
#include "test_util.h"
#include "util.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *prep;
static char tmp[] = "/tmp/ddim_test_prep_archive_XXXXXX";
static char log_text[16384];

enum { N_IMAGES = 12 };

static void expect(int ok, const char *what)
{
    if (ok)
        printf("ok   %s\n", what);
    else
        test_fail("%s", what);
}

/* Runs a shell command (printf-style), output into log_text; its exit status. */
static int shell(const char *fmt, ...)
{
    char cmd[4096], full[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s > %s/log.txt 2>&1", cmd, tmp);
    int st = system(full);
    snprintf(full, sizeof full, "%s/log.txt", tmp);
    FILE *f = fopen(full, "r");
    size_t n = f ? fread(log_text, 1, sizeof log_text - 1, f) : 0;
    log_text[n] = 0;
    if (f)
        fclose(f);
    printf("$ %s\n%s", cmd, log_text);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        DDIM_FATAL("cannot write %s", path);
}

/* tmp/src/flowers: N_IMAGES images named out of order of creation, a broken .jpg and a
 * README. */
static void make_folder(void)
{
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/src", tmp);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/src/flowers", tmp);
    mkdir(path, 0700);
    test_seed(5);
    uint8_t px[20 * 14 * 3];
    for (int i = 0; i < N_IMAGES; i++) {
        for (size_t j = 0; j < sizeof px; j++)
            px[j] = (uint8_t)(test_uniform(0.0f, 1.0f) * 255.999f);
        int k = (i * 7) % N_IMAGES; /* names not in creation order */
        snprintf(path, sizeof path, "%s/src/flowers/image_%05d.%s", tmp, k, i % 3 ? "png" : "jpg");
        int rc = i % 3 ? image_write_png(path, px, 20, 14, err, sizeof err)
                       : image_write_jpeg(path, px, 20, 14, 90, err, sizeof err);
        if (rc != 0)
            DDIM_FATAL("%s", err);
    }
    snprintf(path, sizeof path, "%s/src/flowers/broken.jpg", tmp);
    write_file(path, "\xff\xd8\xff not really", 14);
    snprintf(path, sizeof path, "%s/src/flowers/README.txt", tmp);
    write_file(path, "not an image\n", 13);
}

/* Adds one file entry to a libarchive writer. */
static void add_entry(struct archive *a, const char *name, const void *data, size_t size)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    if (archive_write_header(a, e) != ARCHIVE_OK ||
        archive_write_data(a, data, size) != (la_ssize_t)size)
        DDIM_FATAL("zip: %s", archive_error_string(a));
    archive_entry_free(e);
}

/* tmp/flowers.zip with libarchive: the folder's files (in reverse order, so the archive's
 * order is not the sorted one) and a macOS ._ file that is no image. */
static void make_zip(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/flowers.zip", tmp);
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    if (archive_write_open_filename(a, path) != ARCHIVE_OK)
        DDIM_FATAL("zip: %s", archive_error_string(a));
    if (shell("ls -r %s/src/flowers", tmp) != 0)
        DDIM_FATAL("ls failed");
    char names[sizeof log_text];
    memcpy(names, log_text, sizeof names);
    for (char *name = strtok(names, "\n"); name; name = strtok(NULL, "\n")) {
        char file[1024], entry[1024];
        snprintf(file, sizeof file, "%s/src/flowers/%s", tmp, name);
        snprintf(entry, sizeof entry, "flowers/%s", name);
        FILE *f = fopen(file, "rb");
        static unsigned char buf[1 << 16];
        size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f)
            fclose(f);
        add_entry(a, entry, buf, n);
    }
    add_entry(a, "__MACOSX/flowers/._image_00001.png", "mac", 3);
    archive_write_close(a);
    archive_write_free(a);
}

/* Whether two prepared files hold the same images, counts and statistics. */
static int same_dataset(const char *a, const char *b)
{
    char pa[512], pb[512], err[512] = "contents";
    snprintf(pa, sizeof pa, "%s/%s", tmp, a);
    snprintf(pb, sizeof pb, "%s/%s", tmp, b);
    hid_t fa = h5u_open_read(pa, err, sizeof err), fb = h5u_open_read(pb, err, sizeof err);
    int same = fa >= 0 && fb >= 0;
    static const char *attrs[] = {"train_mean",     "train_variance", "num_train",
                                  "num_validation", "skipped",        "image_size"};
    double va[3], vb[3], counts[2] = {0, 0};
    for (size_t i = 0; same && i < sizeof attrs / sizeof attrs[0]; i++) {
        size_t na = 3, nb = 3;
        same = !h5u_read_attr_doubles(fa, pa, "/", attrs[i], va, &na, err, sizeof err) &&
               !h5u_read_attr_doubles(fb, pb, "/", attrs[i], vb, &nb, err, sizeof err) &&
               na == nb && !memcmp(va, vb, na * sizeof(double));
        if (i == 2 || i == 3)
            counts[i - 2] = va[0];
    }
    const char *sets[2] = {"/train/images", "/validation/images"};
    for (int s = 0; same && s < 2; s++) {
        size_t count = (size_t)counts[s] * 8 * 8 * 3;
        float *x = malloc(count * sizeof(float) + 1), *y = malloc(count * sizeof(float) + 1);
        same = !h5u_read_floats(fa, pa, sets[s], x, count, err, sizeof err) &&
               !h5u_read_floats(fb, pb, sets[s], y, count, err, sizeof err) &&
               !memcmp(x, y, count * sizeof(float));
        free(x);
        free(y);
    }
    if (fa >= 0)
        H5Fclose(fa);
    if (fb >= 0)
        H5Fclose(fb);
    if (!same)
        printf("     %s and %s differ (%s)\n", a, b, err);
    return same;
}

static void test_same_as_folder(void)
{
    const char *opts = "--size 8 --seed 3";
    expect(shell("%s --input %s/src/flowers --output %s/folder.h5 %s", prep, tmp, tmp, opts) == 0,
           "ddim-prep on the folder");
    expect(shell("tar -C %s/src -czf %s/flowers.tgz flowers && tar -C %s/src -cf %s/flowers.tar "
                 "flowers",
                 tmp, tmp, tmp, tmp) == 0,
           "tar made the .tgz and the .tar");
    make_zip();
    const char *archives[] = {"flowers.tgz", "flowers.tar", "flowers.zip"};
    for (int i = 0; i < 3; i++) {
        char what[256];
        expect(shell("%s --input %s/%s --output %s/a%d.h5 %s", prep, tmp, archives[i], tmp, i,
                     opts) == 0 &&
                   strstr(log_text, "images from the archive") && strstr(log_text, "broken.jpg"),
               "ddim-prep on the archive: a progress line, the broken image named");
        char out[32];
        snprintf(out, sizeof out, "a%d.h5", i);
        snprintf(what, sizeof what, "%s: the same dataset as the unpacked folder", archives[i]);
        expect(same_dataset("folder.h5", out), what);
    }
    expect(shell("%s --input %s/src/flowers --output %s/fl.h5 %s --limit 5", prep, tmp, tmp,
                 opts) == 0 &&
               shell("%s --input %s/flowers.tgz --output %s/al.h5 %s --limit 5", prep, tmp, tmp,
                     opts) == 0 &&
               same_dataset("fl.h5", "al.h5") && !same_dataset("fl.h5", "folder.h5"),
           "--limit 5: the same subset from the archive as from the folder");
}

static void test_errors(void)
{
    expect(shell("(head -c $(($(stat -c %%s %s/flowers.tgz) / 2)) %s/flowers.tgz > %s/cut.tgz)",
                 tmp, tmp, tmp) == 0 &&
               shell("%s --input %s/cut.tgz --output %s/x.h5", prep, tmp, tmp) == 1 &&
               strstr(log_text, "cut.tgz") && strstr(log_text, "truncated"),
           "a truncated archive: an error naming it, 'truncated'");
    char path[512];
    snprintf(path, sizeof path, "%s/notes.txt", tmp);
    write_file(path, "just some text, no archive at all\n", 34);
    expect(shell("%s --input %s --output %s/x.h5", prep, path, tmp) == 1 &&
               strstr(log_text, "notes.txt") && strstr(log_text, "cannot read it as an archive"),
           "a text file as --input: 'cannot read it as an archive'");
    expect(shell("tar -C %s -czf %s/empty.tgz notes.txt", tmp, tmp) == 0 &&
               shell("%s --input %s/empty.tgz --output %s/x.h5", prep, tmp, tmp) == 1 &&
               strstr(log_text, "no image files"),
           "an archive without images: 'no image files'");
    struct stat st;
    snprintf(path, sizeof path, "%s/x.h5", tmp);
    expect(stat(path, &st) != 0, "no output file after the failures");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_prep_archive PATH/TO/ddim-prep\n");
        return 2;
    }
    prep = argv[1];
    if (!mkdtemp(tmp))
        DDIM_FATAL("mkdtemp failed");
    make_folder();
    test_same_as_folder();
    test_errors();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (test_failures() == 0 && system(cmd) != 0)
        fprintf(stderr, "test_prep_archive: could not remove %s\n", tmp);
    return test_finish("test_prep_archive");
}
