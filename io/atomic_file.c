/* atomic_file.c: see atomic_file.h. */
#define _POSIX_C_SOURCE 200809L
#include "atomic_file.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int atomic_fsync_path(const char *path, int directory)
{
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

void atomic_dir_of(const char *path, char *dir, size_t len)
{
    snprintf(dir, len, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else
        *(slash == dir ? slash + 1 : slash) = '\0';
}

int atomic_file_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) { /* not expected from a regular file; treat as a full disk */
            errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int atomic_file_write(const char *path, const void *data, size_t bytes, char *err, size_t errlen)
{
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return util_error(err, errlen, "cannot write '%s': the path is too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0)
        return util_error(err, errlen, "cannot create '%s': %s", tmp, strerror(errno));
    const char *what = "write";
    int rc = atomic_file_write_all(fd, data, bytes);
    if (rc == 0 && (rc = fsync(fd)) != 0)
        what = "fsync";
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        what = "close";
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        return util_error(err, errlen, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror(saved));
    }
    if (rc != 0) {
        unlink(tmp); /* the previous file, if any, is untouched */
        return util_error(err, errlen, "cannot write '%s' (%s failed): %s; '%s' is left as it was",
                          tmp, what, strerror(saved), path);
    }
    char dir[4200];
    atomic_dir_of(path, dir, sizeof dir);
    atomic_fsync_path(dir, 1); /* makes the rename durable; nothing to undo if it fails */
    return 0;
}
