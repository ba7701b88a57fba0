/* run_log.c: see run_log.h. */
#define _POSIX_C_SOURCE 200809L
#include "run_log.h"
#include "atomic_file.h"
#include "image_grid.h"
#include "plot.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { PLOT_WINDOW = 10 }; /* steps averaged into one point of the training curve */

int run_log_make_dirs(const char *path, char *err, size_t errlen)
{
    char buf[CONFIG_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return util_error(err, errlen, "cannot create directory '%s': %s", buf,
                                  strerror(errno));
            *p = saved;
            if (saved == '\0')
                break;
        }
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return util_error(err, errlen, "'%s' exists and is not a directory", path);
    return 0;
}

/* A metrics value read back: JSON's null (see json_number) is NaN. */
static double json_value(const char *p)
{
    return strncmp(p, "null", 4) == 0 ? NAN : strtod(p, NULL);
}

static void history_push(struct history *h, double v);

/* Resuming: keeps the lines of metrics.jsonl up to global step `keep` (rewritten
 * atomically, so that a crash or a full disk here loses nothing) and replays them into the
 * curves. */
static int keep_metrics(struct run_log *log, const char *path, long keep, char *err, size_t errlen)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return 0; /* none yet: a new file */
    char *kept = NULL, line[4096];
    size_t kept_len = 0;
    FILE *out = open_memstream(&kept, &kept_len);
    if (!out)
        DDIM_FATAL("out of host memory reading %s", path);
    while (fgets(line, sizeof line, in)) {
        const char *st = strstr(line, "\"step\":"), *nl = strstr(line, "\"n_loss\":");
        if (!st || !strchr(line, '\n') || strtol(st + 7, NULL, 10) > keep)
            continue; /* a later step, or a line cut short by a crash */
        fputs(line, out);
        const char *vn = strstr(line, "\"val_n_loss\":"), *vi = strstr(line, "\"val_i_loss\":");
        if (strstr(line, "\"type\":\"step\"") && nl) {
            log->window_sum += json_value(nl + 9);
            if (++log->window_count == PLOT_WINDOW) {
                history_push(&log->step_x, (double)strtol(st + 7, NULL, 10));
                history_push(&log->step_noise, log->window_sum / PLOT_WINDOW);
                log->window_sum = 0;
                log->window_count = 0;
            }
        } else if (strstr(line, "\"type\":\"epoch\"") && vn && vi) {
            history_push(&log->epoch_x, (double)strtol(st + 7, NULL, 10));
            history_push(&log->epoch_val_noise, json_value(vn + 13));
            history_push(&log->epoch_val_image, json_value(vi + 13));
            const char *vk = strstr(line, "\"val_kid\":");
            history_push(&log->epoch_val_kid, vk ? json_value(vk + 10) : NAN);
        }
    }
    fclose(in);
    fclose(out);
    int rc = atomic_file_write(path, kept, kept_len, err, errlen);
    free(kept);
    return rc;
}

/* The resolved configuration as YAML text, malloc'd. */
static char *config_text(const struct run_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        DDIM_FATAL("out of host memory writing the configuration");
    config_write_yaml(cfg, f);
    fclose(f);
    return text;
}

/* The event files already there cut after step `first - 1` (with run.tensorboard off too:
 * they then stay as consistent with metrics.jsonl as it is). A failure is a warning. */
static void cut_tensorboard(struct run_log *log, long first)
{
    char err[2048];
    long cut;
    int files;
    if (tb_events_trim(log->dir, first - 1, &cut, &files, err, sizeof err) != 0)
        fprintf(stderr,
                "ddim-dist: warning: %s; TensorBoard may show the steps after %ld that a run "
                "which did not finish wrote beside this run's\n",
                err, first - 1);
    else if (files > 0)
        util_log("ddim-dist: TensorBoard: %ld record(s) after step %ld cut from %d event "
                 "file(s): steps an earlier start wrote after its last checkpoint\n",
                 cut, first - 1, files);
}

/* run.tensorboard: a new event file begun with a START record and the configuration at
 * `first`, the first step this run writes. A failure is a warning: the run goes on without
 * TensorBoard. */
static void open_tensorboard(struct run_log *log, long first, const char *yaml)
{
    char err[2048];
    if (tb_events_open(&log->tb, log->dir, err, sizeof err) != 0) {
        fprintf(stderr, "ddim-dist: warning: %s; the run goes on without TensorBoard\n", err);
        return;
    }
    tb_events_start(&log->tb, first);
    size_t len = strlen(yaml) + 32;
    char *markdown = util_xmalloc(len);
    snprintf(markdown, len, "```yaml\n%s```\n", yaml);
    tb_events_text(&log->tb, first, "config", markdown);
    free(markdown);
}

