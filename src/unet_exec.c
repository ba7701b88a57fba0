/* unet_exec.c: running the U-Net's node list forward and backward on a backend. */
#include "unet.h"
#include "unet_internal.h"
#include "util.h"

#include <stdlib.h>

struct unet_acts *unet_acts_create(struct backend *be, const struct unet *net, int batch,
                                   int with_grads)
{
    if (batch < 1)
        DDIM_FATAL("unet_acts_create: batch must be >= 1, got %d", batch);
    struct unet_acts *a = util_xcalloc(1, sizeof *a);
    size_t floats = net->floats_per_example * (size_t)batch;
    a->batch = batch;
    a->act = be->alloc(be, floats * sizeof(float));
    a->grad = with_grads ? be->alloc(be, floats * sizeof(float)) : NULL;
    a->bn = be->alloc(be, (net->bn_floats ? net->bn_floats : 1) * sizeof(float));
    a->bytes = (with_grads ? 2 : 1) * floats * sizeof(float) + net->bn_floats * sizeof(float);
    return a;
}

void unet_acts_destroy(struct backend *be, struct unet_acts *a)
{
    if (!a)
        return;
    be->free(be, a->act);
    if (a->grad)
        be->free(be, a->grad);
    be->free(be, a->bn);
    free(a);
}

size_t unet_acts_bytes(const struct unet_acts *a)
{
    return a->bytes;
}

static float *value(const struct unet *net, const struct unet_acts *a, int t)
{
    return a->act + net->tensors[t].offset * (size_t)a->batch;
}

static float *grad(const struct unet *net, const struct unet_acts *a, int t)
{
    if (t < 0 || !net->tensors[t].needs_grad)
        return NULL;
    return a->grad + net->tensors[t].offset * (size_t)a->batch;
}

static size_t rows_of(const struct unet *net, const struct unet_acts *a, int t)
{
    return (size_t)a->batch * net->tensors[t].h * net->tensors[t].w;
}

static struct conv_shape conv_shape_of(const struct unet *net, const struct unet_acts *a,
                                       const struct node *n)
{
    const struct tensor_desc *x = &net->tensors[n->in0];
    struct conv_shape s = {.n = a->batch,
                           .h = x->h,
                           .w = x->w,
                           .cin = x->c,
                           .cout = net->tensors[n->out].c,
                           .k = n->k};
    return s;
}

static void forward_bn(struct backend *be, const struct unet *net, struct unet_acts *a, float *w,
                       const struct node *n, int training, struct comm *comm)
{
    const struct param *pm = &net->params.items[n->mean], *pv = &net->params.items[n->var];
    int c = net->tensors[n->in0].c;
    size_t rows = rows_of(net, a, n->in0);
    float *x = value(net, a, n->in0), *y = value(net, a, n->out);
    if (!training) {
        be->bn_forward_infer(be, y, x, w + pm->offset, w + pv->offset, rows, c,
                             net->cfg.bn_epsilon);
        return;
    }
    float *saved = a->bn + n->bn_offset, *stats = saved + 2 * c;
    be->bn_stats(be, stats, x, rows, c);
    comm->allreduce_sum(comm, stats, 2 * (size_t)c); /* synchronized BatchNorm */
    be->bn_forward_train(be, y, saved, w + pm->offset, w + pv->offset, x, stats,
                         (double)rows * comm->world, rows, c, net->cfg.bn_momentum,
                         net->cfg.bn_epsilon);
}

