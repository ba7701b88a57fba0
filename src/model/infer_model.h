/* infer_model.h: a trained model for inference, read from a checkpoint or an EMA export
 * (io/ema_weights.h): the run's configuration, the EMA network built from the stored shape,
 * its weights and the normalizer, in host memory. No optimizer state: ddim-sample needs
 * none. */
#ifndef DDIM_INFER_MODEL_H
#define DDIM_INFER_MODEL_H

#include "config.h"
#include "ema_weights.h"
#include "sampler.h"
#include "unet.h"

#include <stddef.h>

struct infer_model {
    struct run_config cfg; /* defaults, then the stored config, then the stored model shape */
    struct unet *net;      /* built from cfg.model (host only: the parameter table) */
    struct ema_weights ew; /* the file's contents: weights (unet_params(net)->total), norm */
};

/* Reads path (from_checkpoint: a checkpoint, else an EMA export) and builds the network it
 * was written for. A stored config or shape that cannot be built is an error naming the
 * file. 0 or -1 (m freed). */
int infer_model_load(const char *path, int from_checkpoint, struct infer_model *m, char *err,
                     size_t errlen);

/* m's network, EMA weights and normalizer on a backend, for sampler_run (sampler.h);
 * infer_net_release frees what it allocated there. 0, or -1 with a message when the backend
 * cannot run the network (unet_check_backend: the op and shape it refuses); nothing is
 * allocated then. */
int infer_model_upload(const struct infer_model *m, struct backend *be, struct comm *comm,
                       struct infer_net *out, char *err, size_t errlen);
void infer_net_release(struct infer_net *n);

/* m as an EMA export at path (atomically). 0 or -1. */
int infer_model_export(const struct infer_model *m, const char *path, char *err, size_t errlen);

void infer_model_free(struct infer_model *m);

#endif
