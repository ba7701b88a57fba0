/* unet_exec.c: the U-Net's entry points onto the graph executor (graph_exec.c). */
#include "unet.h"
#include "unet_internal.h"
#include "util.h"

#include <stdlib.h>

int unet_check_backend(struct backend *be, const struct unet *net, int batch, int training,
                       char *err, size_t errlen)
{
    return graph_check_backend(be, &net->g, batch, training, err, errlen);
}

struct unet_acts *unet_acts_create(struct backend *be, const struct unet *net, int batch,
                                   int with_grads)
{
    struct unet_acts *a = util_xcalloc(1, sizeof *a);
    a->ga = graph_acts_create(be, &net->g, batch, with_grads ? GRAPH_PLAN_TRAIN : GRAPH_PLAN_INFER);
    return a;
}

void unet_acts_destroy(struct backend *be, struct unet_acts *a)
{
    if (!a)
        return;
    graph_acts_destroy(be, a->ga);
    free(a);
}

size_t unet_acts_bytes(const struct unet_acts *a)
{
    return a->ga->bytes;
}

void unet_forward(struct backend *be, const struct unet *net, struct unet_acts *a, float *w,
                  const float *noisy, const float *variances, int training, struct comm *comm,
                  float *pred)
{
    graph_forward(be, &net->g, a->ga, w, noisy, variances, training, comm, pred);
}

void unet_backward(struct backend *be, const struct unet *net, struct unet_acts *a, const float *w,
                   float *dw, const float *dpred, struct comm *comm,
                   const struct grad_listener *listen)
{
    graph_backward(be, &net->g, a->ga, w, dw, dpred, comm, listen);
}
