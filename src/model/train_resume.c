/* train_resume.c: the training loop's checkpoints: resuming from run_dir/checkpoint.h5
 * (rank 0 reads it, every rank gets its state) and writing it. */
#define _POSIX_C_SOURCE 200809L
#include "train_loop_internal.h"
#include "util.h"

#include <stdlib.h>
#include <unistd.h>

/* Rank 0: reads run_dir/checkpoint.h5 into its trainer if there is one (train.resume=auto)
 * and checks that its position fits this run's steps per epoch. A checkpoint that cannot be
 * used is an error, and the file is left alone. */
int train_resume_read(struct loop *L, char *err, size_t errlen)
{
    if (access(L->ckpt_path, F_OK) != 0)
        return 0;
    if (L->cfg->resume == RESUME_NEVER)
        return util_error(err, errlen,
                          "%s exists and train.resume is never: pick another run.dir, or delete "
                          "the checkpoint to start afresh (train.resume=auto continues from it)",
                          L->ckpt_path);
    struct checkpoint_info *r = &L->resume;
    char msg[1024];
    if (trainer_checkpoint_read(L->t, L->ckpt_path, r, msg, sizeof msg) != 0)
        return util_error(err, errlen,
                          "cannot resume: %s (the checkpoint is left as it is: move it away or "
                          "delete it to start afresh, or pick another run.dir)",
                          msg);
    char *stored = checkpoint_read_config(L->ckpt_path, msg, sizeof msg);
    if (!stored)
        return util_error(err, errlen, "cannot resume: %s", msg);
    char summary[4096];
    int rc = run_guard_check_resume_config(L->cfg, L->ckpt_path, stored, r->global_step,
                                           L->config_change, sizeof L->config_change, summary,
                                           sizeof summary, err, errlen);
    free(stored);
    if (rc != 0)
        return -1;
    if (r->step_in_epoch >= L->steps_per_epoch ||
        r->global_step != r->epoch * L->steps_per_epoch + r->step_in_epoch)
        return util_error(err, errlen,
                          "cannot resume: %s stopped at epoch %d step %ld (global step %ld), "
                          "which does not fit %ld steps per epoch: was train.batch_size, "
                          "data.dataset_repetitions or the dataset changed? Resume with the "
                          "settings it was written with, or pick another run.dir",
                          L->ckpt_path, r->epoch + 1, r->step_in_epoch, r->global_step,
                          L->steps_per_epoch);
    if (summary[0])
        util_log("ddim-dist: resuming with changed settings (recorded in metrics.jsonl; "
                 "config.yaml now holds the new ones): %s\n",
                 summary);
    L->resuming = 1;
    L->ckpt.on_disk = r->global_step;
    return 0;
}

/* All ranks, after setup: rank 0's checkpoint state (if it read one) on every rank. */
void train_resume_share(struct loop *L)
{
    struct backend *be = L->be;
    struct trainer *t = L->t;
    struct comm *comm = L->comm;
    long long n[4] = {L->resuming, L->resume.epoch, L->resume.global_step, L->resume.step_in_epoch};
    if (comm->world > 1) { /* broadcast works on backend memory */
        void *dev = be->alloc(be, sizeof n);
        be->upload(be, dev, n, sizeof n);
        comm->broadcast(comm, dev, sizeof n);
        be->download(be, n, dev, sizeof n);
        be->free(be, dev);
    }
    if (!n[0])
        return;
    L->resuming = 1;
    L->resume.epoch = (int)n[1];
    L->resume.global_step = L->global_step = L->start_step = (long)n[2];
    L->resume.step_in_epoch = (long)n[3];
    if (comm->world > 1)
        trainer_state_broadcast(t);
    util_log("ddim-dist: resuming from %s at epoch %d step %ld (step %ld in all)\n", L->ckpt_path,
             L->resume.epoch + 1, L->resume.step_in_epoch, L->global_step);
}

/* Rank 0: the state after global_step steps into run_dir/checkpoint.h5. One that cannot be
 * written leaves the last good one (the file is replaced atomically) and is tried again at
 * the next checkpoint; each failure is reported (run_guard_ckpt_record). */
void train_resume_save(struct loop *L)
{
    long spe = L->steps_per_epoch;
    struct checkpoint_info pos = {(int)(L->global_step / spe), L->global_step,
                                  L->global_step % spe};
    int rc = trainer_checkpoint_write(L->t, L->ckpt_path, &pos, L->config_yaml, L->ckpt.error,
                                      sizeof L->ckpt.error);
    run_guard_ckpt_record(&L->ckpt, L->ckpt_path, L->global_step, rc, &L->log);
}
