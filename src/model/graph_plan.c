/* graph_plan.c: the memory plan of a node list (graph.h): where each activation and each
 * activation gradient lives in one arena, and which activations the backward pass
 * recomputes instead of keeping them from the forward pass.
 *
 * Time runs through the step: the input copy (0), the forward nodes (1..N), the output copy
 * (N+1), the output gradient's copy (N+2), then one slot per backward action. Each buffer
 * is live over one or two intervals of that time line; two buffers may share memory when
 * none of their intervals meet. Offsets are assigned greedily, largest buffer first, at
 * the lowest address free over its whole life (the usual arena planner; deterministic, so
 * every run and every rank lays out the same arena, 64-byte aligned).
 *
 * What backward reads: a convolution its input (for dw), BatchNorm its input, swish its
 * input; add, concat, pooling and upsampling read only gradients. The gradient of an add's
 * input that feeds nothing else is the add's output gradient itself: it shares its memory
 * and the add's backward has nothing to do for it. An activation that
 * backward reads is kept from the forward pass, unless its node is one whose output is
 * cheaper to compute again than to keep (recomputable below): then the forward pass frees
 * it after its last forward reader, and backward computes it again just before its first
 * backward reader, from inputs that are themselves kept or recomputed first.
 *
 * Forward fusion (plan_fusion): a convolution may run the node after it in its epilogue,
 * earlier than that node's own slot. The plan holds for both ways of running (g->unfused is
 * switched on a live network: ddim-bench --fuse, the tests): an absorbed node's tensors are
 * live at its own slot and at its convolution's. Backward is the same either way: a
 * convolution absorbed into an add has the add's output gradient as its own (above). */
#include "graph.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Outputs not kept for backward: BatchNorm's, one affine pass from its kept input and the
 * saved statistics, read by backward only as the next convolution's input (the seed's
 * network at batch 64: 360 MiB less at the peak for ~70 ms of a 4.3 s step on one core).
 * Kept: concat's (computing them again saved only 20 MiB at the peak, the up path's being
 * live there anyway, for ~60 ms), swish's (an exponential per element), upsampling's. */
static int recomputable(enum node_kind kind)
{
    return kind == NODE_BN;
}

/* Forward fusion: a convolution whose output has one consumer that only reads it to write it
 * back changed, a swish or a residual block's add, runs that node in its epilogue
 * (backend.h's struct conv_epilogue): bias, add and swish in one pass over the tensor, the
 * same bits as apart. An add is taken when its other input is made before the convolution;
 * the convolution then writes the add's output (its own tensor is not written), and in
 * backward it reads the add's output gradient, which is its own (share_add_grads). */
static void plan_fusion(const struct graph *g, int *absorber, int *absorbed)
{
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
        absorber[i] = absorbed[i] = -1;
    }
    for (int i = 0; i < g->num_nodes; i++) {
        int t = g->nodes[i].out;
        if (g->nodes[i].kind != NODE_CONV || t == g->output || uses[t] != 1)
            continue;
        const struct node *c = &g->nodes[user[t]];
        int other = c->in0 == t ? c->in1 : c->in0;
        if (c->kind == NODE_SWISH || (c->kind == NODE_ADD && maker[other] < i)) {
            absorbed[i] = user[t];
            absorber[user[t]] = i;
        }
    }
    free(uses), free(user), free(maker);
}

/* The activation node n's backward reads (-1: none). */
static int backward_reads(const struct node *n)
{
    return n->kind == NODE_CONV || n->kind == NODE_BN || n->kind == NODE_SWISH ? n->in0 : -1;
}

struct buffer {
    size_t floats;
    int lo[2], hi[2], n; /* live intervals [lo, hi] */
    size_t off;
};

struct planner {
    const struct graph *g;
    enum graph_plan_kind kind;
    int *producer;           /* per tensor: its node, or -1 */
    int *absorber;           /* per node: the convolution that may run it (plan_fusion) */
    int *grad_of;            /* per tensor: whose gradient buffer it uses (itself, or an add's
                              * output, see share_add_grads) */
    unsigned char *redone;   /* per node: its output is recomputed in backward */
    struct buffer *val, *gr; /* per tensor: its value and its gradient */
    struct graph_step *steps;
    int num_steps;
};

static void live_at(struct buffer *b, int interval, int t)
{
    if (b->n <= interval) {
        b->n = interval + 1;
        b->lo[interval] = b->hi[interval] = t;
    }
    if (t < b->lo[interval])
        b->lo[interval] = t;
    if (t > b->hi[interval])
        b->hi[interval] = t;
}

/* The tensor whose gradient buffer t's gradient uses. */
static int grad_root(const struct planner *p, int t)
{
    while (p->grad_of[t] != t)
        t = p->grad_of[t];
    return t;
}

