/* train_loop.h: a whole training run as the Keras example's model.fit does it: epochs over
 * the training split repeated `dataset_repetitions` times and reshuffled each epoch, full
 * global batches only, EMA after every step, validation losses with the EMA network after
 * every epoch, and rank 0's duties: progress lines, the metrics log, sample grids and the
 * loss plot, all under the run directory. */
#ifndef DDIM_TRAIN_LOOP_H
#define DDIM_TRAIN_LOOP_H

#include "backend.h"
#include "comm.h"
#include "config.h"

/* 0 when the run completed (or was stopped by a signal and wrote its checkpoint), 1 after
 * printing what went wrong. Resumes from run_dir/checkpoint.h5 when there is one
 * (train.resume=auto); writes it after every epoch and where the run ends. While it runs,
 * SIGUSR1 and SIGTERM set a file-scope flag (its only global state; the previous handlers
 * are put back on return): the ranks stop together, checkpoint and return 0. */
int train_loop_run(const struct run_config *cfg, struct backend *be, struct comm *comm);

/* Epoch `epoch`'s order: a seeded permutation of the training split repeated `reps`
 * times (order[i] in [0, n)). The same on every rank. */
void train_epoch_order(long *order, long n, int reps, uint64_t seed, int epoch);

#endif
