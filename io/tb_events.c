/* tb_events.c: see tb_events.h. */
#define _POSIX_C_SOURCE 200809L
#include "tb_events.h"
#include "tb_event.pb-c.h"
#include "tfrecord.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char TB_PREFIX[] = "events.out.tfevents.";

int tb_events_available(void)
{
    return 1;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Packs ev, at step and stamped with the time now, into one record and appends it whole. */
static int write_event(struct tb_events *tb, long step, Tb__Event *ev)
{
    if (!tb->open)
        return -1;
    ev->step = step;
    ev->wall_time = wall_seconds();
    size_t n = tb__event__get_packed_size(ev);
    uint8_t *record = util_xmalloc(n + TFRECORD_HEADER + TFRECORD_FOOTER);
    tb__event__pack(ev, record + TFRECORD_HEADER);
    int rc = line_log_append(&tb->file, record, tfrecord_frame(record, n));
    free(record);
    return rc;
}

/* The seconds in the name of the newest event file in dir, or -1 when there is none. */
static long long newest_stamp(const char *dir)
{
    long long newest = -1;
    DIR *d = opendir(dir);
    if (!d)
        return newest;
    for (struct dirent *e; (e = readdir(d));)
        if (!strncmp(e->d_name, TB_PREFIX, sizeof TB_PREFIX - 1)) {
            long long s = strtoll(e->d_name + sizeof TB_PREFIX - 1, NULL, 10);
            newest = s > newest ? s : newest;
        }
    closedir(d);
    return newest;
}

int tb_events_open(struct tb_events *tb, const char *dir, char *err, size_t errlen)
{
    memset(tb, 0, sizeof *tb);
    tb->file.fd = -1;
    long long stamp = (long long)time(NULL), newest = newest_stamp(dir);
    if (stamp <= newest)
        stamp = newest + 1; /* sorts after every file already there */
    char host[256] = "host", path[sizeof tb->file.path];
    if (gethostname(host, sizeof host) != 0 || !host[0] || strchr(host, '/'))
        snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    if ((size_t)snprintf(path, sizeof path, "%s/%s%010lld.%s.%ld", dir, TB_PREFIX, stamp, host,
                         (long)getpid()) >= sizeof path)
        return util_error(err, errlen, "cannot create an event file in '%s': the path is too long",
                          dir);
    if (line_log_open(&tb->file, path, 0, err, errlen) != 0)
        return -1;
    tb->file.unit = "record";
    tb->open = 1;
    Tb__Event ev = TB__EVENT__INIT;
    ev.what_case = TB__EVENT__WHAT_FILE_VERSION;
    ev.file_version = "brain.Event:2";
    write_event(tb, 0, &ev); /* a failure is held and reported like any other record */
    return 0;
}

int tb_events_start(struct tb_events *tb, long step)
{
    Tb__SessionLog log = TB__SESSION_LOG__INIT;
    log.status = TB__SESSION_LOG__SESSION_STATUS__START;
    Tb__Event ev = TB__EVENT__INIT;
    ev.what_case = TB__EVENT__WHAT_SESSION_LOG;
    ev.session_log = &log;
    return write_event(tb, step, &ev);
}

/* One record holding the n values of one step. */
static int write_values(struct tb_events *tb, long step, Tb__Summary__Value **values, size_t n)
{
    Tb__Summary summary = TB__SUMMARY__INIT;
    summary.n_value = n;
    summary.value = values;
    Tb__Event ev = TB__EVENT__INIT;
    ev.what_case = TB__EVENT__WHAT_SUMMARY;
    ev.summary = &summary;
    return write_event(tb, step, &ev);
}

int tb_events_scalars(struct tb_events *tb, long step, const struct tb_scalar *values, int n)
{
    Tb__Summary__Value v[TB_EVENTS_MAX_SCALARS], *ptr[TB_EVENTS_MAX_SCALARS];
    if (n < 0 || n > TB_EVENTS_MAX_SCALARS)
        DDIM_FATAL("tb_events_scalars: %d values, at most %d", n, TB_EVENTS_MAX_SCALARS);
    for (int i = 0; i < n; i++) {
        tb__summary__value__init(&v[i]);
        v[i].tag = (char *)values[i].tag;
        v[i].value_case = TB__SUMMARY__VALUE__VALUE_SIMPLE_VALUE;
        v[i].simple_value = (float)values[i].value;
        ptr[i] = &v[i];
    }
    return write_values(tb, step, ptr, (size_t)n);
}

int tb_events_image(struct tb_events *tb, long step, const char *tag, const void *png, size_t bytes,
                    int width, int height)
{
    Tb__Summary__Image image = TB__SUMMARY__IMAGE__INIT;
    image.height = height;
    image.width = width;
    image.colorspace = 3; /* RGB */
    image.encoded_image_string.data = (uint8_t *)png;
    image.encoded_image_string.len = bytes;
    Tb__Summary__Value v = TB__SUMMARY__VALUE__INIT, *ptr = &v;
    v.tag = (char *)tag;
    v.value_case = TB__SUMMARY__VALUE__VALUE_IMAGE;
    v.image = &image;
    return write_values(tb, step, &ptr, 1);
}

int tb_events_text(struct tb_events *tb, long step, const char *tag, const char *markdown)
{
    /* what the text plugin reads: a scalar string tensor whose metadata names the plugin */
    Tb__SummaryMetadata__PluginData plugin = TB__SUMMARY_METADATA__PLUGIN_DATA__INIT;
    plugin.plugin_name = "text";
    Tb__SummaryMetadata meta = TB__SUMMARY_METADATA__INIT;
    meta.plugin_data = &plugin;
    meta.data_class = TB__DATA_CLASS__DATA_CLASS_TENSOR;
    Tb__TensorShapeProto shape = TB__TENSOR_SHAPE_PROTO__INIT; /* no dimensions: a scalar */
    ProtobufCBinaryData text = {strlen(markdown), (uint8_t *)markdown};
    Tb__TensorProto tensor = TB__TENSOR_PROTO__INIT;
    tensor.dtype = TB__DATA_TYPE__DT_STRING;
    tensor.tensor_shape = &shape;
    tensor.n_string_val = 1;
    tensor.string_val = &text;
    Tb__Summary__Value v = TB__SUMMARY__VALUE__INIT, *ptr = &v;
    v.tag = (char *)tag;
    v.metadata = &meta;
    v.value_case = TB__SUMMARY__VALUE__VALUE_TENSOR;
    v.tensor = &tensor;
    return write_values(tb, step, &ptr, 1);
}

int tb_events_close(struct tb_events *tb)
{
    int rc = tb->open ? line_log_close(&tb->file) : 0;
    tb->open = 0;
    return rc;
}

/* --- trimming, when a run resumes ------------------------------------------------------ */

/* The record at f's position: TFRECORD_OK with its event's step, or why it cannot be read
 * (an event protobuf-c cannot decode counts as corrupt). */
static enum tfrecord_status read_step(FILE *f, uint8_t **buf, size_t *cap, long *step)
{
    size_t n;
    enum tfrecord_status st = tfrecord_read(f, buf, cap, &n);
    if (st != TFRECORD_OK)
        return st;
    Tb__Event *ev = tb__event__unpack(NULL, n, *buf);
    if (!ev)
        return TFRECORD_CORRUPT;
    *step = (long)ev->step;
    tb__event__free_unpacked(ev, NULL);
    return TFRECORD_OK;
}

/* Cuts one event file (see tb_events_trim); adds the records removed to *records and 1 to
 * *files when it cut. */
static int trim_file(const char *path, long max_step, long *records, int *files, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return util_error(err, errlen, "cannot read '%s': %s", path, strerror(errno));
    uint8_t *buf = NULL;
    size_t cap = 0;
    long step = 0, after = 0;
    off_t keep = 0;
    enum tfrecord_status st;
    while ((st = read_step(f, &buf, &cap, &step)) == TFRECORD_OK && step <= max_step)
        keep = ftello(f);
    while (st == TFRECORD_OK) { /* count the whole records that go */
        after++;
        st = read_step(f, &buf, &cap, &step);
    }
    fseeko(f, 0, SEEK_END);
    off_t size = ftello(f);
    fclose(f);
    free(buf);
    if (keep >= size)
        return 0;
    if (truncate(path, keep) != 0)
        return util_error(err, errlen, "cannot cut '%s' after step %ld: %s", path, max_step,
                          strerror(errno));
    *records += after;
    (*files)++;
    return 0;
}

int tb_events_trim(const char *dir, long max_step, long *records, int *files, char *err,
                   size_t errlen)
{
    *records = 0;
    *files = 0;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT
                   ? 0
                   : util_error(err, errlen, "cannot list '%s': %s", dir, strerror(errno));
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (strncmp(e->d_name, TB_PREFIX, sizeof TB_PREFIX - 1) != 0)
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        rc = trim_file(path, max_step, records, files, err, errlen);
    }
    closedir(d);
    return rc;
}
