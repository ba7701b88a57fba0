/* replay_main.c: the fuzz targets without libFuzzer, for the ordinary test suite (CTest
 * fuzz_replay_*): feeds every file of the folders (or files) given on the command line to
 * the target's LLVMFuzzerTestOneInput, one at a time, in name order. The seed corpus
 * (tests/fuzz/corpus/<target>, given after --accept) must each be loaded: a seed the loader
 * refuses would leave the fuzzer mutating a file that fails at its first check. The inputs
 * that once crashed a loader (tests/fuzz/regressions/<target>) must each be loaded or
 * refused with a message. A crash (or, in the sanitizer build, a finding) fails the test.
 * An empty folder is an error, so that a renamed corpus is noticed.
 *   fuzz_replay_<target> [--accept] FOLDER_OR_FILE... [--any FOLDER_OR_FILE...] */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_util.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int must_accept; /* the inputs that follow --accept (until --any) */

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = util_xmalloc(cap);
    for (size_t got; (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            uint8_t *bigger = util_xmalloc(cap * 2);
            memcpy(bigger, buf, n);
            free(buf);
            buf = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    printf("replay %s (%zu bytes): ", path, n);
    fflush(stdout);
    fuzz_accepted = 0;
    fuzz_last_refusal[0] = '\0';
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    printf("%s%s\n",
           fuzz_accepted ? "loaded" : "refused: ", fuzz_accepted ? "" : fuzz_last_refusal);
    if (must_accept && !fuzz_accepted) {
        fprintf(stderr, "replay: %s is a seed and must load\n", path);
        return -1;
    }
    return 0;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays the regular files of dir in name order; the number replayed, or -1. */
static long replay_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char **more = util_xmalloc((n + 1) * sizeof *names);
        if (n)
            memcpy(more, names, n * sizeof *names);
        free(names);
        names = more;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        names[n] = util_xmalloc(len);
        snprintf(names[n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, compare_names);
    long done = 0;
    for (size_t i = 0; i < n; i++) {
        if (done >= 0 && replay_file(names[i]) == 0)
            done++;
        else
            done = -1;
        free(names[i]);
    }
    free(names);
    return done;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s [--accept] FOLDER_OR_FILE... [--any FOLDER_OR_FILE...]\n",
                argv[0]);
        return 2;
    }
    long total = 0, seeds = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--accept") || !strcmp(argv[i], "--any")) {
            must_accept = !strcmp(argv[i], "--accept");
            continue;
        }
        struct stat st;
        long n = -1;
        if (stat(argv[i], &st) != 0)
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
        else if (S_ISDIR(st.st_mode))
            n = replay_dir(argv[i]);
        else
            n = replay_file(argv[i]) == 0 ? 1 : -1;
        if (n == 0)
            fprintf(stderr, "replay: %s holds no inputs\n", argv[i]);
        if (n <= 0)
            return 1;
        total += n;
        seeds += must_accept ? n : 0;
    }
    printf("replay: %ld input(s), none crashed%s\n", total, seeds ? ", every seed loaded" : "");
    return 0;
}
