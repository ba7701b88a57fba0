/* graph_exec.c: the one executor: runs a node list (graph.h) forward and backward on a
 * backend, whichever builder made it. */
#include "graph.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

size_t graph_acts_size(const struct graph *g, int batch, int with_grads, size_t act_size)
{
    size_t elements = g->floats_per_example * (size_t)batch;
    return (with_grads ? 2 : 1) * elements * act_size + g->bn_floats * sizeof(float);
}

struct graph_acts *graph_acts_create(struct backend *be, const struct graph *g, int batch,
                                     int with_grads)
{
    if (batch < 1)
        DDIM_FATAL("graph_acts_create: batch must be >= 1, got %d", batch);
    if (with_grads && !g->trainable)
        DDIM_FATAL("graph_acts_create: gradients asked of an inference-only network");
    struct graph_acts *a = util_xcalloc(1, sizeof *a);
    a->batch = batch;
    a->act_size = g->precision == PRECISION_BF16 ? be->bf16_size : sizeof(float);
    size_t act_bytes = g->floats_per_example * (size_t)batch * a->act_size;
    a->act = be->alloc(be, act_bytes);
    a->grad = with_grads ? be->alloc(be, act_bytes) : NULL;
    a->bn = be->alloc(be, (g->bn_floats ? g->bn_floats : 1) * sizeof(float));
    a->bytes = graph_acts_size(g, batch, with_grads, a->act_size);
    return a;
}

void graph_acts_destroy(struct backend *be, struct graph_acts *a)
{
    if (!a)
        return;
    be->free(be, a->act);
    if (a->grad)
        be->free(be, a->grad);
    be->free(be, a->bn);
    free(a);
}

/* Tensor t in arena `base` (act or grad): a float * for the op table, whatever its storage */
static float *tensor_at(const struct graph *g, const struct graph_acts *a, void *base, int t)
{
    return (float *)((char *)base + g->tensors[t].offset * (size_t)a->batch * a->act_size);
}

float *graph_value(const struct graph *g, const struct graph_acts *a, int t)
{
    return tensor_at(g, a, a->act, t);
}

static float *grad(const struct graph *g, const struct graph_acts *a, int t)
{
    if (t < 0 || !g->tensors[t].needs_grad)
        return NULL;
    return tensor_at(g, a, a->grad, t);
}

static size_t rows_of(const struct graph *g, const struct graph_acts *a, int t)
{
    return (size_t)a->batch * g->tensors[t].h * g->tensors[t].w;
}

static size_t numel_of(const struct graph *g, const struct graph_acts *a, int t)
{
    return rows_of(g, a, t) * g->tensors[t].c;
}

static struct conv_shape conv_shape_at(const struct graph *g, int batch, const struct node *n)
{
    const struct tensor_desc *x = &g->tensors[n->in0];
    struct conv_shape s = {.n = batch,
                           .h = x->h,
                           .w = x->w,
                           .cin = x->c,
                           .cout = g->tensors[n->out].c,
                           .k = n->kh == n->kw ? n->kh : 0,
                           .kh = n->kh,
                           .kw = n->kw,
                           .stride = n->stride,
                           .valid = n->valid};
    return s;
}

static struct conv_shape conv_shape_of(const struct graph *g, const struct graph_acts *a,
                                       const struct node *n)
{
    return conv_shape_at(g, a->batch, n);
}

static const float *param(const struct graph *g, const float *w, int id)
{
    return w + g->params.items[id].offset;
}

static void forward_bn(struct backend *be, const struct graph *g, struct graph_acts *a, float *w,
                       const struct node *n, int training, struct comm *comm)
{
    const struct param *pm = &g->params.items[n->mean], *pv = &g->params.items[n->var];
    int c = g->tensors[n->in0].c;
    size_t rows = rows_of(g, a, n->in0);
    float *x = graph_value(g, a, n->in0), *y = graph_value(g, a, n->out);
    if (!training) {
        be->bn_forward_infer(be, y, x, w + pm->offset, w + pv->offset, rows, c, g->bn_epsilon);
        return;
    }
    float *saved = a->bn + n->bn_offset, *stats = saved + 2 * c;
    be->bn_stats(be, stats, x, rows, c);
    comm->allreduce_sum(comm, stats, 2 * (size_t)c); /* synchronized BatchNorm */
    be->bn_forward_train(be, y, saved, w + pm->offset, w + pv->offset, x, stats,
                         (double)rows * comm->world, rows, c, g->bn_momentum, g->bn_epsilon);
}

