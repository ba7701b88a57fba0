/* train_resume.h: the training loop's checkpoint, run_dir/checkpoint.h5: resuming from it
 * (rank 0 reads it and checks it against this run, every rank gets its state) and writing
 * it. The loop (train_loop.c) holds one struct train_resume. */
#ifndef DDIM_TRAIN_RESUME_H
#define DDIM_TRAIN_RESUME_H

#include "checkpoint.h"
#include "config.h"
#include "run_guard.h"
#include "run_log.h"
#include "trainer.h"

struct train_resume {
    char ckpt_path[CONFIG_PATH_MAX + 32]; /* run_dir/checkpoint.h5 */
    struct checkpoint_info at;            /* where the checkpoint read left off */
    int resuming;                         /* a checkpoint was read (rank 0; every rank after
                                             train_resume_share) */
    struct ckpt_state ckpt;   /* rank 0: the checkpoint on disk, and failures to replace it */
    char config_change[8192]; /* rank 0: the metrics line of the settings a resume changed */
};

/* Sets the checkpoint's path under cfg->run_dir; nothing read yet. */
void train_resume_init(struct train_resume *r, const struct run_config *cfg);

/* Rank 0: reads the checkpoint into t if there is one (train.resume=auto) and checks its
 * position (against steps_per_epoch) and settings; 0, or -1 with a message (the file is
 * left alone). */
int train_resume_read(struct train_resume *r, const struct run_config *cfg, struct trainer *t,
                      long steps_per_epoch, char *err, size_t errlen);

/* All ranks, after setup: rank 0's checkpoint position (if it read one) and t's state on
 * every rank. Returns the global step to start from (0 when not resuming). */
long train_resume_share(struct train_resume *r, struct trainer *t);

/* Rank 0: t's state after global_step steps into the checkpoint (atomically; a failure keeps
 * the last good one, is reported in log, and is tried again next time). */
void train_resume_save(struct train_resume *r, struct trainer *t, long global_step,
                       long steps_per_epoch, const char *config_yaml, struct run_log *log);

#endif
