/* trainer_state.h: a trainer's state to and from the plain struct train_state that io/
 * writes (io/checkpoint.h). The one place that lists what a training state holds: the
 * training and EMA networks, the Adam moments, the normalizer and the optimizer step. */
#ifndef DDIM_TRAINER_STATE_H
#define DDIM_TRAINER_STATE_H

#include "checkpoint.h"
#include "trainer.h"

/* Host buffers for t's state (shape and parameter table set); trainer_state_free frees them. */
void trainer_state_alloc(const struct trainer *t, struct train_state *s);
void trainer_state_free(struct train_state *s);

/* t's state downloaded into s (allocated by trainer_state_alloc), and uploaded from it. */
void trainer_state_get(const struct trainer *t, struct train_state *s);
void trainer_state_set(struct trainer *t, const struct train_state *s);

/* Rank 0's state on every rank, the optimizer step included (the comm broadcasts backend
 * memory). */
void trainer_state_broadcast(struct trainer *t);

/* checkpoint_write / checkpoint_read of t's state: reading checks the stored model shape
 * against t's and changes t only when the whole file was read. 0, or -1 with a message. */
int trainer_checkpoint_write(const struct trainer *t, const char *path,
                             const struct checkpoint_info *pos, const char *config_yaml, char *err,
                             size_t errlen);
int trainer_checkpoint_read(struct trainer *t, const char *path, struct checkpoint_info *pos,
                            char *err, size_t errlen);

#endif
