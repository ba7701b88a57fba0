/* image_list.h: the one rule for which files of a folder are images, for every program that
 * reads photos from a folder or an archive (ddim-prep --input, ddim-kid's folder sets): a
 * regular file (a symbolic link counts as what it names), whose name does not start with
 * '.', with a known image extension (.png, .jpg or .jpeg, in any case); read in the order of
 * their paths (strcmp). A folder's subfolders are not searched. */
#ifndef DDIM_IMAGE_LIST_H
#define DDIM_IMAGE_LIST_H

#include <stddef.h>

/* 1 if a file's name (the last part of its path) passes the rule's name test: no leading
 * '.', a known image extension. An archive's entries are judged by it too. */
int image_list_name_ok(const char *name);

/* qsort's comparison of two paths (char *): the rule's order. */
int image_list_compare(const void *a, const void *b);

struct image_list {
    char **names;              /* (count) the images' names in the folder, in the rule's order */
    long count;                /* images */
    long others;               /* entries that are neither images, nor folders, nor dot files */
    char image_subfolder[256]; /* a subfolder that holds images itself (a hint), or "" */
};

/* The images directly in folder dir (names without the folder). 0 (an empty list too), or
 * -1 with the system's reason in err when the folder cannot be read. */
int image_list_folder(const char *dir, struct image_list *l, char *err, size_t errlen);

void image_list_free(struct image_list *l);

#endif
