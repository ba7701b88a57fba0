/* test_tb_events.c: TensorBoard event files (io/tfrecord.c, io/tb_events.c), label unit.
 *  - CRC-32C against the published check values (RFC 3720 B.4 and the "123456789" check);
 *  - reading what TensorBoard's own writer wrote (tests/data/tb_reference.tfevents, made by
 *    tools/tb_reference.py): framing, and every field through our .proto;
 *  - our writer read back: the records and values, a zero scalar kept, the name order;
 *  - trimming at a step, a record cut by a crash, a corrupt checksum;
 *  - a full disk (RLIMIT_FSIZE: the kernel refuses the write midway, as with ENOSPC): the
 *    file holds whole records only, the refused ones are written, in order, when room
 *    returns. The reader of tests/tensorboard/ (TensorBoard's own) checks the same files
 *    from a real run. */
#define _POSIX_C_SOURCE 200809L
#include "tb_event.pb-c.h"
#include "tb_events.h"
#include "test_util.h"
#include "tfrecord.h"

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int conditions; /* checked by check() (test_finish counts only test_close's) */

static void check(int ok, const char *what)
{
    conditions++;
    if (!ok)
        test_fail("%s", what);
}

static void test_crc(void)
{
    uint8_t zeros[32] = {0}, ones[32], up[32];
    memset(ones, 0xff, sizeof ones);
    for (int i = 0; i < 32; i++)
        up[i] = (uint8_t)i;
    check(tfrecord_crc32c("123456789", 9) == 0xe3069283u, "crc32c(\"123456789\")");
    check(tfrecord_crc32c(zeros, 32) == 0x8a9136aau, "crc32c(32 zero bytes)");
    check(tfrecord_crc32c(ones, 32) == 0x62a8ab43u, "crc32c(32 0xff bytes)");
    check(tfrecord_crc32c(up, 32) == 0x46dd794eu, "crc32c(0..31)");
    check(tfrecord_masked_crc("", 0) == 0xa282ead8u, "masked crc32c of nothing");
}

/* Every record of path, unpacked (NULL-terminated array, *n of them); *status: how the
 * reading ended. */
static Tb__Event **read_all(const char *path, int *n, enum tfrecord_status *status)
{
    FILE *f = fopen(path, "rb");
    Tb__Event **ev = calloc(256, sizeof *ev);
    *n = 0;
    *status = TFRECORD_END;
    if (!f) {
        test_fail("cannot open %s", path);
        return ev;
    }
    uint8_t *buf = NULL;
    size_t cap = 0, len;
    while (*n < 255 && (*status = tfrecord_read(f, &buf, &cap, &len)) == TFRECORD_OK) {
        ev[*n] = tb__event__unpack(NULL, len, buf);
        if (!ev[*n]) {
            test_fail("%s: record %d does not decode", path, *n);
            break;
        }
        (*n)++;
    }
    free(buf);
    fclose(f);
    return ev;
}

static void free_all(Tb__Event **ev)
{
    for (int i = 0; ev[i]; i++)
        tb__event__free_unpacked(ev[i], NULL);
    free(ev);
}

static const Tb__Summary__Value *value_of(const Tb__Event *ev, size_t i)
{
    if (ev->what_case != TB__EVENT__WHAT_SUMMARY || i >= ev->summary->n_value)
        return NULL;
    return ev->summary->value[i];
}

static int is_scalar(const Tb__Event *ev, size_t i, const char *tag, float v)
{
    const Tb__Summary__Value *x = value_of(ev, i);
    return x && !strcmp(x->tag, tag) && x->value_case == TB__SUMMARY__VALUE__VALUE_SIMPLE_VALUE &&
           x->simple_value == v;
}

static void test_reference(const char *path)
{
    int n;
    enum tfrecord_status st;
    Tb__Event **ev = read_all(path, &n, &st);
    check(n == 6 && st == TFRECORD_END, "TensorBoard's file: 6 whole records, then its end");
    if (n == 6) {
        check(ev[0]->what_case == TB__EVENT__WHAT_FILE_VERSION &&
                  !strcmp(ev[0]->file_version, "brain.Event:2") && ev[0]->wall_time == 1000.0,
              "record 0: file_version brain.Event:2 at 1000.0");
        check(ev[1]->step == 3 && is_scalar(ev[1], 0, "a", 0.5f) && is_scalar(ev[1], 1, "b", 0.0f),
              "record 1: step 3, a = 0.5 and b = 0");
        const Tb__Summary__Value *img = value_of(ev[2], 0);
        check(ev[2]->step == 5 && img && img->value_case == TB__SUMMARY__VALUE__VALUE_IMAGE &&
                  img->image->width == 3 && img->image->height == 2 &&
                  img->image->colorspace == 3 && img->image->encoded_image_string.len > 8 &&
                  !memcmp(img->image->encoded_image_string.data, "\x89PNG", 4),
              "record 2: step 5, a 3x2 RGB PNG");
        const Tb__Summary__Value *txt = value_of(ev[3], 0);
        check(txt && !strcmp(txt->tag, "config") && txt->metadata && txt->metadata->plugin_data &&
                  !strcmp(txt->metadata->plugin_data->plugin_name, "text") &&
                  txt->value_case == TB__SUMMARY__VALUE__VALUE_TENSOR &&
                  txt->tensor->dtype == TB__DATA_TYPE__DT_STRING &&
                  txt->tensor->n_string_val == 1 && txt->tensor->string_val[0].len == 8 &&
                  !memcmp(txt->tensor->string_val[0].data, "hello: 1", 8),
              "record 3: text \"hello: 1\" for the text plugin");
        check(ev[4]->step == 7 && ev[4]->what_case == TB__EVENT__WHAT_SESSION_LOG &&
                  ev[4]->session_log->status == TB__SESSION_LOG__SESSION_STATUS__START,
              "record 4: SessionLog START at step 7");
        check(ev[5]->step == 9 && is_scalar(ev[5], 0, "a", 1.25f), "record 5: a = 1.25 at 9");
    }
    free_all(ev);
}