void unet_forward(struct backend *be, const struct unet *net, struct unet_acts *a, float *w,
                  const float *noisy, const float *variances, int training, struct comm *comm,
                  float *pred)
{
    const struct unet_config *cfg = &net->cfg;
    be->copy(be, value(net, a, net->input), noisy, rows_of(net, a, net->input) * 3 * sizeof(float));
    for (int i = 0; i < net->num_nodes; i++) {
        const struct node *n = &net->nodes[i];
        const struct tensor_desc *in = n->in0 >= 0 ? &net->tensors[n->in0] : NULL;
        const struct tensor_desc *out = &net->tensors[n->out];
        float *y = value(net, a, n->out);
        const float *x0 = n->in0 >= 0 ? value(net, a, n->in0) : NULL;
        const float *x1 = n->in1 >= 0 ? value(net, a, n->in1) : NULL;
        size_t numel = rows_of(net, a, n->out) * out->c;
        switch (n->kind) {
        case NODE_CONV: {
            struct conv_shape s = conv_shape_of(net, a, n);
            be->conv2d_forward(be, y, x0, w + net->params.items[n->kernel].offset,
                               w + net->params.items[n->bias].offset, &s);
            break;
        }
        case NODE_BN:
            forward_bn(be, net, a, w, n, training, comm);
            break;
        case NODE_SWISH:
            be->swish_forward(be, y, x0, numel);
            break;
        case NODE_ADD:
            be->add(be, y, x0, x1, numel);
            break;
        case NODE_CONCAT:
            be->concat_forward(be, y, x0, x1, rows_of(net, a, n->out), in->c,
                               net->tensors[n->in1].c);
            break;
        case NODE_POOL:
            be->avgpool2_forward(be, y, x0, a->batch, in->h, in->w, in->c);
            break;
        case NODE_UPSAMPLE:
            be->upsample2_forward(be, y, x0, a->batch, in->h, in->w, in->c);
            break;
        case NODE_EMBED:
            be->sinusoidal_embedding(be, y, variances, a->batch, out->h, out->w, out->c,
                                     cfg->embedding_min_frequency, cfg->embedding_max_frequency);
            break;
        }
    }
    be->copy(be, pred, value(net, a, net->output),
             rows_of(net, a, net->output) * 3 * sizeof(float));
}

static void backward_bn(struct backend *be, const struct unet *net, struct unet_acts *a,
                        const struct node *n, struct comm *comm)
{
    int c = net->tensors[n->in0].c;
    size_t rows = rows_of(net, a, n->in0);
    float *saved = a->bn + n->bn_offset, *bstats = saved + 4 * c;
    const float *x = value(net, a, n->in0), *dy = grad(net, a, n->out);
    be->bn_backward_stats(be, bstats, dy, x, saved, rows, c);
    comm->allreduce_sum(comm, bstats, 2 * (size_t)c);
    be->bn_backward_apply(be, grad(net, a, n->in0), dy, x, saved, bstats,
                          (double)rows * comm->world, rows, c);
}

void unet_backward(struct backend *be, const struct unet *net, struct unet_acts *a, const float *w,
                   float *dw, const float *dpred, struct comm *comm)
{
    if (!a->grad)
        DDIM_FATAL("unet_backward: activations were created without gradients");
    be->fill(be, a->grad, 0.0f, net->floats_per_example * (size_t)a->batch);
    be->copy(be, grad(net, a, net->output), dpred,
             rows_of(net, a, net->output) * 3 * sizeof(float));
    for (int i = net->num_nodes - 1; i >= 0; i--) {
        const struct node *n = &net->nodes[i];
        const struct tensor_desc *in = n->in0 >= 0 ? &net->tensors[n->in0] : NULL;
        const float *dy = grad(net, a, n->out);
        float *dx0 = grad(net, a, n->in0), *dx1 = grad(net, a, n->in1);
        const float *x0 = n->in0 >= 0 ? value(net, a, n->in0) : NULL;
        size_t numel = rows_of(net, a, n->out) * net->tensors[n->out].c;
        switch (n->kind) {
        case NODE_CONV: {
            struct conv_shape s = conv_shape_of(net, a, n);
            const struct param *pk = &net->params.items[n->kernel];
            const struct param *pb = &net->params.items[n->bias];
            be->conv2d_backward(be, dx0, dw + pk->offset, dw + pb->offset, dy, x0, w + pk->offset,
                                &s);
            break;
        }
        case NODE_BN:
            backward_bn(be, net, a, n, comm);
            break;
        case NODE_SWISH:
            be->swish_backward(be, dx0, dy, x0, numel);
            break;
        case NODE_ADD:
            be->axpy(be, dx0, 1.0f, dy, numel);
            if (dx1)
                be->axpy(be, dx1, 1.0f, dy, numel);
            break;
        case NODE_CONCAT:
            be->concat_backward(be, dx0, dx1, dy, rows_of(net, a, n->out), in->c,
                                net->tensors[n->in1].c);
            break;
        case NODE_POOL:
            be->avgpool2_backward(be, dx0, dy, a->batch, in->h, in->w, in->c);
            break;
        case NODE_UPSAMPLE:
            be->upsample2_backward(be, dx0, dy, a->batch, in->h, in->w, in->c);
            break;
        case NODE_EMBED:
            break; /* the noise variance is an input, not a weight */
        }
    }
}
