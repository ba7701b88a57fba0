/* test_image_list.c: the one rule for which files of a folder are images (io/image_list.h),
 * which ddim-prep (--input DIR, and an archive's entries by name) and ddim-kid (folder sets)
 * both use: regular files, no dot files, a known extension in any case, in the order of
 * their paths; subfolders not searched, but named as a hint when they hold the images. The
 * folder holds PNGs written by io's own writer, a dot file, a text file, a folder named like
 * an image, a FIFO, a link to an image and a dangling link. */
#define _POSIX_C_SOURCE 200809L
#include "image_io.h"
#include "image_list.h"
#include "test_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static void write_png(const char *folder, const char *name)
{
    uint8_t rgb[4 * 4 * 3] = {0};
    char path[700], err[512];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    if (image_write_png(path, rgb, 4, 4, err, sizeof err) != 0)
        test_fail("cannot write %s: %s", path, err);
}

static void write_text(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("not an image\n", f);
        fclose(f);
    }
}

static void check_names(void)
{
    const char *yes[] = {"a.png", "b.JPG", "c.jpeg", "d.Png", "x.y.jpg"};
    const char *no[] = {".a.png", "a.gif", "png", "a.png.txt", "a.", ".jpg", "a"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!image_list_name_ok(yes[i]))
            test_fail("image_list_name_ok('%s') = 0, expected an image", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (image_list_name_ok(no[i]))
            test_fail("image_list_name_ok('%s') = 1, expected no image", no[i]);
}

int main(void)
{
    check_names();
    snprintf(dir, sizeof dir, "/tmp/test_image_list_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[512], target[512];
    /* images, in no order; a dot file and a text file; a folder, a FIFO, links */
    write_png(dir, "b.png");
    write_png(dir, "A.PNG");
    write_png(dir, "c.jpeg"); /* a PNG named .jpeg: the content decides later, the name here */
    write_png(dir, ".hidden.png");
    write_text("notes.txt");
    snprintf(path, sizeof path, "%s/folder.png", dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/fifo.png", dir);
    mkfifo(path, 0644);
    snprintf(path, sizeof path, "%s/link.jpg", dir);
    snprintf(target, sizeof target, "%s/b.png", dir);
    if (symlink(target, path) != 0)
        test_fail("symlink %s: cannot make it", path);
    snprintf(path, sizeof path, "%s/dangling.png", dir);
    if (symlink("/nonexistent/image.png", path) != 0)
        test_fail("symlink %s: cannot make it", path);

    struct image_list l;
    char err[512] = "";
    if (image_list_folder(dir, &l, err, sizeof err) != 0) {
        test_fail("image_list_folder(%s): %s", dir, err);
        return test_finish("test_image_list");
    }
    const char *want[] = {"A.PNG", "b.png", "c.jpeg", "link.jpg"}; /* strcmp order */
    int same = l.count == 4;
    for (long i = 0; same && i < l.count; i++)
        same = !strcmp(l.names[i], want[i]);
    if (!same) {
        test_fail("image_list_folder listed %ld files, expected A.PNG b.png c.jpeg link.jpg:",
                  l.count);
        for (long i = 0; i < l.count; i++)
            fprintf(stderr, "  %s\n", l.names[i]);
    } else {
        printf("ok   images: A.PNG b.png c.jpeg link.jpg (no dot file, folder, FIFO or text)\n");
    }
    if (l.others != 2) /* notes.txt and fifo.png; the dangling link is gone, not a file */
        test_fail("others = %ld, expected 2 (notes.txt, fifo.png)", l.others);
    if (l.image_subfolder[0])
        test_fail("image_subfolder '%s' where no subfolder holds images", l.image_subfolder);
    image_list_free(&l);

    /* an empty folder whose subfolder holds the images: named as a hint */
    char outer[300];
    snprintf(outer, sizeof outer, "%s/outer", dir);
    mkdir(outer, 0755);
    snprintf(path, sizeof path, "%s/inner", outer);
    mkdir(path, 0755);
    write_png(path, "only.png");
    if (image_list_folder(outer, &l, err, sizeof err) != 0 || l.count != 0 ||
        strcmp(l.image_subfolder, "inner") != 0)
        test_fail("a folder of a folder of images: %ld images, hint '%s' (expected 0, 'inner')",
                  l.count, l.image_subfolder);
    else
        printf("ok   no images, the subfolder 'inner' named as a hint\n");
    image_list_free(&l);

    /* a folder that cannot be read: -1 with the system's reason */
    snprintf(path, sizeof path, "%s/missing", dir);
    if (image_list_folder(path, &l, err, sizeof err) != -1 || !strstr(err, "No such file"))
        test_fail("a missing folder: expected -1 and 'No such file', got '%s'", err);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_finish("test_image_list");
}
