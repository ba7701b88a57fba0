/* kid_eval.h: the validation KID during training, as the Keras example's test_step measures
 * it: for every validation batch, the batch's real images against as many images generated
 * by the EMA network with eval.kid_diffusion_steps steps; KID per batch, averaged.
 *
 * Spread over the ranks: each rank generates and encodes its share of every batch (its
 * trainer batch, at its first_example), the features are gathered by one all-reduce, and
 * every rank computes the same KID. Noise is drawn by global image index (RNG_KID_NOISE),
 * so the value does not depend on the number of ranks. */
#ifndef DDIM_KID_EVAL_H
#define DDIM_KID_EVAL_H

#include "checkpoint.h"
#include "config.h"
#include "trainer.h"

#include <stddef.h>

struct kid_eval;

/* *out = NULL when KID is off: eval.kid_every is 0, or eval.inception_weights is empty (a
 * warning on rank 0 says so). A configured file that is missing or does not match is an
 * error (-1 and a message), at start rather than at the first validation. */
int kid_eval_create(struct kid_eval **out, const struct run_config *cfg, struct trainer *t,
                    char *err, size_t errlen);
void kid_eval_destroy(struct kid_eval *k);

/* Whether epoch (0-based) measures KID. */
int kid_eval_due(const struct kid_eval *k, int epoch);
/* One validation batch: t->images holds this rank's share of its real images. All ranks call
 * it together (it all-reduces). batch is the batch's index in the epoch's validation. */
void kid_eval_batch(struct kid_eval *k, int epoch, long batch);
/* The mean KID over the batches since the last call (NaN if none), and the seconds they
 * took (generation, encoding, gathering); resets. */
double kid_eval_result(struct kid_eval *k, double *seconds);

/* Rank 0: when kid is better than the best so far, the model into run_dir/best.h5 (the
 * format of checkpoint.h5, written atomically, with the root attribute val_kid), as the
 * example's ModelCheckpoint(monitor="val_kid", save_best_only=True). A failure is a warning
 * and keeps the previous best.h5. No-op when k is NULL or kid is NaN. */
void kid_eval_save_best(struct kid_eval *k, double kid, const char *run_dir,
                        const struct trainer *t, const struct checkpoint_info *pos,
                        const char *config_yaml);
/* Rank 0, resuming: the best KID so far from run_dir/best.h5's val_kid, if there is one. */
void kid_eval_read_best(struct kid_eval *k, const char *run_dir);

#endif
