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

#include "comm.h"
#include "config.h"
#include "run_log.h"

#include <stddef.h>

/* --- inputs that are outputs ----------------------------------------------------------- */

/* 0 when no file the run writes under run.dir (checkpoint.h5, best.h5, metrics.jsonl,
 * config.yaml, loss.png, kid.png, lock) is one of its inputs (data.path,
 * eval.inception_weights); else -1 with a message naming both. The file given to --config
 * is not among the inputs: it is read whole before anything is written, and a run.dir's
 * own config.yaml is how a run is resumed. */
int run_guard_check_paths(const struct run_config *cfg, char *err, size_t errlen);

/* --- stop signals ---------------------------------------------------------------------- */

/* Installs the handlers: first thing in ddim-dist's main, so that a stop asked for during
 * start-up (before MPI and the backend are up) is kept and honoured once the ranks can
 * agree, before the first step; again (keeping a stop already asked for) by the training
 * loop. They stay until the process exits: a stop signal that arrives while the run shuts
 * down (after its checkpoint, in MPI's or CUDA's teardown) is taken as asked (a second
 * SIGINT still ends it at once, exit 130), never by the default action, which would end the
 * job by a signal. Interrupted system calls are restarted (SA_RESTART). */
void run_guard_signals_install(void);
/* The signal that asked for a stop, or 0. */
int run_guard_stop_signal(void);

/* The signal's name ("SIGINT"). */
const char *run_guard_signal_name(int sig);

/* --- when the ranks agree on a stop ---------------------------------------------------- */

/* The ranks agree whether to stop (and the loop reads the losses back for the divergence
 * guard: the only wait for the device) at steps chosen the same on every rank: first after
 * one step, then every STOP_CHECK_STEPS steps, or every step while any rank's steps take
 * longer than STOP_CHECK_SECONDS / STOP_CHECK_STEPS. With steady step times a stop is
 * agreed within max(STOP_CHECK_SECONDS, one step) of the signal, and a divergence seen
 * within STOP_CHECK_STEPS steps of the step that diverged (docs/slurm.md). */
enum { STOP_CHECK_STEPS = 8 };
#define STOP_CHECK_SECONDS 2.0

struct stop_schedule {
    long next;       /* the global step after which the ranks agree next */
    int interval;    /* steps between agreements: 1 or STOP_CHECK_STEPS */
    long last_step;  /* the step of the last agreement (or of the start) */
    double last_now; /* and its time */
};

/* From global step `step` on (a start, a resume, an epoch after validation): the next
 * agreement after `interval` steps (1 at the first start). */
void run_guard_stop_start(struct stop_schedule *s, long step, double now);
/* Whether the ranks agree after global step `step`. */
int run_guard_stop_due(const struct stop_schedule *s, long step);
/* At a due step, on every rank: 1 when any rank wants to stop (want != 0 here); also agrees
 * on the next step to agree at, from how long the steps since the last agreement took.
 * Two all_ok calls on comm. */
int run_guard_stop_agree(struct stop_schedule *s, struct comm *comm, long step, int want,
                         double now);

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

/* Rank 0, after a divergence: the error (naming the step, what was seen, the step the run
 * stopped at, and that no checkpoint was written: `on_disk` says which one is there) on
 * stderr, and a line {"type":"stop","reason":"diverged","step":N,"stopped_at":M,...} in
 * metrics.jsonl. */
void run_guard_divergence_report(const struct divergence *d, long stopped_at, const char *on_disk,
                                 struct run_log *log);

/* --- resuming with other settings ------------------------------------------------------ */

/* 1 if changing `key` from a checkpoint's value keeps resuming exact (epochs, step limit,
 * logging and plotting, where the run writes, the backend...). */
int run_guard_change_is_harmless(const char *key);
/* 1 if a change of `key` is accepted without train.resume=force: the harmless ones, and those
 * that change the arithmetic but not the training (model.precision: the checkpoint holds
 * float32 weights whatever the precision; such a resume is not bit-exact). */
int run_guard_change_is_accepted(const char *key);

/* The content fingerprints (io/dataset.h, per split) of the dataset a checkpoint was
 * trained on and of data.path now; NULL or "" where unknown (files made before them). */
struct data_fingerprints {
    const char *stored[2], *now[2];
};

/* Compares cfg with the settings a checkpoint stored (stored_yaml, its "config" attribute;
 * label names the checkpoint), and the dataset's contents with those it was trained on
 * (data, or NULL): another dataset at data.path shows as a change of data.train_xxh128 or
 * data.validation_xxh128. Refuses (-1, message listing the changes and how to allow them)
 * changes that break exact resume unless cfg->resume is force. Otherwise 0 with the
 * accepted changes, if any, as one metrics line ({"type":"config_change",...}) into
 * json_line ("" when nothing changed) and as text (key old -> new, ...) into summary. */
int run_guard_check_resume_config(const struct run_config *cfg, const char *label,
                                  const char *stored_yaml, const struct data_fingerprints *data,
                                  long step, char *json_line, size_t json_len, char *summary,
                                  size_t summary_len, char *err, size_t errlen);

#endif
