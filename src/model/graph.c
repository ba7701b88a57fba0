/* graph.c: building a node list (graph.h): tensors, nodes and their parameters. */
#include "graph.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int graph_tensor(struct graph *g, int h, int w, int c, int needs_grad)
{
    if (g->num_tensors == g->cap_tensors) {
        g->cap_tensors = g->cap_tensors ? 2 * g->cap_tensors : 128;
        g->tensors = realloc(g->tensors, (size_t)g->cap_tensors * sizeof *g->tensors);
        if (!g->tensors)
            DDIM_FATAL("out of host memory building a network");
    }
    struct tensor_desc *t = &g->tensors[g->num_tensors];
    t->h = h;
    t->w = w;
    t->c = c;
    t->needs_grad = needs_grad;
    return g->num_tensors++;
}

/* A zeroed node; its index (nodes may move when the array grows). */
static int new_node(struct graph *g, enum node_kind kind, int in0, int in1)
{
    if (g->num_nodes == g->cap_nodes) {
        g->cap_nodes = g->cap_nodes ? 2 * g->cap_nodes : 128;
        g->nodes = realloc(g->nodes, (size_t)g->cap_nodes * sizeof *g->nodes);
        if (!g->nodes)
            DDIM_FATAL("out of host memory building a network");
    }
    struct node *n = &g->nodes[g->num_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->in0 = in0;
    n->in1 = in1;
    return g->num_nodes++;
}

int graph_add_simple(struct graph *g, enum node_kind kind, int in0, int in1, int h, int w, int c)
{
    int idx = new_node(g, kind, in0, in1);
    int out = graph_tensor(g, h, w, c, g->trainable && kind != NODE_EMBED);
    g->nodes[idx].out = out;
    return out;
}

int graph_add_conv(struct graph *g, const char *name, int in, int cout, int kh, int kw, int stride,
                   int valid)
{
    const struct tensor_desc *x = &g->tensors[in];
    int kshape[4] = {kh, kw, x->c, cout}, bshape[1] = {cout};
    struct conv_shape s = {.n = 1,
                           .h = x->h,
                           .w = x->w,
                           .cin = x->c,
                           .cout = cout,
                           .kh = kh,
                           .kw = kw,
                           .stride = stride,
                           .valid = valid};
    int h = conv_out_h(&s), w = conv_out_w(&s);
    int idx = new_node(g, NODE_CONV, in, -1);
    struct node *n = &g->nodes[idx];
    n->kh = kh;
    n->kw = kw;
    n->stride = stride;
    n->valid = valid;
    n->kernel = params_add(&g->params, name, PARAM_KERNEL, 4, kshape);
    n->bias = params_add(&g->params, name, PARAM_BIAS, 1, bshape);
    n->out = graph_tensor(g, h, w, cout, g->trainable);
    return n->out;
}

int graph_add_bn(struct graph *g, const char *name, int in)
{
    const struct tensor_desc *x = &g->tensors[in];
    int shape[1] = {x->c};
    int c = x->c, h = x->h, w = x->w;
    int idx = new_node(g, NODE_BN, in, -1);
    struct node *n = &g->nodes[idx];
    n->mean = params_add(&g->params, name, PARAM_MOVING_MEAN, 1, shape);
    n->var = params_add(&g->params, name, PARAM_MOVING_VARIANCE, 1, shape);
    n->bn_offset = g->bn_floats;
    g->bn_floats += 6 * (size_t)c;
    int out = graph_tensor(g, h, w, c, g->trainable);
    g->nodes[idx].out = out;
    return out;
}

int graph_add_concat(struct graph *g, int a, int b)
{
    const struct tensor_desc *ta = &g->tensors[a], *tb = &g->tensors[b];
    return graph_add_simple(g, NODE_CONCAT, a, b, ta->h, ta->w, ta->c + tb->c);
}

int graph_add_pool2d(struct graph *g, int in, int k, int stride, int valid, enum pool_mode mode)
{
    const struct tensor_desc *x = &g->tensors[in];
    int h = conv_out_size(x->h, k, stride, valid), w = conv_out_size(x->w, k, stride, valid);
    int c = x->c;
    int out = graph_add_simple(g, NODE_POOL2D, in, -1, h, w, c);
    struct node *n = &g->nodes[g->num_nodes - 1];
    n->pool_k = k;
    n->pool_stride = stride;
    n->valid = valid;
    n->pool_mode = mode;
    return out;
}

void graph_free(struct graph *g)
{
    params_free(&g->params);
    free(g->tensors);
    free(g->nodes);
    memset(g, 0, sizeof *g);
}

double graph_conv_flops(const struct graph *g, int batch)
{
    double flops = 0;
    for (int i = 0; i < g->num_nodes; i++) {
        const struct node *n = &g->nodes[i];
        if (n->kind != NODE_CONV)
            continue;
        const struct tensor_desc *in = &g->tensors[n->in0], *out = &g->tensors[n->out];
        flops += 2.0 * batch * out->h * out->w * (double)n->kh * n->kw * in->c * out->c;
    }
    return flops;
}
