/* atomic_file.h: files of a run that are either whole or absent. A file is written to
 * "path.tmp", flushed, fsync'ed, closed and renamed over path (then the directory is
 * synced), so that a crash, a full disk or a kill while writing leaves the previous file as
 * it was; on any failure the temporary is removed. Errors name the file and say the
 * cause as the system does ("No space left on device"). */
#ifndef DDIM_ATOMIC_FILE_H
#define DDIM_ATOMIC_FILE_H

#include <stddef.h>

/* Writes `bytes` of data to path atomically (as above). 0, or -1 with a message. */
int atomic_file_write(const char *path, const void *data, size_t bytes, char *err, size_t errlen);

/* fsync of a file or a directory by name; 0 or -1 (errno set). */
int atomic_fsync_path(const char *path, int directory);

/* write(2) until all n bytes are written (EINTR retried); 0, or -1 with errno set. */
int atomic_file_write_all(int fd, const void *data, size_t n);

/* The directory part of path ("." when it has none) into dir. */
void atomic_dir_of(const char *path, char *dir, size_t len);

#endif
