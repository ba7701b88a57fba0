/* line_log.h: the append-only log of a run (metrics.jsonl, and the records of TensorBoard's
 * event files): each line or record goes to the file whole, in one write, as soon as it is
 * written (tail -f sees whole lines); one the disk cannot take is cut off again and held in
 * memory, to be written before the next one. */
#ifndef DDIM_LINE_LOG_H
#define DDIM_LINE_LOG_H

#include <stddef.h>

struct line_log {
    int fd;             /* -1 when closed */
    char path[1100];    /* for messages */
    char *pending;      /* lines not yet on disk (the disk refused them) */
    size_t pending_len; /* bytes in pending */
    size_t pending_cap; /* bytes allocated */
    long held;          /* lines in pending */
    long dropped;       /* lines lost: more were held than the bound allows */
    int failing;        /* the last write failed (reported once until it works again) */
    const char *unit;   /* what the messages call an entry: "line" (the default), "record" */
};

/* Opens path for appending (truncate: start a new, empty file). 0 or -1 with a message. */
int line_log_open(struct line_log *log, const char *path, int truncate, char *err, size_t errlen);

/* Appends n bytes as one entry (a record), whole or not at all, with the handling of
 * line_log_write. 0 when it (and every held entry) is on disk, -1 when it is held. */
int line_log_append(struct line_log *log, const void *data, size_t n);

/* Appends one line (text without its newline). Lines held back by an earlier failure go
 * first. A failure is printed as a warning once (with the cause), its line is kept in
 * memory (up to a bound; beyond it later lines are dropped, and counted), and
 * "written again" is printed when the disk takes lines again. 0 when the line (and every
 * held line) is on disk, -1 when it is held. */
int line_log_write(struct line_log *log, const char *line);

/* Tries once more to write held lines, fsyncs, and closes. 0, or -1 when lines were lost
 * (printed). */
int line_log_close(struct line_log *log);

#endif
