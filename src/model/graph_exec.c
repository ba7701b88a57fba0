/* graph_exec.c: the one executor: runs a node list (graph.h) forward and backward on a
 * backend, whichever builder made it. */
#include "graph.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct graph_acts *graph_acts_create(struct backend *be, const struct graph *g, int batch,
                                     enum graph_plan_kind kind)
{
    if (batch < 1)
        DDIM_FATAL("graph_acts_create: batch must be >= 1, got %d", batch);
    if (kind != GRAPH_PLAN_INFER && !g->trainable)
        DDIM_FATAL("graph_acts_create: gradients asked of an inference-only network");
    struct graph_acts *a = util_xcalloc(1, sizeof *a);
    a->batch = batch;
    a->plan = graph_plan_create(g, batch, kind);
    a->act_size = g->precision == PRECISION_BF16 ? be->bf16_size : sizeof(float);
    a->arena = be->alloc(be, (a->plan->floats ? a->plan->floats : 1) * a->act_size);
    a->bn = be->alloc(be, (g->bn_floats ? g->bn_floats : 1) * sizeof(float));
    a->grad_written = util_xcalloc((size_t)g->num_tensors, 1);
    a->bytes = graph_acts_size(g, a->plan, a->act_size);
    return a;
}

size_t graph_acts_size(const struct graph *g, const struct graph_plan *plan, size_t act_size)
{
    return plan->floats * act_size + g->bn_floats * sizeof(float);
}

void graph_acts_destroy(struct backend *be, struct graph_acts *a)
{
    if (!a)
        return;
    be->free(be, a->arena);
    be->free(be, a->bn);
    graph_plan_free(a->plan);
    free(a->grad_written);
    free(a);
}

/* The element at `offset` of the arena: a float * for the op table, whatever its storage */
static float *arena_at(const struct graph_acts *a, size_t offset)
{
    return (float *)((char *)a->arena + offset * a->act_size);
}

float *graph_value(const struct graph *g, const struct graph_acts *a, int t)
{
    return arena_at(a, a->plan->value[t]);
}