/* The inference-only kinds (InceptionV3's). */
static void forward_infer_node(struct backend *be, const struct graph *g, struct graph_acts *a,
                               const float *w, const struct node *n)
{
    const struct tensor_desc *in = &g->tensors[n->in0], *out = &g->tensors[n->out];
    float *y = graph_value(g, a, n->out);
    const float *x = graph_value(g, a, n->in0);
    switch (n->kind) {
    case NODE_RELU:
        be->relu_forward(be, y, x, numel_of(g, a, n->out));
        break;
    case NODE_POOL2D: {
        struct pool_shape s = {a->batch,  in->h,          in->w,    in->c,
                               n->pool_k, n->pool_stride, n->valid, n->pool_mode};
        be->pool_forward(be, y, x, &s);
        break;
    }
    case NODE_GLOBAL_AVG:
        be->global_avgpool_forward(be, y, x, a->batch, in->h, in->w, in->c);
        break;
    case NODE_RESIZE:
        be->resize_bilinear_forward(be, y, x, a->batch, in->h, in->w, in->c, out->h, out->w);
        break;
    case NODE_NORMALIZE:
        be->normalize(be, y, x, param(g, w, n->mean), param(g, w, n->var), rows_of(g, a, n->in0),
                      in->c);
        break;
    default:
        DDIM_FATAL("graph: node kind %d is not an inference node", (int)n->kind);
    }
}

/* Forward fusion (unless g->unfused): a convolution whose output has one consumer that only
 * reads it to write it back changed, a swish or a residual block's add, runs that node in its
 * epilogue (backend.h's struct conv_epilogue): bias, add and swish in one pass over the
 * tensor, the same bits as apart. An add is taken when its other input is made before the
 * convolution; the convolution then writes the add's output, its own tensor is never
 * written, and in backward it reads the add's output gradient (the add's own backward passes
 * on the other input's only). absorber[i]: the convolution that runs node i, or -1;
 * absorbed[i]: the node convolution i runs, or -1. */
struct fusion {
    int *absorber, *absorbed;
};

static struct fusion fusion_plan(const struct graph *g)
{
    struct fusion f = {util_xmalloc((size_t)g->num_nodes * sizeof(int)),
                       util_xmalloc((size_t)g->num_nodes * sizeof(int))};
    int *uses = util_xcalloc((size_t)g->num_tensors, sizeof(int));
    int *user = util_xmalloc((size_t)g->num_tensors * sizeof(int));
    int *maker = util_xmalloc((size_t)g->num_tensors * sizeof(int));
    for (int t = 0; t < g->num_tensors; t++)
        maker[t] = -1; /* inputs: ready from the start */
    for (int i = 0; i < g->num_nodes; i++) {
        const struct node *n = &g->nodes[i];
        int in[2] = {n->in0, n->in1};
        for (int k = 0; k < 2; k++)
            if (in[k] >= 0)
                uses[in[k]]++, user[in[k]] = i;
        maker[n->out] = i;
        f.absorber[i] = f.absorbed[i] = -1;
    }
    for (int i = 0; i < g->num_nodes && !g->unfused; i++) {
        int t = g->nodes[i].out;
        if (g->nodes[i].kind != NODE_CONV || t == g->output || uses[t] != 1)
            continue;
        const struct node *c = &g->nodes[user[t]];
        int other = c->in0 == t ? c->in1 : c->in0;
        if (c->kind == NODE_SWISH || (c->kind == NODE_ADD && maker[other] < i)) {
            f.absorbed[i] = user[t];
            f.absorber[user[t]] = i;
        }
    }
    free(uses), free(user), free(maker);
    return f;
}

static void fusion_free(struct fusion *f)
{
    free(f->absorber), free(f->absorbed);
}

/* Convolution node n (index i), with the node it absorbs in its epilogue. */
static void forward_conv(struct backend *be, const struct graph *g, struct graph_acts *a,
                         const float *w, const struct node *n, const struct fusion *f, int i)
{
    struct conv_shape s = conv_shape_of(g, a, n);
    float *y = graph_value(g, a, n->out);
    struct conv_epilogue epi = {NULL, NULL};
    if (f->absorbed[i] >= 0) {
        const struct node *c = &g->nodes[f->absorbed[i]];
        if (c->kind == NODE_SWISH) {
            epi.swish = graph_value(g, a, c->out);
        } else {
            y = graph_value(g, a, c->out);
            epi.residual = graph_value(g, a, c->in0 == n->out ? c->in1 : c->in0);
        }
    }
    be->conv2d_forward(be, y, graph_value(g, a, n->in0), param(g, w, n->kernel),
                       param(g, w, n->bias), &s, f->absorbed[i] >= 0 ? &epi : NULL);
}

