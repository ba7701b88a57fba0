/* unet.h: the Keras example's residual U-Net, built from its configuration and written
 * once against the backend op table.
 *
 * The network is a list of nodes (conv, batch norm, swish, add, concat, pool, upsample,
 * embedding) over numbered tensors (graph.h), built at creation. unet_forward runs the list
 * on the one graph executor, unet_backward runs it in reverse; every activation and its
 * gradient live in two arenas of identical layout (struct unet_acts), so no allocation
 * happens inside a step. */
#ifndef DDIM_UNET_H
#define DDIM_UNET_H

#include "backend.h"
#include "comm.h"
#include "model_config.h"
#include "params.h"

#include <stddef.h>
#include <stdint.h>

struct graph;
struct model_shape;

struct unet; /* opaque: nodes, tensors, parameter table */

struct unet *unet_create(const struct unet_config *cfg, char *err, size_t errlen);
void unet_destroy(struct unet *net);
const struct param_table *unet_params(const struct unet *net);
const struct unet_config *unet_get_config(const struct unet *net);
/* The configuration's shape fields to the shape that files store (io/weights_h5.h), and
 * back (the shape's fields only; the rest of u stays). */
void unet_shape_of_config(const struct unet_config *u, struct model_shape *s);
void unet_shape_to_config(struct unet_config *u, const struct model_shape *s);

/* The network as a graph (graph.h): its tensors' shapes and its nodes. */
const struct graph *unet_graph(const struct unet *net);
/* Forward fusion (graph_exec.c: bias, residual add and swish in the convolutions' epilogue),
 * on by default; off runs every node apart (ddim-bench --fuse off). The same bits either way. */
void unet_set_fusion(struct unet *net, int on);

/* Keras's initial weights into a host buffer of params->total floats: glorot-uniform
 * kernels (drawn from Philox keyed by seed, stream and parameter index), zero biases, the
 * head's kernel zero, moving mean 0 and moving variance 1. */
void unet_init_weights(const struct unet *net, float *w_host, uint64_t seed, uint32_t stream);

/* Whether be can run the network for `batch` images, training (forward and backward, BN
 * in training mode) or not (BN in inference mode): graph_check_backend. 0, or -1 with the op
 * and shape refused in err. */
int unet_check_backend(struct backend *be, const struct unet *net, int batch, int training,
                       char *err, size_t errlen);

/* Activations (and, for training, their gradients) for a batch of `batch` images. */
struct unet_acts;
struct unet_acts *unet_acts_create(struct backend *be, const struct unet *net, int batch,
                                   int with_grads);
void unet_acts_destroy(struct backend *be, struct unet_acts *acts);
size_t unet_acts_bytes(const struct unet_acts *acts);

/* pred (batch, S, S, 3) = network(noisy (batch, S, S, 3), variances (batch)).
 * training: BatchNorm uses the batch statistics, summed over all ranks of `comm`, and
 * updates the moving statistics in w; otherwise it uses the moving statistics.
 * w is the flat weight buffer (backend memory). */
void unet_forward(struct backend *be, const struct unet *net, struct unet_acts *acts, float *w,
                  const float *noisy, const float *variances, int training, struct comm *comm,
                  float *pred);

/* After a training forward: dw (params->trainable floats) = gradients of the loss whose
 * gradient with respect to pred is dpred. Parameter gradients are written (=); listen (may
 * be NULL; graph.h) hears of each as it is written. */
struct grad_listener;
void unet_backward(struct backend *be, const struct unet *net, struct unet_acts *acts,
                   const float *w, float *dw, const float *dpred, struct comm *comm,
                   const struct grad_listener *listen);

#endif