/* An add's input that feeds nothing else gets the add's output gradient as its own. */
static void share_add_grads(struct planner *p)
{
    const struct graph *g = p->g;
    int *readers = util_xcalloc((size_t)g->num_tensors, sizeof *readers);
    for (int i = 0; i < g->num_nodes; i++) {
        if (g->nodes[i].in0 >= 0)
            readers[g->nodes[i].in0]++;
        if (g->nodes[i].in1 >= 0)
            readers[g->nodes[i].in1]++;
    }
    for (int i = 0; i < g->num_nodes && p->kind == GRAPH_PLAN_TRAIN; i++) {
        const struct node *n = &g->nodes[i];
        if (n->kind != NODE_ADD || n->in0 == n->in1)
            continue;
        int ins[2] = {n->in0, n->in1};
        for (int k = 0; k < 2; k++)
            if (g->tensors[ins[k]].needs_grad && readers[ins[k]] == 1)
                p->grad_of[ins[k]] = n->out;
    }
    free(readers);
}

/* A read of tensor t's value at time `when` during backward. */
static void read_value(struct planner *p, int t, int when)
{
    int prod = p->producer[t];
    live_at(&p->val[t], prod >= 0 && p->redone[prod] ? 1 : 0, when);
}

/* Appends the recomputation of tensor t's node (and first of its inputs') if backward
 * recomputes it and has not yet. */
static void ensure_value(struct planner *p, int t)
{
    int prod = p->producer[t];
    if (prod < 0 || p->kind == GRAPH_PLAN_KEEP_ALL || !recomputable(p->g->nodes[prod].kind) ||
        p->redone[prod])
        return;
    const struct node *n = &p->g->nodes[prod];
    ensure_value(p, n->in0);
    if (n->in1 >= 0)
        ensure_value(p, n->in1);
    p->redone[prod] = 1;
    p->steps[p->num_steps++] = (struct graph_step){GRAPH_STEP_RECOMPUTE, prod};
}

/* The forward pass: every value live from its node to its last forward reader; a node a
 * convolution may run in its epilogue at its own slot and at the convolution's. */
static void plan_forward(struct planner *p)
{
    const struct graph *g = p->g;
    live_at(&p->val[g->input], 0, 0);
    for (int i = 0; i < g->num_nodes; i++) {
        const struct node *n = &g->nodes[i];
        for (int k = 0; k < (p->absorber[i] >= 0 ? 2 : 1); k++) {
            int when = 1 + (k ? p->absorber[i] : i);
            live_at(&p->val[n->out], 0, when);
            if (n->in0 >= 0)
                live_at(&p->val[n->in0], 0, when);
            if (n->in1 >= 0)
                live_at(&p->val[n->in1], 0, when);
        }
    }
    live_at(&p->val[g->output], 0, g->num_nodes + 1);
}

/* The backward pass: the order of recomputations and node backwards, and what each reads
 * and writes. */
static void plan_backward(struct planner *p)
{
    const struct graph *g = p->g;
    int base = g->num_nodes + 3;
    live_at(&p->gr[grad_root(p, g->output)], 0, g->num_nodes + 2);
    for (int i = g->num_nodes - 1; i >= 0; i--) {
        int first = p->num_steps;
        int reads = backward_reads(&g->nodes[i]);
        if (reads >= 0)
            ensure_value(p, reads);
        p->steps[p->num_steps++] = (struct graph_step){GRAPH_STEP_BACKWARD, i};
        for (int s = first; s < p->num_steps; s++) {
            const struct node *n = &g->nodes[p->steps[s].node];
            int when = base + s;
            if (p->steps[s].kind == GRAPH_STEP_RECOMPUTE) {
                live_at(&p->val[n->out], 1, when);
                read_value(p, n->in0, when);
                if (n->in1 >= 0)
                    read_value(p, n->in1, when);
                continue;
            }
            if (reads >= 0)
                read_value(p, reads, when);
            live_at(&p->gr[grad_root(p, n->out)], 0, when);
            int ins[2] = {n->in0, n->in1};
            for (int k = 0; k < 2; k++)
                if (ins[k] >= 0 && g->tensors[ins[k]].needs_grad)
                    live_at(&p->gr[grad_root(p, ins[k])], 0, when);
        }
    }
}

static int intervals_meet(const struct buffer *a, const struct buffer *b)
{
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < b->n; j++)
            if (a->lo[i] <= b->hi[j] && b->lo[j] <= a->hi[i])
                return 1;
    return 0;
}

static int by_size_desc(const void *pa, const void *pb)
{
    const struct buffer *a = *(struct buffer *const *)pa, *b = *(struct buffer *const *)pb;
    if (a->floats != b->floats)
        return a->floats > b->floats ? -1 : 1;
    return a < b ? -1 : a > b; /* by position: the same order every run */
}

static int by_offset(const void *pa, const void *pb)
{
    const struct buffer *a = *(struct buffer *const *)pa, *b = *(struct buffer *const *)pb;
    return a->off < b->off ? -1 : a->off > b->off;
}

