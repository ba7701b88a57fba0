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

/* 0 when the run completed, 1 after printing what went wrong. */
int train_loop_run(const struct run_config *cfg, struct backend *be, struct comm *comm);

/* Epoch `epoch`'s order: a seeded permutation of the training split repeated `reps`
 * times (order[i] in [0, n)). The same on every rank. */
void train_epoch_order(long *order, long n, int reps, uint64_t seed, int epoch);

#endif
