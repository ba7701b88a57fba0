/* fuzz_util.c: in-memory input files and the refusal check for the fuzz targets. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* tmpfs when there is one: the input never touches a disk. (A memfd, named by
 * /proc/self/fd/N, would be neater, but HDF5 resolves the name to the memfd's
 * "/memfd:... (deleted)" and fails to open it.) */
static const char *input_folder(void)
{
    if (access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    const char *t = getenv("TMPDIR");
    return t && t[0] ? t : "/tmp";
}

void fuzz_file_open(struct fuzz_file *f, const uint8_t *data, size_t size)
{
    snprintf(f->path, sizeof f->path, "%s/ddim_fuzz_XXXXXX", input_folder());
    f->fd = mkstemp(f->path);
    if (f->fd < 0) {
        fprintf(stderr, "fuzz: cannot create %s: %s\n", f->path, strerror(errno));
        exit(2);
    }
    for (size_t done = 0; done < size;) {
        ssize_t n = write(f->fd, data + done, size - done);
        if (n <= 0) {
            fprintf(stderr, "fuzz: writing %s: %s\n", f->path, strerror(errno));
            exit(2);
        }
        done += (size_t)n;
    }
}

void fuzz_file_close(struct fuzz_file *f)
{
    close(f->fd);
    unlink(f->path);
    f->fd = -1;
}

int fuzz_accepted;
char fuzz_last_refusal[512];

void fuzz_expect_message(const char *target, int rc, const char *err)
{
    if (rc != 0 && (!err || !err[0])) {
        fprintf(stderr, "%s: the loader refused the input without a message\n", target);
        abort();
    }
    if (rc == 0)
        fuzz_accepted = 1;
    else if (!fuzz_last_refusal[0])
        snprintf(fuzz_last_refusal, sizeof fuzz_last_refusal, "%s", err);
}