static float *grad(const struct graph *g, const struct graph_acts *a, int t)
{
    if (t < 0 || !g->tensors[t].needs_grad)
        return NULL;
    return arena_at(a, a->plan->grad[t]);
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

/* Convolution node n (index i), with the node it runs in its epilogue when fusion is on
 * (graph_plan.c's plan_fusion): an absorbed add's output is written in place of y. */
static void forward_conv(struct backend *be, const struct graph *g, struct graph_acts *a,
                         const float *w, const struct node *n, int i)
{
    struct conv_shape s = conv_shape_of(g, a, n);
    float *y = graph_value(g, a, n->out);
    struct conv_epilogue epi = {NULL, NULL};
    int fused = !g->unfused && a->plan->absorbed[i] >= 0;
    if (fused) {
        const struct node *c = &g->nodes[a->plan->absorbed[i]];
        if (c->kind == NODE_SWISH) {
            epi.swish = graph_value(g, a, c->out);
        } else {
            y = graph_value(g, a, c->out);
            epi.residual = graph_value(g, a, c->in0 == n->out ? c->in1 : c->in0);
        }
    }
    be->conv2d_forward(be, y, graph_value(g, a, n->in0), param(g, w, n->kernel),
                       param(g, w, n->bias), &s, fused ? &epi : NULL);
}

/* Node n's forward (index i; the trainable kinds here, the others in forward_infer_node). */
static void forward_node(struct backend *be, const struct graph *g, struct graph_acts *a, float *w,
                         const struct node *n, int i, const float *aux, int training,
                         struct comm *comm)
{
    const struct tensor_desc *in = n->in0 >= 0 ? &g->tensors[n->in0] : NULL;
    const struct tensor_desc *o = &g->tensors[n->out];
    float *y = graph_value(g, a, n->out);
    const float *x0 = n->in0 >= 0 ? graph_value(g, a, n->in0) : NULL;
    const float *x1 = n->in1 >= 0 ? graph_value(g, a, n->in1) : NULL;
    size_t numel = numel_of(g, a, n->out);
    switch (n->kind) {
    case NODE_CONV:
        forward_conv(be, g, a, w, n, i);
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

void graph_forward(struct backend *be, const struct graph *g, struct graph_acts *a, float *w,
                   const float *input, const float *aux, int training, struct comm *comm,
                   float *out)
{
    enum precision outer = be->precision;
    be->precision = g->precision;
    be->to_act(be, graph_value(g, a, g->input), input, numel_of(g, a, g->input));
    for (int i = 0; i < g->num_nodes; i++)
        if (g->unfused || a->plan->absorber[i] < 0) /* else it ran in a convolution's epilogue */
            forward_node(be, g, a, w, &g->nodes[i], i, aux, training, comm);
    be->from_act(be, out, graph_value(g, a, g->output), numel_of(g, a, g->output));
    be->precision = outer;
}

/* A node's output again, during backward (graph_plan.c says which): the same op on the same
 * inputs, so the same bits. BatchNorm normalizes with the statistics its training forward
 * summed over the ranks (kept in the bn arena); the moving statistics must not move twice,
 * so their update goes to the node's bstats slot, unused until its own backward. */
static void recompute_node(struct backend *be, const struct graph *g, struct graph_acts *a,
                           const struct node *n, struct comm *comm)
{
    if (n->kind != NODE_BN)
        DDIM_FATAL("graph_backward: node kind %d is not one the plan recomputes", (int)n->kind);
    int c = g->tensors[n->in0].c;
    size_t rows = rows_of(g, a, n->in0);
    float *saved = a->bn + n->bn_offset, *stats = saved + 2 * c, *scratch = saved + 4 * c;
    be->bn_forward_train(be, graph_value(g, a, n->out), saved, scratch, scratch + c,
                         graph_value(g, a, n->in0), stats, (double)rows * comm->world, rows, c,
                         g->bn_momentum, g->bn_epsilon);
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
 * contributes to a gradient buffer writes it (=), the later ones add (+=), so no gradient
 * buffer needs zeroing, although buffers share memory (graph_plan.c). written[] records,
 * per buffer (its grad_root), those written so far. */
static enum grad_mode grad_mode_for(unsigned char *written, int root)
{
    if (written[root])
        return GRAD_ADD;
    written[root] = 1;
    return GRAD_WRITE;
}

/* One node's backward: dx of its inputs with the modes m0 (in0) and m1 (in1); dy is the
 * output's gradient, dx0/dx1 NULL where not stored. */
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

/* Node n's backward in the plan's order: the modes of its inputs' gradients, none passed to
 * an input whose gradient is n's own (an add's, graph_plan.c). A gradient no node wrote
 * although its node reads it (a tensor nothing reads but the output; none in the U-Net) is
 * zeroed first. */
static void backward_step(struct backend *be, const struct graph *g, struct graph_acts *a,
                          const float *w, float *dw, const struct node *n, struct comm *comm)
{
    const int *root = a->plan->grad_root;
    if (g->tensors[n->out].needs_grad && !a->grad_written[root[n->out]]) {
        be->to_act(be, grad(g, a, n->out), NULL, numel_of(g, a, n->out)); /* zeros */
        a->grad_written[root[n->out]] = 1;
    }
    int in[2] = {n->in0, n->in1};
    float *dx[2] = {NULL, NULL};
    enum grad_mode m[2] = {GRAD_ADD, GRAD_ADD};
    for (int k = 0; k < 2; k++)
        if (contributes(g, n, in[k]) && root[in[k]] != root[n->out]) {
            dx[k] = grad(g, a, in[k]);
            m[k] = grad_mode_for(a->grad_written, root[in[k]]);
        }
    backward_node(be, g, a, w, dw, n, comm, grad(g, a, n->out), dx[0], dx[1], m[0], m[1]);
}

void graph_backward(struct backend *be, const struct graph *g, struct graph_acts *a, const float *w,
                    float *dw, const float *dout, struct comm *comm,
                    const struct grad_listener *listen)
{
    if (a->plan->kind == GRAPH_PLAN_INFER)
        DDIM_FATAL("graph_backward: activations were created without gradients");
    enum precision outer = be->precision;
    be->precision = g->precision;
    memset(a->grad_written, 0, (size_t)g->num_tensors);
    be->to_act(be, grad(g, a, g->output), dout, numel_of(g, a, g->output));
    a->grad_written[a->plan->grad_root[g->output]] = 1;
    for (int s = 0; s < a->plan->num_steps; s++) {
        const struct graph_step *st = &a->plan->steps[s];
        const struct node *n = &g->nodes[st->node];
        if (st->kind == GRAPH_STEP_RECOMPUTE) {
            recompute_node(be, g, a, n, comm);
            continue;
        }
        backward_step(be, g, a, w, dw, n, comm);
        tell_written(g, n, listen);
    }
    be->precision = outer;
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
