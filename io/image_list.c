/* image_list.c: see image_list.h. */
#define _POSIX_C_SOURCE 200809L
#include "image_list.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

int image_list_name_ok(const char *name)
{
    const char *dot = strrchr(name, '.');
    return name[0] != '.' && dot &&
           (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg"));
}

int image_list_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_folder(const char *dir, struct image_list *l, int hint, char *err, size_t errlen);

/* 1 if folder dir/sub holds an image itself (for the hint of an empty list). */
static int holds_images(const char *dir, const char *sub)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    struct image_list inner;
    if (list_folder(path, &inner, 0, NULL, 0) != 0)
        return 0;
    int found = inner.count > 0;
    image_list_free(&inner);
    return found;
}

static void add_name(struct image_list *l, long *cap, const char *name)
{
    if (l->count == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        char **grown = realloc(l->names, (size_t)*cap * sizeof *grown);
        if (!grown)
            DDIM_FATAL("out of host memory listing images");
        l->names = grown;
    }
    size_t len = strlen(name) + 1;
    l->names[l->count] = util_xmalloc(len);
    memcpy(l->names[l->count++], name, len);
}

/* hint: look one level into subfolders for image_subfolder */
static int list_folder(const char *dir, struct image_list *l, int hint, char *err, size_t errlen)
{
    memset(l, 0, sizeof *l);
    DIR *d = opendir(dir);
    if (!d)
        return util_error(err, errlen, "%s", strerror(errno));
    long cap = 0;
    char path[4096];
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0)
            continue; /* gone, or a dangling link */
        if (S_ISDIR(st.st_mode)) {
            /* only for an empty list's hint: one level, the first such subfolder */
            if (hint && !l->image_subfolder[0] && holds_images(dir, e->d_name))
                snprintf(l->image_subfolder, sizeof l->image_subfolder, "%s", e->d_name);
        } else if (S_ISREG(st.st_mode) && image_list_name_ok(e->d_name)) {
            add_name(l, &cap, e->d_name);
        } else {
            l->others++;
        }
    }
    closedir(d);
    if (l->count)
        qsort(l->names, (size_t)l->count, sizeof *l->names, image_list_compare);
    return 0;
}

int image_list_folder(const char *dir, struct image_list *l, char *err, size_t errlen)
{
    return list_folder(dir, l, 1, err, errlen);
}

void image_list_free(struct image_list *l)
{
    for (long i = 0; i < l->count; i++)
        free(l->names[i]);
    free(l->names);
    memset(l, 0, sizeof *l);
}
