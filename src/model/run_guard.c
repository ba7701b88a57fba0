/* run_guard.c: see run_guard.h. */
#define _POSIX_C_SOURCE 200809L
#include "run_guard.h"
#include "run_log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- stop signals ---------------------------------------------------------------------- */

static const int stop_signals[] = {SIGUSR1, SIGTERM, SIGINT, SIGHUP};
enum { NUM_STOP_SIGNALS = sizeof stop_signals / sizeof stop_signals[0] };
static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int sig)
{
    if (sig == SIGINT && stop_signal != 0) {
        /* the second Ctrl-C: the user does not want to wait for the next step */
        static const char msg[] = "ddim-dist: interrupted again: stopping at once, without a "
                                  "checkpoint (the last one written is kept)\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(130);
    }
    stop_signal = sig;
}

void run_guard_signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    stop_signal = 0;
    for (int i = 0; i < NUM_STOP_SIGNALS; i++) {
        struct sigaction old;
        sigaction(stop_signals[i], NULL, &old);
        /* an interrupt or hang-up ignored by whoever started us stays ignored: nohup, or a
         * background job of a shell without job control, which Ctrl-C must not reach */
        int quiet = stop_signals[i] == SIGINT || stop_signals[i] == SIGHUP;
        if (!(quiet && old.sa_handler == SIG_IGN))
            sigaction(stop_signals[i], &sa, NULL);
    }
}

int run_guard_stop_signal(void)
{
    return stop_signal;
}

const char *run_guard_signal_name(int sig)
{
    switch (sig) {
    case SIGINT:
        return "SIGINT";
    case SIGTERM:
        return "SIGTERM";
    case SIGHUP:
        return "SIGHUP";
    case SIGUSR1:
        return "SIGUSR1";
    default:
        return "a signal";
    }
}

/* --- checkpoints that cannot be written ------------------------------------------------ */

void run_guard_ckpt_init(struct ckpt_state *c)
{
    memset(c, 0, sizeof *c);
    c->on_disk = -1;
}

void run_guard_ckpt_describe(const struct ckpt_state *c, const char *path, char *out, size_t len)
{
    if (c->on_disk >= 0)
        snprintf(out, len, "the checkpoint on disk, %s, is that of step %ld", path, c->on_disk);
    else
        snprintf(out, len, "there is no checkpoint yet");
}

void run_guard_ckpt_record(struct ckpt_state *c, const char *path, long step, int rc,
                           struct run_log *log)
{
    if (rc == 0) {
        if (c->failures > 0)
            util_log("ddim-dist: checkpoint of step %ld written, after %d that could not be\n",
                     step, c->failures);
        c->failures = 0;
        c->on_disk = step;
        return;
    }
    char disk[CONFIG_PATH_MAX + 128], why[1700], line[2048];
    run_guard_ckpt_describe(c, path, disk, sizeof disk);
    c->failures++;
    fprintf(stderr,
            "ddim-dist: error: the checkpoint of step %ld was not written (%d time(s) in a "
            "row): %s; %s; trying again at the next checkpoint\n",
            step, c->failures, c->error, disk);
    run_log_json_string(why, sizeof why, c->error);
    snprintf(line, sizeof line,
             "{\"type\":\"checkpoint_failed\",\"step\":%ld,\"on_disk_step\":%ld,"
             "\"message\":%s}",
             step, c->on_disk, why);
    run_log_line(log, line);
}

/* --- the run directory's lock ---------------------------------------------------------- */

/* The holder recorded in an open lock file: 1 with pid and host, 0 when it is empty. */
static int read_holder(int fd, long *pid, char *host, size_t hostlen)
{
    char buf[512];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char h[256];
    if (sscanf(buf, "pid %ld host %255s", pid, h) != 2)
        return 0;
    snprintf(host, hostlen, "%s", h);
    return 1;
}

