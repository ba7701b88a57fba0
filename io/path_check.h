/* path_check.h: no program writes over one of its own inputs. Every program lists its
 * outputs and inputs once its options are parsed, before it writes anything, and refuses
 * an output that is the same file as an input (or as another output), naming both. */
#ifndef DDIM_PATH_CHECK_H
#define DDIM_PATH_CHECK_H

#include <stddef.h>

/* A file a program reads or writes: how the user named it (an option, a setting) and its
 * path; a NULL or empty path is an option not given and is skipped. */
struct path_use {
    const char *what; /* "--output", "data.path", "input frame" ... */
    const char *path;
};

/* 0 when no output is the same file as an input or as another output; else -1 with
 * "WHAT 'PATH' is the same file as WHAT 'PATH' ...". Two paths are the same file when both
 * exist and have the same device and inode (so a link or another spelling is caught), or,
 * when one does not exist yet, when they resolve to the same absolute path (symbolic links
 * of the folders followed). */
int path_check_outputs(const struct path_use *outputs, int num_outputs,
                       const struct path_use *inputs, int num_inputs, char *err, size_t errlen);

#endif
