/* line_log.c: see line_log.h. */
#define _POSIX_C_SOURCE 200809L
#include "line_log.h"
#include "atomic_file.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Held lines beyond this are dropped (and counted): a run on a full disk for days must not
 * grow without bound. */
enum { LINE_LOG_HOLD_MAX = 16 << 20 };

int line_log_open(struct line_log *log, const char *path, int truncate, char *err, size_t errlen)
{
    memset(log, 0, sizeof *log);
    snprintf(log->path, sizeof log->path, "%s", path);
    log->unit = "line";
    log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | (truncate ? O_TRUNC : 0), 0666);
    if (log->fd < 0)
        return util_error(err, errlen, "cannot write '%s': %s", path, strerror(errno));
    return 0;
}

/* Appends n bytes whole or not at all: a partial write is cut off again. 0 or -1 (errno). */
static int append_whole(int fd, const void *p, size_t n)
{
    off_t start = lseek(fd, 0, SEEK_END);
    if (atomic_file_write_all(fd, p, n) == 0)
        return 0;
    int saved = errno;
    if (start >= 0 && ftruncate(fd, start) != 0) {
        /* nothing more to do: the broken tail is dropped when the log is next read */
    }
    errno = saved;
    return -1;
}

static void hold(struct line_log *log, const void *data, size_t n)
{
    if (log->pending_len + n > LINE_LOG_HOLD_MAX) {
        log->dropped++; /* reported when the log is closed */
        return;
    }
    if (log->pending_len + n > log->pending_cap) {
        size_t cap = log->pending_cap ? 2 * log->pending_cap : 65536;
        while (cap < log->pending_len + n)
            cap *= 2;
        log->pending = realloc(log->pending, cap);
        if (!log->pending)
            DDIM_FATAL("out of host memory holding lines of %s", log->path);
        log->pending_cap = cap;
    }
    memcpy(log->pending + log->pending_len, data, n);
    log->pending_len += n;
    log->held++;
}

int line_log_append(struct line_log *log, const void *data, size_t n)
{
    if (log->fd < 0)
        return -1;
    int rc = 0;
    if (log->pending_len > 0 && append_whole(log->fd, log->pending, log->pending_len) != 0)
        rc = -1;
    else if (log->pending_len > 0) {
        util_log("ddim-dist: %s is written again: %ld held %s(s) saved\n", log->path, log->held,
                 log->unit);
        log->pending_len = 0;
        log->held = 0;
        log->failing = 0;
    }
    if (rc == 0 && append_whole(log->fd, data, n) != 0)
        rc = -1;
    if (rc != 0) {
        if (!log->failing)
            fprintf(stderr,
                    "ddim-dist: warning: cannot write to '%s': %s; its %ss are held in memory "
                    "and written when the disk takes them again\n",
                    log->path, strerror(errno), log->unit);
        log->failing = 1;
        hold(log, data, n);
    }
    return rc;
}

int line_log_write(struct line_log *log, const char *line)
{
    size_t n = strlen(line);
    char *text = util_xmalloc(n + 1);
    memcpy(text, line, n);
    text[n++] = '\n';
    int rc = line_log_append(log, text, n);
    free(text);
    return rc;
}

int line_log_close(struct line_log *log)
{
    if (log->fd < 0)
        return 0;
    int rc = 0;
    if (log->pending_len > 0 && append_whole(log->fd, log->pending, log->pending_len) != 0) {
        fprintf(stderr, "ddim-dist: error: %ld %s(s) of '%s' could not be written: %s\n", log->held,
                log->unit, log->path, strerror(errno));
        rc = -1;
    }
    if (log->dropped > 0) {
        fprintf(stderr,
                "ddim-dist: error: %ld %s(s) of '%s' were lost: more were held back than "
                "fit in memory\n",
                log->dropped, log->unit, log->path);
        rc = -1;
    }
    fsync(log->fd);
    close(log->fd);
    free(log->pending);
    memset(log, 0, sizeof *log);
    log->fd = -1;
    return rc;
}