void graph_forward(struct backend *be, const struct graph *g, struct graph_acts *a, float *w,
                   const float *input, const float *aux, int training, struct comm *comm,
                   float *out)
{
    struct fusion f = fusion_plan(g);
    enum precision outer = be->precision;
    be->precision = g->precision;
    be->to_act(be, graph_value(g, a, g->input), input, numel_of(g, a, g->input));
    for (int i = 0; i < g->num_nodes; i++) {
        const struct node *n = &g->nodes[i];
        const struct tensor_desc *in = n->in0 >= 0 ? &g->tensors[n->in0] : NULL;
        const struct tensor_desc *o = &g->tensors[n->out];
        float *y = graph_value(g, a, n->out);
        const float *x0 = n->in0 >= 0 ? graph_value(g, a, n->in0) : NULL;
        const float *x1 = n->in1 >= 0 ? graph_value(g, a, n->in1) : NULL;
        size_t numel = numel_of(g, a, n->out);
        if (f.absorber[i] >= 0)
            continue; /* ran in its convolution's epilogue */
        switch (n->kind) {
        case NODE_CONV:
            forward_conv(be, g, a, w, n, &f, i);
            break;
        case NODE_BN:
            forward_bn(be, g, a, w, n, training, comm);
            break;
        case NODE_SWISH:
            be->swish_forward(be, y, x0, numel);
            break;
        case NODE_ADD:
            be->add(be, y, x0, x1, numel);
            break;
        case NODE_CONCAT:
            be->concat_forward(be, y, x0, x1, rows_of(g, a, n->out), in->c, g->tensors[n->in1].c);
            break;
        case NODE_POOL:
            be->avgpool2_forward(be, y, x0, a->batch, in->h, in->w, in->c);
            break;
        case NODE_UPSAMPLE:
            be->upsample2_forward(be, y, x0, a->batch, in->h, in->w, in->c);
            break;
        case NODE_EMBED:
            be->sinusoidal_embedding(be, y, aux, a->batch, o->h, o->w, o->c, n->fmin, n->fmax);
            break;
        default:
            forward_infer_node(be, g, a, w, n);
            break;
        }
    }
    be->from_act(be, out, graph_value(g, a, g->output), numel_of(g, a, g->output));
    be->precision = outer;
    fusion_free(&f);
}

static void backward_bn(struct backend *be, const struct graph *g, struct graph_acts *a,
                        const struct node *n, struct comm *comm, enum grad_mode mode)
{
    int c = g->tensors[n->in0].c;
    size_t rows = rows_of(g, a, n->in0);
    float *saved = a->bn + n->bn_offset, *bstats = saved + 4 * c;
    const float *x = graph_value(g, a, n->in0), *dy = grad(g, a, n->out);
    be->bn_backward_stats(be, bstats, dy, x, saved, rows, c);
    comm->allreduce_sum(comm, bstats, 2 * (size_t)c);
    be->bn_backward_apply(be, grad(g, a, n->in0), dy, x, saved, bstats, (double)rows * comm->world,
                          rows, c, mode);
}

/* Whether node n's backward passes a gradient to its input t (in0 or in1). */
static int contributes(const struct graph *g, const struct node *n, int t)
{
    return t >= 0 && g->tensors[t].needs_grad && n->kind != NODE_EMBED;
}

/* The backward pass visits the nodes from the last to the first: the first of them that
 * contributes to a tensor's gradient writes it (=), the later ones add (+=), so the gradient
 * arena needs no zeroing. written[t] records the tensors written so far. */
static enum grad_mode grad_mode_for(char *written, int t)
{
    if (t < 0 || written[t])
        return GRAD_ADD;
    written[t] = 1;
    return GRAD_WRITE;
}

/* Gradients that no node writes although their tensor needs one (a tensor nothing reads, but
 * the output): zeroed, since its producer's backward reads it. None in the U-Net. */
static void zero_unreached(struct backend *be, const struct graph *g, struct graph_acts *a)
{
    char *reached = util_xcalloc((size_t)g->num_tensors, 1);
    for (int i = 0; i < g->num_nodes; i++) {
        const struct node *n = &g->nodes[i];
        if (contributes(g, n, n->in0))
            reached[n->in0] = 1;
        if (contributes(g, n, n->in1))
            reached[n->in1] = 1;
    }
    for (int t = 0; t < g->num_tensors; t++)
        if (g->tensors[t].needs_grad && !reached[t] && t != g->output)
            be->to_act(be, grad(g, a, t), NULL, numel_of(g, a, t));
    free(reached);
}

