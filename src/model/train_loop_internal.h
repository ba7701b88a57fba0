/* train_loop_internal.h: the training loop's state (struct loop): setup, epochs and the
 * end in train_loop.c, its checkpoint in a struct train_resume (train_resume.h). Private to
 * train_loop.c. */
#ifndef DDIM_TRAIN_LOOP_INTERNAL_H
#define DDIM_TRAIN_LOOP_INTERNAL_H

#include "dataset.h"
#include "kid_eval.h"
#include "run_guard.h"
#include "run_log.h"
#include "train_loop.h"
#include "train_resume.h"
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
    long start_step;            /* global_step when this process started (a checkpoint's, or 0) */
    int stopped;                /* a signal stopped the run, or the divergence guard */
    char *config_yaml;          /* the resolved configuration, for checkpoints */
    struct train_resume resume; /* run_dir/checkpoint.h5: resuming and writing */
    struct kid_eval *kid;       /* NULL: KID off */
    double last_kid;            /* the last epoch's KID (NaN if none) */
    struct run_lock lock;       /* rank 0: run_dir/lock */
    struct divergence div;      /* every rank, fed the same losses */

    /* data.resident: both splits in backend memory, every rank holding all of each (over the
     * epochs every rank touches every image), and the current order as int32 indices, so
     * that a step gathers its images on the device without a host round trip */
    int resident;
    uint8_t *dev_images[2]; /* (count[split], S, S, 3) backend memory */
    int32_t *dev_order;     /* (longest order) backend memory: the order being run */
    int32_t *host_order;    /* (longest order) staging for dev_order */
    size_t resident_bytes;  /* what the above take in backend memory */
};

#endif
