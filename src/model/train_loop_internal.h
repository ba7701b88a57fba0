/* train_loop_internal.h: the training loop's state (struct loop), shared by train_loop.c
 * (setup, epochs, the end) and train_resume.c (resuming and checkpoints). Private to
 * those files. */
#ifndef DDIM_TRAIN_LOOP_INTERNAL_H
#define DDIM_TRAIN_LOOP_INTERNAL_H

#include "dataset.h"
#include "kid_eval.h"
#include "run_guard.h"
#include "run_log.h"
#include "train_loop.h"
#include "trainer.h"
#include "trainer_state.h"

#include <stdint.h>

struct loop {
    const struct run_config *cfg;
    struct backend *be;
    struct comm *comm;
    struct dataset ds;
    struct trainer *t;
    struct run_log log;
    float *host_images; /* (local batch, S, S, 3); NULL when resident */
    float *loss_hist;   /* (2 * max(steps_per_epoch, val_steps)) backend memory: each step's
                           global losses, read back only when progress is printed, so that
                           a step never waits for the host */
    float *host_hist;   /* host copy of loss_hist */
    long *order;
    long steps_per_epoch, val_steps, total_steps, global_step;
    long start_step; /* global_step when this process started (a checkpoint's, or 0) */
    int stopped;     /* a signal stopped the run, or the divergence guard */
    char ckpt_path[CONFIG_PATH_MAX + 32]; /* run_dir/checkpoint.h5 */
    char *config_yaml;                    /* the resolved configuration, for checkpoints */
    struct checkpoint_info resume;        /* rank 0: where its checkpoint left off */
    int resuming;                         /* rank 0: a checkpoint was read */
    struct kid_eval *kid;                 /* NULL: KID off */
    double last_kid;                      /* the last epoch's KID (NaN if none) */
    struct run_lock lock;                 /* rank 0: run_dir/lock */
    struct divergence div;                /* every rank, fed the same losses */
    struct ckpt_state ckpt;   /* rank 0: the checkpoint on disk, and failures to replace it */
    char config_change[8192]; /* rank 0: the metrics line of the settings a resume changed */

    /* data.resident: both splits in backend memory, every rank holding all of each (over the
     * epochs every rank touches every image), and the current order as int32 indices, so
     * that a step gathers its images on the device without a host round trip */
    int resident;
    uint8_t *dev_images[2]; /* (count[split], S, S, 3) backend memory */
    int32_t *dev_order;     /* (longest order) backend memory: the order being run */
    int32_t *host_order;    /* (longest order) staging for dev_order */
    size_t resident_bytes;  /* what the above take in backend memory */
};

/* Rank 0: reads run_dir/checkpoint.h5 into its trainer if there is one (train.resume=auto)
 * and checks its position and settings; 0, or -1 with a message (the file is left alone). */
int train_resume_read(struct loop *L, char *err, size_t errlen);

/* All ranks, after setup: rank 0's checkpoint state (if it read one) on every rank. */
void train_resume_share(struct loop *L);

/* Rank 0: the state after global_step steps into run_dir/checkpoint.h5 (atomically; a
 * failure keeps the last good one, is reported, and is tried again next time). */
void train_resume_save(struct loop *L);

#endif