/* One node's backward: dx of its inputs with the modes m0 (in0) and m1 (in1); dy is the
 * output's gradient (a fused convolution's: its add's), dx0/dx1 NULL where not stored. */
static void backward_node(struct backend *be, const struct graph *g, struct graph_acts *a,
                          const float *w, float *dw, const struct node *n, struct comm *comm,
                          const float *dy, float *dx0, float *dx1, enum grad_mode m0,
                          enum grad_mode m1)
{
    const struct tensor_desc *in = n->in0 >= 0 ? &g->tensors[n->in0] : NULL;
    const float *x0 = n->in0 >= 0 ? graph_value(g, a, n->in0) : NULL;
    size_t numel = numel_of(g, a, n->out);
    switch (n->kind) {
    case NODE_CONV: {
        struct conv_shape s = conv_shape_of(g, a, n);
        const struct param *pk = &g->params.items[n->kernel];
        const struct param *pb = &g->params.items[n->bias];
        be->conv2d_backward(be, dx0, dw + pk->offset, dw + pb->offset, dy, x0, w + pk->offset, &s,
                            m0);
        break;
    }
    case NODE_BN:
        backward_bn(be, g, a, n, comm, m0);
        break;
    case NODE_SWISH:
        be->swish_backward(be, dx0, dy, x0, numel, m0);
        break;
    case NODE_ADD:
        be->add_backward(be, dx0, dx1, dy, numel, m0, m1);
        break;
    case NODE_CONCAT:
        be->concat_backward(be, dx0, dx1, dy, rows_of(g, a, n->out), in->c, g->tensors[n->in1].c,
                            m0, m1);
        break;
    case NODE_POOL:
        be->avgpool2_backward(be, dx0, dy, a->batch, in->h, in->w, in->c, m0);
        break;
    case NODE_UPSAMPLE:
        be->upsample2_backward(be, dx0, dy, a->batch, in->h, in->w, in->c, m0);
        break;
    case NODE_EMBED:
        break; /* the noise variance is an input, not a weight */
    default:
        DDIM_FATAL("graph_backward: node kind %d has no backward", (int)n->kind);
    }
}

/* The listener hears of a convolution's kernel and bias gradients once they are written. */
static void tell_written(const struct graph *g, const struct node *n,
                         const struct grad_listener *listen)
{
    if (!listen || n->kind != NODE_CONV)
        return;
    const struct param *pk = &g->params.items[n->kernel], *pb = &g->params.items[n->bias];
    listen->written(listen->arg, pk->offset, pk->count);
    listen->written(listen->arg, pb->offset, pb->count);
}

void graph_backward(struct backend *be, const struct graph *g, struct graph_acts *a, const float *w,
                    float *dw, const float *dout, struct comm *comm,
                    const struct grad_listener *listen)
{
    if (!a->grad)
        DDIM_FATAL("graph_backward: activations were created without gradients");
    enum precision outer = be->precision;
    be->precision = g->precision;
    zero_unreached(be, g, a);
    be->to_act(be, grad(g, a, g->output), dout, numel_of(g, a, g->output));
    struct fusion f = fusion_plan(g);
    char *written = util_xcalloc((size_t)g->num_tensors, 1);
    written[g->output] = 1;
    for (int i = g->num_nodes - 1; i >= 0; i--) {
        const struct node *n = &g->nodes[i];
        const float *dy = grad(g, a, n->out);
        float *dx[2] = {grad(g, a, n->in0), grad(g, a, n->in1)};
        enum grad_mode m[2] = {GRAD_ADD, GRAD_ADD};
        int in[2] = {n->in0, n->in1};
        if (n->kind == NODE_CONV && f.absorbed[i] >= 0 && g->nodes[f.absorbed[i]].kind == NODE_ADD)
            dy = grad(g, a, g->nodes[f.absorbed[i]].out); /* its output was the add's */
        for (int k = 0; k < 2; k++) {
            int fused_away =
                f.absorber[i] >= 0 && n->kind == NODE_ADD && in[k] == g->nodes[f.absorber[i]].out;
            if (fused_away)
                dx[k] = NULL; /* the convolution reads this add's dy itself */
            else if (contributes(g, n, in[k]))
                m[k] = grad_mode_for(written, in[k]);
        }
        backward_node(be, g, a, w, dw, n, comm, dy, dx[0], dx[1], m[0], m[1]);
        tell_written(g, n, listen);
    }
    be->precision = outer;
    free(written);
    fusion_free(&f);
}

/* --- what a backend must take (graph_check_backend) ------------------------------------ */

