/* fuzz_tb_events.c: libFuzzer target for the one reader of TensorBoard event files, the cut
 * a resumed run makes (io/tb_events.c tb_events_trim: TFRecord framing and CRC-32C in
 * io/tfrecord.c, protobuf-c's decoding): the input is an event file found in a run
 * directory (cut short, corrupt, or anything). A copy of it, in a folder of its own, is cut
 * after step 5; that must succeed or say why, and cutting it again must cut nothing. */
#define _POSIX_C_SOURCE 200809L
#include "fuzz_util.h"
#include "tb_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fuzz_load(const char *path)
{
    char dir[256], copy[320];
    snprintf(dir, sizeof dir, "%s.d", path);
    snprintf(copy, sizeof copy, "%s/events.out.tfevents.0000000001.fuzz.1", dir);
    FILE *in = fopen(path, "rb"), *out = NULL;
    if (in && mkdir(dir, 0700) == 0)
        out = fopen(copy, "wb");
    if (!in || !out) {
        fprintf(stderr, "fuzz_tb_events: cannot copy %s to %s\n", path, copy);
        exit(2);
    }
    char buf[65536];
    for (size_t n; (n = fread(buf, 1, sizeof buf, in)) > 0;)
        fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    char err[512] = "";
    long records;
    int files;
    int rc = tb_events_trim(dir, 5, &records, &files, err, sizeof err);
    fuzz_expect_message("fuzz_tb_events", rc, err);
    if (rc == 0 && (tb_events_trim(dir, 5, &records, &files, err, sizeof err) != 0 || files)) {
        fprintf(stderr, "fuzz_tb_events: a second cut after step 5 changed the file again\n");
        abort();
    }
    unlink(copy);
    rmdir(dir);
}
