/* run_guard.h: what keeps a training run from being lost or spoiled, apart from the
 * training itself (train_loop.c calls these):
 *   - stop signals: SIGTERM, SIGINT (Ctrl-C), SIGHUP (the terminal went away) and SIGUSR1
 *     (Slurm's warning) ask for a stop at the next step the ranks agree on, with a
 *     checkpoint; a second SIGINT stops at once, without one (exit status 130); SIGINT
 *     and SIGHUP that were ignored when the run started (nohup) stay ignored;
 *   - the run directory's lock (run.dir/lock), so that two jobs never write one run;
 *   - the divergence guard: a non-finite loss, or a noise loss that explodes relative to
 *     the run's own recent losses, stops the run before a checkpoint can be spoiled;
 *   - resuming with other settings: the changes that break exact resume are refused
 *     unless train.resume is force; every accepted change is listed. */
#ifndef DDIM_RUN_GUARD_H
#define DDIM_RUN_GUARD_H

#include "config.h"
#include "run_log.h"

#include <stddef.h>

/* --- stop signals ---------------------------------------------------------------------- */

/* Installs the handlers. They stay until the process exits: a stop signal that arrives
 * while the run shuts down (after its checkpoint, in MPI's or CUDA's teardown) is taken as
 * asked (a second SIGINT still ends it at once, exit 130), never by the default action,
 * which would end the job by a signal. */
void run_guard_signals_install(void);
/* The signal that asked for a stop, or 0. */
int run_guard_stop_signal(void);

/* The signal's name ("SIGINT"). */
const char *run_guard_signal_name(int sig);

/* --- checkpoints that cannot be written ------------------------------------------------ */

struct ckpt_state {
    long on_disk;     /* the step of the checkpoint on disk (-1: none) */
    int failures;     /* checkpoints not written since the last one that was */
    char error[1536]; /* why the last one was not (checkpoint_write's message) */
};

void run_guard_ckpt_init(struct ckpt_state *c);
/* After checkpoint_write of `step` to path returned rc (its message in c->error): a failure
 * is reported on stderr (with the cause and the step on disk) and in metrics.jsonl
 * ({"type":"checkpoint_failed",...}); a success after failures says so. */
void run_guard_ckpt_record(struct ckpt_state *c, const char *path, long step, int rc,
                           struct run_log *log);
/* "the checkpoint on disk, PATH, is that of step N" or "there is no checkpoint yet". */
void run_guard_ckpt_describe(const struct ckpt_state *c, const char *path, char *out, size_t len);

/* --- the run directory's lock ---------------------------------------------------------- */

struct run_lock {
    int fd; /* -1 when not held */
    char path[CONFIG_PATH_MAX + 16];
};

/* Creates run_dir if need be and takes run_dir/lock (an fcntl write lock, and the holder's
 * "pid P host H" in the file). Held by another live process: -1 with a message naming its
 * PID and host. A lock file left by a process that died is taken over with a warning. */
int run_lock_take(struct run_lock *l, const char *run_dir, char *err, size_t errlen);
/* Empties the lock file and releases the lock (the file stays, so no other job can slip
 * in between); nothing when not held. */
void run_lock_release(struct run_lock *l);

/* --- the divergence guard -------------------------------------------------------------- */

/* the median of the last WINDOW noise losses is the reference; from the second step on (a
 * diverging run can explode within a few steps: seen 0.8, 33, 2.6e8 with a learning rate of
 * 10) */
enum { DIVERGENCE_WINDOW = 50, DIVERGENCE_MIN_HISTORY = 1 };

struct divergence {
    double factor;                    /* train.divergence_factor; 0: only non-finite losses */
    double recent[DIVERGENCE_WINDOW]; /* the last noise losses, a ring */
    int count, next;
    long step;     /* the first step that diverged (0: none) */
    char why[512]; /* what was seen at that step */
};

void run_guard_divergence_init(struct divergence *d, double factor);
/* Feeds one step's (global, 1-based) mean losses; 1 when this or an earlier step diverged.
 * Depends only on the sequence of losses, so every rank decides the same. */
int run_guard_divergence_feed(struct divergence *d, long step, double noise_loss,
                              double image_loss);

/* Rank 0, after a divergence: the error (naming the step and what was seen, and that no
 * checkpoint was written: `on_disk` says which one is there) on stderr, and a line
 * {"type":"stop","reason":"diverged",...} in metrics.jsonl. */
void run_guard_divergence_report(const struct divergence *d, const char *on_disk,
                                 struct run_log *log);

/* --- resuming with other settings ------------------------------------------------------ */

/* 1 if changing `key` from a checkpoint's value keeps resuming exact (epochs, step limit,
 * logging and plotting, where the run writes, the backend...). */
int run_guard_change_is_harmless(const char *key);

/* Compares cfg with the settings a checkpoint stored (stored_yaml, its "config" attribute;
 * label names the checkpoint). Refuses (-1, message listing the changes and how to allow
 * them) changes that break exact resume unless cfg->resume is force. Otherwise 0 with the
 * accepted changes, if any, as one metrics line ({"type":"config_change",...}) into
 * json_line ("" when nothing changed) and as text (key old -> new, ...) into summary. */
int run_guard_check_resume_config(const struct run_config *cfg, const char *label,
                                  const char *stored_yaml, long step, char *json_line,
                                  size_t json_len, char *summary, size_t summary_len, char *err,
                                  size_t errlen);

#endif