/* The ops node n runs forward (fwd) and backward (bwd), as graph_forward and graph_backward
 * call them, with its shape in *s (conv and pool point into the caller's cs and ps). */
static void node_ops(const struct graph *g, int batch, const struct node *n, int training,
                     struct op_shape *s, struct conv_shape *cs, struct pool_shape *ps,
                     enum backend_op_id fwd[2], int *nf, enum backend_op_id bwd[2], int *nb)
{
    const struct tensor_desc *in = n->in0 >= 0 ? &g->tensors[n->in0] : NULL;
    const struct tensor_desc *out = &g->tensors[n->out];
    static const struct {
        enum node_kind kind;
        enum backend_op_id fwd, bwd; /* bwd = fwd: none */
    } simple[] = {
        {NODE_SWISH, BACKEND_OP_swish_forward, BACKEND_OP_swish_backward},
        {NODE_ADD, BACKEND_OP_add, BACKEND_OP_add_backward},
        {NODE_CONCAT, BACKEND_OP_concat_forward, BACKEND_OP_concat_backward},
        {NODE_POOL, BACKEND_OP_avgpool2_forward, BACKEND_OP_avgpool2_backward},
        {NODE_UPSAMPLE, BACKEND_OP_upsample2_forward, BACKEND_OP_upsample2_backward},
        {NODE_EMBED, BACKEND_OP_sinusoidal_embedding, BACKEND_OP_sinusoidal_embedding},
        {NODE_RELU, BACKEND_OP_relu_forward, BACKEND_OP_relu_forward},
        {NODE_POOL2D, BACKEND_OP_pool_forward, BACKEND_OP_pool_forward},
        {NODE_GLOBAL_AVG, BACKEND_OP_global_avgpool_forward, BACKEND_OP_global_avgpool_forward},
        {NODE_RESIZE, BACKEND_OP_resize_bilinear_forward, BACKEND_OP_resize_bilinear_forward},
        {NODE_NORMALIZE, BACKEND_OP_normalize, BACKEND_OP_normalize}};
    memset(s, 0, sizeof *s);
    *nf = *nb = 0;
    if (n->kind == NODE_CONV) {
        *cs = conv_shape_at(g, batch, n);
        s->conv = cs;
        fwd[(*nf)++] = BACKEND_OP_conv2d_forward;
        bwd[(*nb)++] = BACKEND_OP_conv2d_backward;
        return;
    }
    if (n->kind == NODE_BN) {
        s->rows = (size_t)batch * in->h * in->w;
        s->c = in->c;
        if (!training) {
            fwd[(*nf)++] = BACKEND_OP_bn_forward_infer;
            return;
        }
        fwd[(*nf)++] = BACKEND_OP_bn_stats;
        fwd[(*nf)++] = BACKEND_OP_bn_forward_train;
        bwd[(*nb)++] = BACKEND_OP_bn_backward_stats;
        bwd[(*nb)++] = BACKEND_OP_bn_backward_apply;
        return;
    }
    if (n->kind == NODE_POOL2D) {
        *ps = (struct pool_shape){batch,     in->h,          in->w,    in->c,
                                  n->pool_k, n->pool_stride, n->valid, n->pool_mode};
        s->pool = ps;
    }
    if (n->kind == NODE_EMBED)
        s->c = out->c;
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++)
        if (simple[i].kind == n->kind) {
            fwd[(*nf)++] = simple[i].fwd;
            if (simple[i].bwd != simple[i].fwd)
                bwd[(*nb)++] = simple[i].bwd;
        }
}

int graph_check_backend(struct backend *be, const struct graph *g, int batch, int training,
                        char *err, size_t errlen)
{
    for (int i = 0; i < g->num_nodes && g->precision == PRECISION_BF16; i++)
        if (g->nodes[i].kind >= NODE_RELU) /* the inference-only kinds: float32 ops */
            return util_error(err, errlen,
                              "a network with inference-only nodes (node %d) cannot run in "
                              "bf16: its ops take float32 only",
                              i);
    for (int i = 0; i < g->num_nodes; i++) {
        struct op_shape s;
        struct conv_shape cs;
        struct pool_shape ps;
        enum backend_op_id fwd[2], bwd[2];
        int nf, nb;
        node_ops(g, batch, &g->nodes[i], training, &s, &cs, &ps, fwd, &nf, bwd, &nb);
        for (int k = 0; k < nf + (training ? nb : 0); k++)
            if (!backend_supports(be, k < nf ? fwd[k] : bwd[k - nf], &s, err, errlen))
                return -1;
    }
    return 0;
}