int run_lock_take(struct run_lock *l, const char *run_dir, char *err, size_t errlen)
{
    l->fd = -1;
    if (run_log_make_dirs(run_dir, err, errlen) != 0)
        return -1;
    snprintf(l->path, sizeof l->path, "%s/lock", run_dir);
    int fd = open(l->path, O_RDWR | O_CREAT, 0666);
    if (fd < 0)
        return util_error(err, errlen, "cannot open the run directory's lock '%s': %s", l->path,
                          strerror(errno));
    long pid = 0;
    char host[256] = "?", me[256] = "?";
    gethostname(me, sizeof me - 1);
    int recorded = read_holder(fd, &pid, host, sizeof host);
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        close(fd);
        if (e == EACCES || e == EAGAIN) {
            if (recorded)
                return util_error(err, errlen,
                                  "run.dir '%s' is in use by another ddim-dist: PID %ld on host "
                                  "%s holds %s. Wait for that job to end (or stop it), or pick "
                                  "another run.dir",
                                  run_dir, pid, host, l->path);
            return util_error(err, errlen,
                              "run.dir '%s' is in use by another ddim-dist (it holds %s). Wait "
                              "for that job to end, or pick another run.dir",
                              run_dir, l->path);
        }
        return util_error(err, errlen,
                          "cannot lock '%s': %s (the run directory's file system must support "
                          "fcntl locks: NFS, Lustre with flock, GPFS, local disks)",
                          l->path, strerror(e));
    }
    if (recorded && !(pid == (long)getpid() && !strcmp(host, me)))
        fprintf(stderr,
                "ddim-dist: warning: taking over the lock of PID %ld on host %s, which no "
                "longer holds it (it ended without releasing %s: killed?)\n",
                pid, host, l->path);
    char line[400];
    int n = snprintf(line, sizeof line, "pid %ld host %s\n", (long)getpid(), me);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return util_error(err, errlen, "cannot write the lock '%s': %s", l->path, strerror(e));
    }
    l->fd = fd;
    return 0;
}

void run_lock_release(struct run_lock *l)
{
    if (l->fd < 0)
        return;
    if (ftruncate(l->fd, 0) != 0) {
        /* the next run then warns that it takes the lock over: harmless */
    }
    close(l->fd); /* releases the fcntl lock */
    l->fd = -1;
}

/* --- the divergence guard -------------------------------------------------------------- */

