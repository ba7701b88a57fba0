/* tb_events.h: TensorBoard event files, written from plain values: scalars, PNG images and
 * text at a step. A file is a sequence of TFRecord records (tfrecord.h), each holding one
 * Event protocol buffer (tb_event.proto, encoded by protobuf-c); its first record says
 * "brain.Event:2".
 *
 * Each record goes to the file whole, in one write, as it is made (line_log_append in
 * line_log.h): a record the disk refuses is cut off again and held in memory until the
 * disk takes it (the warning says the cause), so the file only ever ends inside a record
 * when the process dies in the middle of a write, and readers ignore such a last record.
 *
 * Several files make one run: readers read a directory's event files in the order of their
 * names, which begin events.out.tfevents.<seconds>; a new file's seconds are those of now,
 * or one more than the newest file already there, so that it always sorts last.
 *
 * Without protobuf-c or ISA-L at build time, tb_events_none.c stands in: tb_events_open
 * refuses with a message saying so, and nothing is written. */
#ifndef DDIM_TB_EVENTS_H
#define DDIM_TB_EVENTS_H

#include "line_log.h"

#include <stddef.h>

struct tb_events {
    struct line_log file; /* the event file; closed: file.fd < 0 */
    int open;
};

/* One scalar of a step: a tag ("train/noise_loss") and its value (stored as float32). */
struct tb_scalar {
    const char *tag;
    double value;
};

enum { TB_EVENTS_MAX_SCALARS = 16 };

/* 1 when this build writes event files (0: tb_events_none.c). */
int tb_events_available(void);

/* Creates a new event file in dir (which exists) and writes its file_version record.
 * 0, or -1 with a message naming the file and the cause. */
int tb_events_open(struct tb_events *tb, const char *dir, char *err, size_t errlen);

/* A SessionLog START record at step: TensorBoard's Python loader drops what it read
 * earlier with steps >= step (a run that resumes at step says so). */
int tb_events_start(struct tb_events *tb, long step);

/* n (<= TB_EVENTS_MAX_SCALARS) scalars of one step, in one record. */
int tb_events_scalars(struct tb_events *tb, long step, const struct tb_scalar *values, int n);

/* A PNG image (bytes of a PNG file of width x height RGB pixels) under tag. */
int tb_events_image(struct tb_events *tb, long step, const char *tag, const void *png, size_t bytes,
                    int width, int height);

/* Markdown text under tag (TensorBoard's text plugin). */
int tb_events_text(struct tb_events *tb, long step, const char *tag, const char *markdown);

/* The write functions above return 0 when the record (and every one held before it) is on
 * disk, -1 when it is held or the file is not open; failures are printed as they happen. */

/* Writes what is held, and closes. 0, or -1 when records were lost (printed). */
int tb_events_close(struct tb_events *tb);

/* Resuming at max_step: cuts every event file in dir after its last record that is whole,
 * intact and of a step <= max_step, so that steps after it, written by a run that then
 * died, are not read twice once the resumed run writes them again (a record cut by a
 * crash or corrupt ends the file there too: readers stop at it anyway). *records is set
 * to the number of records removed, *files to the files cut. 0, or -1 with a message
 * naming the file and the cause (the files cut before it stay cut). */
int tb_events_trim(const char *dir, long max_step, long *records, int *files, char *err,
                   size_t errlen);

#endif