/* Offsets for the live buffers among bufs[0..n); returns the arena's size in floats. */
static size_t assign_offsets(struct buffer *bufs, int n)
{
    struct buffer **order = util_xmalloc((size_t)n * sizeof *order);
    struct buffer **placed = util_xmalloc((size_t)n * sizeof *placed);
    struct buffer **near = util_xmalloc((size_t)n * sizeof *near);
    int num_order = 0, num_placed = 0;
    for (int i = 0; i < n; i++)
        if (bufs[i].n > 0 && bufs[i].floats > 0)
            order[num_order++] = &bufs[i];
    qsort(order, (size_t)num_order, sizeof *order, by_size_desc);
    size_t total = 0;
    for (int i = 0; i < num_order; i++) {
        struct buffer *b = order[i];
        int num_near = 0;
        for (int j = 0; j < num_placed; j++)
            if (intervals_meet(b, placed[j]))
                near[num_near++] = placed[j];
        qsort(near, (size_t)num_near, sizeof *near, by_offset);
        size_t off = 0;
        for (int j = 0; j < num_near && near[j]->off < off + b->floats; j++)
            if (near[j]->off + near[j]->floats > off)
                off = near[j]->off + near[j]->floats;
        b->off = off;
        placed[num_placed++] = b;
        if (off + b->floats > total)
            total = off + b->floats;
    }
    free(order);
    free(placed);
    free(near);
    return total;
}

/* Keep-all: every live buffer alive over the whole step, so none shares memory. */
static void keep_all(struct buffer *bufs, int n, int end)
{
    for (int i = 0; i < n; i++)
        if (bufs[i].n > 0) {
            bufs[i].n = 1;
            bufs[i].lo[0] = 0;
            bufs[i].hi[0] = end;
        }
}

struct graph_plan *graph_plan_create(const struct graph *g, int batch, enum graph_plan_kind kind)
{
    int nt = g->num_tensors, with_grads = kind != GRAPH_PLAN_INFER;
    struct planner p = {.g = g, .kind = kind};
    struct graph_plan *plan = util_xcalloc(1, sizeof *plan);
    plan->absorber = util_xmalloc(2 * ((size_t)g->num_nodes + 1) * sizeof *plan->absorber);
    plan->absorbed = plan->absorber + g->num_nodes + 1;
    plan_fusion(g, plan->absorber, plan->absorbed);
    p.absorber = plan->absorber;
    p.producer = util_xmalloc((size_t)nt * sizeof *p.producer);
    p.grad_of = util_xmalloc((size_t)nt * sizeof *p.grad_of);
    p.redone = util_xcalloc((size_t)g->num_nodes + 1, 1);
    p.val = util_xcalloc(2 * (size_t)nt, sizeof *p.val);
    p.gr = p.val + nt;
    p.steps = util_xcalloc(2 * (size_t)g->num_nodes + 1, sizeof *p.steps);
    for (int t = 0; t < nt; t++) {
        p.producer[t] = -1;
        p.grad_of[t] = t;
    }
    for (int i = 0; i < g->num_nodes; i++)
        p.producer[g->nodes[i].out] = i;
    for (int t = 0; t < nt; t++) {
        const struct tensor_desc *d = &g->tensors[t];
        size_t floats = ((size_t)batch * d->h * d->w * d->c + 15) / 16 * 16; /* 64 bytes */
        p.val[t].floats = floats;
        p.gr[t].floats = with_grads && d->needs_grad ? floats : 0;
    }
    plan_forward(&p);
    if (with_grads) {
        share_add_grads(&p);
        plan_backward(&p);
    }
    if (kind == GRAPH_PLAN_KEEP_ALL)
        keep_all(p.val, 2 * nt, g->num_nodes + 3 + p.num_steps);

    plan->floats = assign_offsets(p.val, 2 * nt);
    plan->value = util_xmalloc(2 * (size_t)nt * sizeof *plan->value);
    plan->grad = plan->value + nt;
    for (int t = 0; t < 2 * nt; t++)
        plan->value[t] = p.val[t].n > 0 && p.val[t].floats > 0 ? p.val[t].off : SIZE_MAX;
    plan->grad_root = util_xmalloc((size_t)nt * sizeof *plan->grad_root);
    for (int t = 0; t < nt; t++) {
        plan->grad_root[t] = grad_root(&p, t);
        plan->grad[t] = plan->grad[plan->grad_root[t]];
    }
    plan->steps = p.steps;
    plan->num_steps = p.num_steps;
    plan->kind = kind;
    plan->batch = batch;
    free(p.producer);
    free(p.grad_of);
    free(p.redone);
    free(p.val);
    return plan;
}

void graph_plan_free(struct graph_plan *plan)
{
    if (!plan)
        return;
    free(plan->value);
    free(plan->grad_root);
    free(plan->absorber);
    free(plan->steps);
    free(plan);
}