/* The one event file in dir that is not `other` into path; 1 if found. */
static int find_file(const char *dir, const char *other, char *path, size_t len)
{
    DIR *d = opendir(dir);
    int found = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        if (!strncmp(e->d_name, "events.out.tfevents.", 20) &&
            (!other || strcmp(e->d_name, other))) {
            snprintf(path, len, "%s/%s", dir, e->d_name);
            found = 1;
        }
    if (d)
        closedir(d);
    return found;
}

/* The offset where record k (from 0) of f ends. */
static long record_end(FILE *f, int k)
{
    uint8_t *buf = NULL;
    size_t cap = 0, n;
    for (int i = 0; i <= k; i++)
        if (tfrecord_read(f, &buf, &cap, &n) != TFRECORD_OK)
            test_fail("record %d does not read", i);
    free(buf);
    return ftell(f);
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_writer(const char *dir)
{
    /* an earlier file stamped in the future: the new one must still sort after it */
    char older[512], path[1200], err[1024];
    long long future = (long long)time(NULL) + 100000;
    snprintf(older, sizeof older, "events.out.tfevents.%010lld.elsewhere.1", future);
    char older_path[1100];
    snprintf(older_path, sizeof older_path, "%s/%s", dir, older);
    FILE *f = fopen(older_path, "wb");
    if (f)
        fclose(f);
    struct tb_events tb;
    if (tb_events_open(&tb, dir, err, sizeof err) != 0) {
        test_fail("tb_events_open: %s", err);
        return;
    }
    const char *name = strrchr(tb.file.path, '/') + 1;
    check(strcmp(name, older) > 0, "a new event file sorts after the newest one there");
    check(strtoll(name + 20, NULL, 10) == future + 1, "... its seconds are the newest's + 1");
    struct tb_scalar s[2] = {{"x/zero", 0.0}, {"x/y", 2.5}};
    check(tb_events_start(&tb, 4) == 0, "start");
    check(tb_events_scalars(&tb, 4, s, 2) == 0, "scalars");
    check(tb_events_image(&tb, 5, "img", "\x89PNGdata", 8, 7, 6) == 0, "image");
    check(tb_events_text(&tb, 6, "config", "a: 1\n") == 0, "text");
    check(tb_events_close(&tb) == 0, "close");
    unlink(older_path);
    int n;
    enum tfrecord_status st;
    find_file(dir, NULL, path, sizeof path);
    Tb__Event **ev = read_all(path, &n, &st);
    check(n == 5 && st == TFRECORD_END, "our file: 5 whole records");
    if (n == 5) {
        check(!strcmp(ev[0]->file_version, "brain.Event:2") && ev[0]->wall_time > 1e9,
              "file_version first, with the time now");
        check(ev[1]->step == 4 && ev[1]->session_log &&
                  ev[1]->session_log->status == TB__SESSION_LOG__SESSION_STATUS__START,
              "START at 4");
        check(ev[2]->step == 4 && is_scalar(ev[2], 0, "x/zero", 0.0f) &&
                  is_scalar(ev[2], 1, "x/y", 2.5f),
              "both scalars of step 4 in one record, the zero one too");
        const Tb__Summary__Value *img = value_of(ev[3], 0);
        check(img && img->image->width == 7 && img->image->height == 6 &&
                  img->image->encoded_image_string.len == 8,
              "the image's size and bytes");
        const Tb__Summary__Value *txt = value_of(ev[4], 0);
        check(txt && !strcmp(txt->metadata->plugin_data->plugin_name, "text") &&
                  txt->tensor->string_val[0].len == 5,
              "the text for the text plugin");
    }
    free_all(ev);
}

/* A file of steps 1..10 (after file_version) in dir; its path into path. */
static void write_steps(const char *dir, char *path, size_t len)
{
    char err[1024];
    struct tb_events tb;
    if (tb_events_open(&tb, dir, err, sizeof err) != 0) {
        test_fail("tb_events_open: %s", err);
        return;
    }
    for (long step = 1; step <= 10; step++) {
        struct tb_scalar s = {"loss", (double)step};
        tb_events_scalars(&tb, step, &s, 1);
    }
    snprintf(path, len, "%s", tb.file.path);
    tb_events_close(&tb);
}

static void test_trim(const char *dir)
{
    char path[1200], err[1024];
    write_steps(dir, path, sizeof path);
    long records;
    int files, n;
    enum tfrecord_status st;
    check(tb_events_trim(dir, 6, &records, &files, err, sizeof err) == 0, "trim at 6");
    check(records == 4 && files == 1, "trim at 6: 4 records of one file cut");
    Tb__Event **ev = read_all(path, &n, &st);
    check(n == 7 && st == TFRECORD_END && ev[6]->step == 6, "steps 0..6 left, whole");
    free_all(ev);
    check(tb_events_trim(dir, 6, &records, &files, err, sizeof err) == 0 && files == 0,
          "trimming again at 6 cuts nothing");
    /* a record cut short by a crash: the whole ones before it stay */
    long whole = file_size(path);
    FILE *f = fopen(path, "ab");
    fwrite("\x20\0\0\0\0\0\0\0\1\2", 1, 10, f);
    fclose(f);
    check(tb_events_trim(dir, 100, &records, &files, err, sizeof err) == 0 && files == 1 &&
              file_size(path) == whole,
          "a cut last record is cut off");
    /* a wrong checksum in the middle (record 3's payload) ends the file there */
    f = fopen(path, "r+b");
    long at = record_end(f, 3) - 1;
    fseek(f, at, SEEK_SET);
    int byte = fgetc(f);
    fseek(f, at, SEEK_SET);
    fputc(byte ^ 1, f);
    fclose(f);
    ev = read_all(path, &n, &st);
    check(n == 3 && st == TFRECORD_CORRUPT, "a flipped checksum bit is seen");
    free_all(ev);
    check(tb_events_trim(dir, 100, &records, &files, err, sizeof err) == 0 && files == 1, "trim");
    ev = read_all(path, &n, &st);
    check(n == 3 && st == TFRECORD_END, "the file ends before the corrupt record, 3 whole ones");
    free_all(ev);
    check(tb_events_trim("/nonexistent/dir", 1, &records, &files, err, sizeof err) == 0,
          "a directory that does not exist holds nothing to trim");
    unlink(path);
}

/* RLIMIT_FSIZE set a little above the file's size: the next record is refused midway. */
static void test_full_disk(const char *dir)
{
    char err[1024];
    struct tb_events tb;
    if (tb_events_open(&tb, dir, err, sizeof err) != 0) {
        test_fail("tb_events_open: %s", err);
        return;
    }
    signal(SIGXFSZ, SIG_IGN); /* the write then fails with EFBIG instead of killing us */
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    struct tb_scalar s = {"loss", 1.0};
    tb_events_scalars(&tb, 1, &s, 1);
    long whole = file_size(tb.file.path);
    lim = saved;
    lim.rlim_cur = (rlim_t)whole + 10; /* room for part of one more record */
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
        test_fail("setrlimit");
        return;
    }
    int refused = 0;
    for (long step = 2; step <= 4; step++) {
        s.value = (double)step;
        refused += tb_events_scalars(&tb, step, &s, 1) != 0;
    }
    check(refused == 3, "records beyond the limit are refused (held)");
    check(file_size(tb.file.path) == whole, "the file holds whole records only, none cut");
    check(tb.file.held == 3, "the 3 refused records are held in memory");
    setrlimit(RLIMIT_FSIZE, &saved);
    s.value = 5.0;
    check(tb_events_scalars(&tb, 5, &s, 1) == 0, "with room again the next record is written");
    char path[sizeof tb.file.path];
    snprintf(path, sizeof path, "%s", tb.file.path);
    check(tb_events_close(&tb) == 0, "close: nothing lost");
    int n;
    enum tfrecord_status st;
    Tb__Event **ev = read_all(path, &n, &st);
    check(n == 6 && st == TFRECORD_END, "file_version and steps 1..5, whole");
    for (int i = 1; i < n && i < 6; i++)
        check(ev[i]->step == i && is_scalar(ev[i], 0, "loss", (float)i), "... in order");
    free_all(ev);
    unlink(path);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_tb_events tests/data/tb_reference.tfevents\n");
        return 2;
    }
    char dir[] = "/tmp/test_tb_events.XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_crc();
    test_reference(argv[1]);
    test_writer(dir);
    char path[1200];
    if (find_file(dir, NULL, path, sizeof path))
        unlink(path);
    test_trim(dir);
    test_full_disk(dir);
    rmdir(dir);
    printf("test_tb_events: %d conditions checked\n", conditions);
    return test_finish("test_tb_events");
}