int run_log_open(struct run_log *log, const struct run_config *cfg, long resume_step, char *err,
                 size_t errlen)
{
    memset(log, 0, sizeof *log);
    log->tb.file.fd = -1;
    log->learning_rate = cfg->diffusion.learning_rate;
    snprintf(log->dir, sizeof log->dir, "%s", cfg->run_dir);
    char path[CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/samples", log->dir);
    if (run_log_make_dirs(path, err, errlen) != 0)
        return -1;
    char *yaml = config_text(cfg);
    snprintf(path, sizeof path, "%s/config.yaml", log->dir);
    if (atomic_file_write(path, yaml, strlen(yaml), err, errlen) != 0) {
        free(yaml);
        return -1;
    }
    snprintf(path, sizeof path, "%s/metrics.jsonl", log->dir);
    if ((resume_step >= 0 && keep_metrics(log, path, resume_step, err, errlen) != 0) ||
        line_log_open(&log->metrics, path, resume_step < 0, err, errlen) != 0) {
        free(yaml);
        return -1;
    }
    log->open = 1;
    long first = (resume_step > 0 ? resume_step : 0) + 1;
    cut_tensorboard(log, first);
    if (!strcmp(cfg->tensorboard, "on"))
        open_tensorboard(log, first, yaml);
    free(yaml);
    return 0;
}

static void history_push(struct history *h, double v)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 256;
        h->v = realloc(h->v, (size_t)h->cap * sizeof *h->v);
        if (!h->v)
            DDIM_FATAL("out of host memory for the loss history");
    }
    h->v[h->n++] = v;
}

/* A number as JSON: null for NaN and infinities (no validation split, a diverged run),
 * which JSON cannot spell. buf holds 32 bytes. */
static const char *json_number(char *buf, double v, const char *fmt)
{
    if (!isfinite(v))
        return "null";
    snprintf(buf, 32, fmt, v);
    return buf;
}

void run_log_step(struct run_log *log, int epoch, long step, double noise_loss, double image_loss,
                  double images_per_second)
{
    if (!log->open)
        return;
    char n[32], i[32], ips[32], line[256];
    snprintf(line, sizeof line,
             "{\"type\":\"step\",\"epoch\":%d,\"step\":%ld,\"n_loss\":%s,\"i_loss\":%s,"
             "\"images_per_s\":%s}",
             epoch, step, json_number(n, noise_loss, "%.6g"), json_number(i, image_loss, "%.6g"),
             json_number(ips, images_per_second, "%.4g"));
    line_log_write(&log->metrics, line);
    struct tb_scalar values[] = {{"train/noise_loss", noise_loss},
                                 {"train/image_loss", image_loss},
                                 {"train/learning_rate", log->learning_rate},
                                 {"train/images_per_second", images_per_second}};
    if (log->tb.open)
        tb_events_scalars(&log->tb, step, values, 4);
    log->window_sum += noise_loss;
    if (++log->window_count == PLOT_WINDOW) {
        history_push(&log->step_x, (double)step);
        history_push(&log->step_noise, log->window_sum / PLOT_WINDOW);
        log->window_sum = 0;
        log->window_count = 0;
    }
}

static void write_plot(struct run_log *log)
{
    char path[CONFIG_PATH_MAX + 64], err[512];
    snprintf(path, sizeof path, "%s/loss.png", log->dir);
    struct plot_series series[3] = {
        {"noise loss (train, mean of 10 steps)",
         log->step_x.v,
         log->step_noise.v,
         (int)log->step_noise.n,
         {31, 119, 180},
         0},
        {"noise loss (validation, EMA)",
         log->epoch_x.v,
         log->epoch_val_noise.v,
         (int)log->epoch_val_noise.n,
         {214, 39, 40},
         1},
        {"image loss (validation, EMA)",
         log->epoch_x.v,
         log->epoch_val_image.v,
         (int)log->epoch_val_image.n,
         {44, 160, 44},
         1},
    };
    struct plot_spec spec = {"ddim-dist training", "step", "loss", 800, 500, 1};
    if (plot_write_png(path, &spec, series, 3, err, sizeof err) != 0)
        fprintf(stderr, "ddim-dist: warning: %s\n", err);
    int any_kid = 0;
    for (long i = 0; i < log->epoch_val_kid.n; i++)
        any_kid = any_kid || isfinite(log->epoch_val_kid.v[i]);
    if (!any_kid)
        return; /* KID off: no empty plot */
    snprintf(path, sizeof path, "%s/kid.png", log->dir);
    struct plot_series kid = {
        "KID (validation, EMA network)", log->epoch_x.v,  log->epoch_val_kid.v,
        (int)log->epoch_val_kid.n,       {148, 103, 189}, PLOT_LINE_MARKERS};
    struct plot_spec kspec = {"ddim-dist validation KID", "step", "KID", 800, 500, 0};
    if (plot_write_png(path, &kspec, &kid, 1, err, sizeof err) != 0)
        fprintf(stderr, "ddim-dist: warning: %s\n", err);
}

