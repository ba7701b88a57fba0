/* fuzz_util.h: what the libFuzzer targets of tests/fuzz/ share. Each target feeds its input
 * to one of the project's loaders of outside input, which take a file name: the bytes are
 * written to a temporary file (on tmpfs, /dev/shm, where there is one) that is removed
 * after the call, so that the real loader runs on them. A loader must accept the
 * input or refuse it with a message; a crash, a sanitizer finding or an empty message is a
 * bug (fuzz_expect_message aborts on the last, so that the fuzzer reports it). */
#ifndef DDIM_FUZZ_UTIL_H
#define DDIM_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What each fuzz_<loader>.c defines: feeds the file at path to its loader (and to what
 * runs on what the loader accepts). The drivers fuzz_raw.c (the input is the file) and
 * fuzz_h5_edit.c (the input edits a valid HDF5 file) call it. */
void fuzz_load(const char *path);

struct fuzz_file {
    int fd;
    char path[256];
};

/* Writes data to a fresh temporary file, f->path; exits on failure (the machine's fault,
 * not the input's). fuzz_file_close removes it. */
void fuzz_file_open(struct fuzz_file *f, const uint8_t *data, size_t size);
void fuzz_file_close(struct fuzz_file *f);

/* A loader's result: a refusal must say why (aborts when rc != 0 and err is empty). It is
 * also noted for the replay runner: an input counts as accepted when any loader call on it
 * succeeded, and fuzz_last_refusal holds the first refusal's message. */
void fuzz_expect_message(const char *target, int rc, const char *err);
extern int fuzz_accepted;
extern char fuzz_last_refusal[512];

#endif
