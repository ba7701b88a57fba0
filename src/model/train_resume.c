/* train_resume.c: the training loop's checkpoints: resuming from run_dir/checkpoint.h5
 * (rank 0 reads it, every rank gets its state) and writing it. */
#define _POSIX_C_SOURCE 200809L
#include "train_resume.h"
#include "trainer_state.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void train_resume_init(struct train_resume *r, const struct run_config *cfg)
{
    memset(r, 0, sizeof *r);
    snprintf(r->ckpt_path, sizeof r->ckpt_path, "%s/checkpoint.h5", cfg->run_dir);
    run_guard_ckpt_init(&r->ckpt);
}

/* A checkpoint that cannot be used is an error, and the file is left alone. */
int train_resume_read(struct train_resume *R, const struct run_config *cfg, struct trainer *t,
                      long steps_per_epoch, char *err, size_t errlen)
{
    if (access(R->ckpt_path, F_OK) != 0)
        return 0;
    if (cfg->resume == RESUME_NEVER)
        return util_error(err, errlen,
                          "%s exists and train.resume is never: pick another run.dir, or delete "
                          "the checkpoint to start afresh (train.resume=auto continues from it)",
                          R->ckpt_path);
    struct checkpoint_info *r = &R->at;
    char msg[1024];
    if (trainer_checkpoint_read(t, R->ckpt_path, r, msg, sizeof msg) != 0)
        return util_error(err, errlen,
                          "cannot resume: %s (the checkpoint is left as it is: move it away or "
                          "delete it to start afresh, or pick another run.dir)",
                          msg);
    char *stored = checkpoint_read_config(R->ckpt_path, msg, sizeof msg);
    if (!stored)
        return util_error(err, errlen, "cannot resume: %s", msg);
    char summary[4096];
    int rc = run_guard_check_resume_config(cfg, R->ckpt_path, stored, r->global_step,
                                           R->config_change, sizeof R->config_change, summary,
                                           sizeof summary, err, errlen);
    free(stored);
    if (rc != 0)
        return -1;
    if (r->step_in_epoch >= steps_per_epoch ||
        r->global_step != r->epoch * steps_per_epoch + r->step_in_epoch)
        return util_error(err, errlen,
                          "cannot resume: %s stopped at epoch %d step %ld (global step %ld), "
                          "which does not fit %ld steps per epoch: was train.batch_size, "
                          "data.dataset_repetitions or the dataset changed? Resume with the "
                          "settings it was written with, or pick another run.dir",
                          R->ckpt_path, r->epoch + 1, r->step_in_epoch, r->global_step,
                          steps_per_epoch);
    if (summary[0])
        util_log("ddim-dist: resuming with changed settings (recorded in metrics.jsonl; "
                 "config.yaml now holds the new ones): %s\n",
                 summary);
    R->resuming = 1;
    R->ckpt.on_disk = r->global_step;
    return 0;
}

long train_resume_share(struct train_resume *r, struct trainer *t)
{
    struct backend *be = t->be;
    struct comm *comm = t->comm;
    long long n[4] = {r->resuming, r->at.epoch, r->at.global_step, r->at.step_in_epoch};
    if (comm->world > 1) { /* broadcast works on backend memory */
        void *dev = be->alloc(be, sizeof n);
        be->upload(be, dev, n, sizeof n);
        comm->broadcast(comm, dev, sizeof n);
        be->download(be, n, dev, sizeof n);
        be->free(be, dev);
    }
    if (!n[0])
        return 0;
    r->resuming = 1;
    r->at.epoch = (int)n[1];
    r->at.global_step = (long)n[2];
    r->at.step_in_epoch = (long)n[3];
    if (comm->world > 1)
        trainer_state_broadcast(t);
    util_log("ddim-dist: resuming from %s at epoch %d step %ld (step %ld in all)\n", r->ckpt_path,
             r->at.epoch + 1, r->at.step_in_epoch, r->at.global_step);
    return r->at.global_step;
}

/* One that cannot be written leaves the last good one (the file is replaced atomically) and
 * is tried again at the next checkpoint; each failure is reported (run_guard_ckpt_record). */
void train_resume_save(struct train_resume *r, struct trainer *t, long global_step,
                       long steps_per_epoch, const char *config_yaml, struct run_log *log)
{
    long spe = steps_per_epoch;
    struct checkpoint_info pos = {(int)(global_step / spe), global_step, global_step % spe};
    int rc = trainer_checkpoint_write(t, r->ckpt_path, &pos, config_yaml, r->ckpt.error,
                                      sizeof r->ckpt.error);
    run_guard_ckpt_record(&r->ckpt, r->ckpt_path, global_step, rc, log);
}