/* An epoch's scalars in one record; those not measured (NaN: no validation batch, no KID)
 * are left out, as metrics.jsonl writes null for them. */
static void tensorboard_epoch(struct run_log *log, long step, double noise_loss, double image_loss,
                              double val_noise_loss, double val_image_loss, double val_kid)
{
    const struct tb_scalar all[] = {
        {"epoch/noise_loss", noise_loss},
        {"epoch/image_loss", image_loss},
        {"val/noise_loss", val_noise_loss},
        {"val/image_loss", val_image_loss},
        {"val/kid", val_kid},
    };
    struct tb_scalar values[5];
    int n = 0;
    for (int i = 0; i < 5; i++)
        if (isfinite(all[i].value))
            values[n++] = all[i];
    if (log->tb.open)
        tb_events_scalars(&log->tb, step, values, n);
}

void run_log_epoch(struct run_log *log, int epoch, long step, double noise_loss, double image_loss,
                   double val_noise_loss, double val_image_loss, double val_kid, double seconds)
{
    if (!log->open)
        return;
    char n[32], i[32], vn[32], vi[32], vk[32], line[512];
    snprintf(line, sizeof line,
             "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%ld,\"n_loss\":%s,\"i_loss\":%s,"
             "\"val_n_loss\":%s,\"val_i_loss\":%s,\"val_kid\":%s,\"seconds\":%.3f}",
             epoch, step, json_number(n, noise_loss, "%.6g"), json_number(i, image_loss, "%.6g"),
             json_number(vn, val_noise_loss, "%.6g"), json_number(vi, val_image_loss, "%.6g"),
             json_number(vk, val_kid, "%.6g"), seconds);
    line_log_write(&log->metrics, line);
    tensorboard_epoch(log, step, noise_loss, image_loss, val_noise_loss, val_image_loss, val_kid);
    history_push(&log->epoch_x, (double)step);
    history_push(&log->epoch_val_noise, val_noise_loss);
    history_push(&log->epoch_val_image, val_image_loss);
    history_push(&log->epoch_val_kid, val_kid);
    write_plot(log);
}

int run_log_grid(struct run_log *log, int epoch, long step, const float *images, int rows, int cols,
                 int size, char *err, size_t errlen)
{
    char path[CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/samples/epoch_%04d.png", log->dir, epoch);
    struct image_png png;
    if (image_grid_encode_png(path, images, rows * cols, rows, cols, size, &png, err, errlen) != 0)
        return -1;
    int rc = atomic_file_write(path, png.data, png.bytes, err, errlen);
    if (log->tb.open)
        tb_events_image(&log->tb, step, "samples", png.data, png.bytes, png.width, png.height);
    image_png_free(&png);
    return rc;
}

void run_log_line(struct run_log *log, const char *json)
{
    if (log->open)
        line_log_write(&log->metrics, json);
}

void run_log_json_string(char *out, size_t len, const char *text)
{
    size_t j = 0;
    if (len < 3)
        return;
    out[j++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p && j + 8 < len; p++) {
        if (*p == '"' || *p == '\\') {
            out[j++] = '\\';
            out[j++] = (char)*p;
        } else if (*p < 0x20) {
            j += (size_t)snprintf(out + j, len - j, "\\u%04x", *p);
        } else {
            out[j++] = (char)*p;
        }
    }
    out[j++] = '"';
    out[j] = '\0';
}

int run_log_close(struct run_log *log)
{
    int rc = 0;
    if (log->open)
        rc = line_log_close(&log->metrics);
    log->open = 0;
    tb_events_close(&log->tb);
    struct history *all[] = {&log->step_x,          &log->epoch_x,         &log->step_noise,
                             &log->epoch_val_noise, &log->epoch_val_image, &log->epoch_val_kid};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        free(all[i]->v);
        memset(all[i], 0, sizeof *all[i]);
    }
    return rc;
}