void run_guard_divergence_init(struct divergence *d, double factor)
{
    memset(d, 0, sizeof *d);
    d->factor = factor;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int run_guard_divergence_feed(struct divergence *d, long step, double noise_loss, double image_loss)
{
    if (d->step)
        return 1;
    if (!isfinite(noise_loss) || !isfinite(image_loss)) {
        d->step = step;
        snprintf(d->why, sizeof d->why, "the %s loss became %g",
                 isfinite(noise_loss) ? "image" : "noise",
                 isfinite(noise_loss) ? image_loss : noise_loss);
        return 1;
    }
    if (d->factor > 0 && d->count >= DIVERGENCE_MIN_HISTORY) {
        /* the median: a few spikes in the window do not move it */
        double sorted[DIVERGENCE_WINDOW];
        memcpy(sorted, d->recent, (size_t)d->count * sizeof(double));
        qsort(sorted, (size_t)d->count, sizeof(double), compare_doubles);
        double median = sorted[d->count / 2];
        if (noise_loss > d->factor * median) {
            d->step = step;
            snprintf(d->why, sizeof d->why,
                     "the noise loss %g is more than %g times the median %g of the last %d "
                     "step(s) (train.divergence_factor)",
                     noise_loss, d->factor, median, d->count);
            return 1;
        }
    }
    d->recent[d->next] = noise_loss;
    d->next = (d->next + 1) % DIVERGENCE_WINDOW;
    if (d->count < DIVERGENCE_WINDOW)
        d->count++;
    return 0;
}

void run_guard_divergence_report(const struct divergence *d, const char *on_disk,
                                 struct run_log *log)
{
    char why[1100], line[1300];
    run_log_json_string(why, sizeof why, d->why);
    snprintf(line, sizeof line,
             "{\"type\":\"stop\",\"reason\":\"diverged\",\"step\":%ld,\"message\":%s}", d->step,
             why);
    run_log_line(log, line);
    fprintf(stderr,
            "ddim-dist: error: the training diverged at step %ld: %s. Stopped without writing a "
            "checkpoint: %s. To go on, lower train.learning_rate (resuming from a checkpoint "
            "then needs --set train.resume=force, as that changes the training), or set "
            "train.divergence_factor=0 to turn this guard off\n",
            d->step, d->why, on_disk);
}

/* --- resuming with other settings ------------------------------------------------------ */

int run_guard_change_is_harmless(const char *key)
{
    static const char *harmless[] = {
        "train.num_epochs", "train.max_steps", "train.resume", "train.divergence_factor",
        "data.resident",    "eval.",           "run.",
    };
    for (size_t i = 0; i < sizeof harmless / sizeof harmless[0]; i++) {
        size_t n = strlen(harmless[i]);
        if (harmless[i][n - 1] == '.' ? !strncmp(key, harmless[i], n) : !strcmp(key, harmless[i]))
            return 1;
    }
    return 0;
}

enum { MAX_CHANGES = 64 };

/* "key old -> new, ..." of the changes (only the harmful ones when harmful_only). */
static void list_changes(const struct config_difference *d, int n, int harmful_only, char *out,
                         size_t len)
{
    size_t j = 0;
    out[0] = '\0';
    for (int i = 0; i < n && j < len; i++) {
        if (harmful_only && run_guard_change_is_harmless(d[i].key))
            continue;
        j += (size_t)snprintf(out + j, len - j, "%s%s %s -> %s", j ? ", " : "", d[i].key,
                              d[i].old_value, d[i].new_value);
    }
}

/* The changes as one metrics line. */
static void changes_json(const struct config_difference *d, int n, long step, int forced, char *out,
                         size_t len)
{
    size_t j = (size_t)snprintf(out, len,
                                "{\"type\":\"config_change\",\"step\":%ld,\"forced\":%s,"
                                "\"changes\":[",
                                step, forced ? "true" : "false");
    for (int i = 0; i < n && j < len; i++) {
        char key[128], a[600], b[600];
        run_log_json_string(key, sizeof key, d[i].key);
        run_log_json_string(a, sizeof a, d[i].old_value);
        run_log_json_string(b, sizeof b, d[i].new_value);
        j += (size_t)snprintf(
            out + j, len - j, "%s{\"key\":%s,\"old\":%s,\"new\":%s,\"exact_resume\":%s}",
            i ? "," : "", key, a, b, run_guard_change_is_harmless(d[i].key) ? "true" : "false");
    }
    if (j < len)
        snprintf(out + j, len - j, "]}");
}

int run_guard_check_resume_config(const struct run_config *cfg, const char *label,
                                  const char *stored_yaml, long step, char *json_line,
                                  size_t json_len, char *summary, size_t summary_len, char *err,
                                  size_t errlen)
{
    json_line[0] = summary[0] = '\0';
    if (!stored_yaml || !stored_yaml[0])
        return 0; /* a checkpoint without its settings: nothing to compare */
    struct run_config old;
    config_defaults(&old);
    char msg[1024];
    if (config_load_yaml_text(&old, label, stored_yaml, msg, sizeof msg) != 0) {
        if (cfg->resume == RESUME_FORCE)
            return 0;
        return util_error(err, errlen,
                          "cannot resume: the settings stored in %s cannot be read (%s), so "
                          "they cannot be compared with these; set train.resume=force to "
                          "resume anyway",
                          label, msg);
    }
    static struct config_difference d[MAX_CHANGES]; /* 33 KB: off the stack */
    int n = config_differences(&old, cfg, d, MAX_CHANGES);
    if (n > MAX_CHANGES)
        n = MAX_CHANGES;
    int kept = 0;
    for (int i = 0; i < n; i++) /* how to resume is not a setting of the training */
        if (strcmp(d[i].key, "train.resume") != 0)
            d[kept++] = d[i];
    n = kept;
    int harmful = 0;
    for (int i = 0; i < n; i++)
        harmful += !run_guard_change_is_harmless(d[i].key);
    if (harmful && cfg->resume != RESUME_FORCE) {
        char list[2048];
        list_changes(d, n, 1, list, sizeof list);
        return util_error(err, errlen,
                          "cannot resume: %s was written with other settings, and resuming with "
                          "these would not continue the same training: %s. Resume with its "
                          "settings (the run directory's config.yaml holds them), pick another "
                          "run.dir, or set train.resume=force (--set train.resume=force) to go "
                          "on with the new settings anyway",
                          label, list);
    }
    if (n == 0)
        return 0;
    list_changes(d, n, 0, summary, summary_len);
    changes_json(d, n, step, cfg->resume == RESUME_FORCE && harmful, json_line, json_len);
    return 0;
}
