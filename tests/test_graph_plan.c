/* test_graph_plan.c: the executor's memory plan (src/model/graph_plan.c).
 *
 * 1. Every plan is checked by simulation, independently of the planner's interval logic:
 *    the executor's reads and writes are replayed in its order over a map of the arena
 *    (64-byte blocks) that records which write each block holds, and every read must find
 *    its blocks holding the tensor's own last write (nothing in between overwrote them);
 *    every buffer must lie inside the arena. An add's input whose gradient the plan puts
 *    on the add's output gradient (the same offset) takes that write over as its own. Each
 *    plan is replayed with the nodes apart and with the executor's fusions. The U-Net
 * (training and inference plans, the seed's network and a small one) and InceptionV3 (inference)
 * are checked.
 * 2. A small U-Net trained two steps with the plan and with GRAPH_PLAN_KEEP_ALL (every
 *    buffer its own memory, nothing recomputed) gives the same outputs, weight gradients
 *    and BN moving statistics exactly: recomputing changes nothing.
 * 3. The seed's network at batch 64 (widths 32..128, depth 2) plans at most 30% of the
 *    keep-all arena (3874 MiB): the figure issue 19 brought below Keras's peak memory. */
#include "comm.h"
#include "config.h"
#include "inception.h"
#include "test_util.h"
#include "unet.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct backend *be;
static struct comm *comm;

/* --- 1. the simulation ------------------------------------------------------------------ */

struct sim {
    const struct graph *g;
    const struct graph_plan *p;
    int *block;  /* per 16-float block: the write that it holds (a counter), 0: none */
    int *expect; /* per buffer (tensor t: value t, gradient num_tensors + t): its last write */
    int writes;
    const char *label;
    char when[64];
};

static void sim_range(const struct sim *s, int buf, size_t *lo, size_t *hi)
{
    int nt = s->g->num_tensors;
    const struct tensor_desc *d = &s->g->tensors[buf % nt];
    size_t off = buf < nt ? s->p->value[buf] : s->p->grad[buf - nt];
    if (off == SIZE_MAX)
        test_fail("%s: %s: tensor %d's %s has no place in the arena", s->label, s->when, buf % nt,
                  buf < nt ? "value" : "gradient");
    size_t floats = (size_t)d->h * d->w * d->c; /* per example: scaled below */
    *lo = off / 16;
    *hi = (off + floats * (size_t)s->p->batch + 15) / 16;
    if (off % 16 || (size_t)*hi * 16 > s->p->floats + 15)
        test_fail("%s: tensor %d at %zu is misaligned or outside the arena", s->label, buf % nt,
                  off);
}

static void sim_write(struct sim *s, int buf)
{
    size_t lo, hi;
    sim_range(s, buf, &lo, &hi);
    s->expect[buf] = ++s->writes;
    for (size_t b = lo; b < hi; b++)
        s->block[b] = s->writes;
}

static void sim_read(struct sim *s, int buf)
{
    size_t lo, hi;
    sim_range(s, buf, &lo, &hi);
    for (size_t b = lo; b < hi; b++)
        if (s->block[b] != s->expect[buf] || !s->expect[buf]) {
            int nt = s->g->num_tensors;
            test_fail("%s: %s reads tensor %d's %s, %s", s->label, s->when, buf % nt,
                      buf < nt ? "value" : "gradient",
                      s->expect[buf] ? "overwritten since" : "never written");
            return;
        }
}

/* An add hands its output gradient over to an input whose gradient the plan puts on it. */
static int sim_take_over(struct sim *s, int out, int in)
{
    int nt = s->g->num_tensors;
    if (s->p->grad[in] != s->p->grad[out])
        return 0;
    sim_read(s, nt + out);
    s->expect[nt + in] = s->expect[nt + out];
    return 1;
}

/* What a node's backward reads of the activations (the executor's ops' contracts). */
static int sim_backward_reads(const struct node *n)
{
    return n->kind == NODE_CONV || n->kind == NODE_BN || n->kind == NODE_SWISH ? n->in0 : -1;
}

static void sim_backward_node(struct sim *s, const struct node *n, unsigned char *touched)
{
    int nt = s->g->num_tensors, ins[2] = {n->in0, n->in1};
    if (!s->g->tensors[n->out].needs_grad)
        return; /* the embedding: no backward */
    if (sim_backward_reads(n) >= 0)
        sim_read(s, sim_backward_reads(n));
    if (!touched[n->out]) /* never written by a consumer: zeroed first */
        sim_write(s, nt + n->out);
    touched[n->out] = 1;
    sim_read(s, nt + n->out);
    for (int k = 0; k < 2; k++) {
        int t = ins[k];
        if (t < 0 || !s->g->tensors[t].needs_grad)
            continue;
        if (n->kind == NODE_ADD && !touched[t] && sim_take_over(s, n->out, t)) {
            touched[t] = 1;
            continue;
        }
        if (touched[t])
            sim_read(s, nt + t); /* accumulated into */
        sim_write(s, nt + t);
        touched[t] = 1;
    }
}

/* The forward pass as the executor runs it: fused, a convolution also runs the node the
 * plan lets it absorb (a swish: y written, then the swish's output; an add: the residual
 * read, the add's output written in y's place), and that node is skipped at its own place. */
static void sim_forward(struct sim *s, int fused)
{
    const struct graph *g = s->g;
    for (int i = 0; i < g->num_nodes; i++) {
        const struct node *n = &g->nodes[i];
        if (fused && s->p->absorber[i] >= 0)
            continue;
        int a = fused ? s->p->absorbed[i] : -1;
        snprintf(s->when, sizeof s->when, "forward node %d%s", i, a >= 0 ? " (fused)" : "");
        if (n->in0 >= 0)
            sim_read(s, n->in0);
        if (n->in1 >= 0)
            sim_read(s, n->in1);
        if (a < 0 || g->nodes[a].kind == NODE_SWISH)
            sim_write(s, n->out);
        if (a >= 0) {
            const struct node *c = &g->nodes[a];
            sim_read(s, c->kind == NODE_SWISH ? n->out : c->in0 == n->out ? c->in1 : c->in0);
            sim_write(s, c->out);
        }
    }
}

static void simulate_run(const struct graph *g, const struct graph_plan *p, const char *label,
                         int fused)
{
    struct sim s = {.g = g, .p = p, .label = label};
    s.block = calloc(p->floats / 16 + 2, sizeof *s.block);
    s.expect = calloc(2 * (size_t)g->num_tensors, sizeof *s.expect);
    snprintf(s.when, sizeof s.when, "the input copy");
    sim_write(&s, g->input);
    sim_forward(&s, fused);
    snprintf(s.when, sizeof s.when, "the output copy");
    sim_read(&s, g->output);
    if (p->kind != GRAPH_PLAN_INFER) {
        unsigned char *touched = calloc((size_t)g->num_tensors, 1);
        sim_write(&s, g->num_tensors + g->output);
        touched[g->output] = 1;
        for (int k = 0; k < p->num_steps; k++) {
            const struct node *n = &g->nodes[p->steps[k].node];
            snprintf(s.when, sizeof s.when, "backward step %d (node %d, %s)", k, p->steps[k].node,
                     p->steps[k].kind == GRAPH_STEP_RECOMPUTE ? "recompute" : "backward");
            if (p->steps[k].kind == GRAPH_STEP_RECOMPUTE) {
                sim_read(&s, n->in0);
                if (n->in1 >= 0)
                    sim_read(&s, n->in1);
                sim_write(&s, n->out);
            } else {
                sim_backward_node(&s, n, touched);
            }
        }
        free(touched);
    }
    free(s.block);
    free(s.expect);
}

/* The plan simulated with the nodes apart and fused (g->unfused switches on a live network). */
static void simulate(const struct graph *g, const struct graph_plan *p, const char *label)
{
    int fusions = 0;
    for (int i = 0; i < g->num_nodes; i++)
        fusions += p->absorbed[i] >= 0;
    simulate_run(g, p, label, 0);
    simulate_run(g, p, label, 1);
    printf("ok   %-44s arena %8.1f MiB, %d backward steps, %d fusions\n", label,
           p->floats * 4.0 / (1 << 20), p->num_steps, fusions);
}

static struct unet *make_unet(int size, const int *widths, int levels, int depth, int emb)
{
    struct unet_config u = config_default_model();
    u.image_size = size;
    u.num_levels = levels;
    for (int i = 0; i < levels; i++)
        u.widths[i] = widths[i];
    u.block_depth = depth;
    u.embedding_dims = emb;
    char err[256];
    struct unet *net = unet_create(&u, err, sizeof err);
    if (!net)
        test_fail("unet_create: %s", err);
    return net;
}

static void check_simulations(void)
{
    static const int seed_widths[] = {32, 64, 96, 128}, small_widths[] = {8, 12, 16};
    struct unet *seed = make_unet(64, seed_widths, 4, 2, 32);
    struct unet *small = make_unet(16, small_widths, 3, 2, 8);
    enum graph_plan_kind kinds[] = {GRAPH_PLAN_TRAIN, GRAPH_PLAN_INFER, GRAPH_PLAN_KEEP_ALL};
    const char *names[] = {"train", "infer", "keep-all"};
    char label[96];
    for (int k = 0; k < 3; k++) {
        struct graph_plan *p = graph_plan_create(unet_graph(seed), 2, kinds[k]);
        snprintf(label, sizeof label, "seed U-Net, batch 2, %s plan", names[k]);
        simulate(unet_graph(seed), p, label);
        graph_plan_free(p);
        p = graph_plan_create(unet_graph(small), 3, kinds[k]);
        snprintf(label, sizeof label, "small U-Net, batch 3, %s plan", names[k]);
        simulate(unet_graph(small), p, label);
        graph_plan_free(p);
    }
    char err[256];
    struct inception *inc = inception_create(64, 75, err, sizeof err);
    if (!inc) {
        test_fail("inception_create: %s", err);
    } else {
        struct graph_plan *p = graph_plan_create(inception_graph(inc), 2, GRAPH_PLAN_INFER);
        simulate(inception_graph(inc), p, "InceptionV3 (64 -> 75x75), batch 2, infer plan");
        graph_plan_free(p);
        inception_destroy(inc);
    }
    unet_destroy(seed);
    unet_destroy(small);
}

/* --- 2. the plan against keep-all --------------------------------------------------------- */

struct run {
    struct graph_acts *acts;
    float *w, *dw, *out;
};

static void run_step(const struct graph *g, struct run *r, const float *x, const float *aux,
                     const float *dout, int training)
{
    graph_forward(be, g, r->acts, r->w, x, aux, training, comm, r->out);
    if (training)
        graph_backward(be, g, r->acts, r->w, r->dw, dout, comm, NULL);
}

/* equal values (zero tolerance), every one finite */
static void check_same(const char *what, const float *planned, const float *kept, size_t n)
{
    test_close(what, planned, kept, n, 0.0f, 0.0f);
}

static void check_against_keep_all(void)
{
    static const int widths[] = {8, 12, 16};
    struct unet *net = make_unet(16, widths, 3, 2, 8);
    const struct graph *g = unet_graph(net);
    const struct param_table *pt = unet_params(net);
    int batch = 3;
    size_t in_n = (size_t)batch * 16 * 16 * 3;
    float *x = test_alloc_normal(in_n, 1.0f), *dout = test_alloc_normal(in_n, 1.0f);
    float aux[3] = {0.1f, 0.5f, 0.9f};
    struct run r[2];
    for (int k = 0; k < 2; k++) {
        r[k].acts = graph_acts_create(be, g, batch, k ? GRAPH_PLAN_KEEP_ALL : GRAPH_PLAN_TRAIN);
        r[k].w = test_alloc_zeros(pt->total);
        r[k].dw = test_alloc_zeros(pt->trainable);
        r[k].out = test_alloc_zeros(in_n);
        unet_init_weights(net, r[k].w, 5, 0);
    }
    /* the head's kernel starts at zero (as Keras's): give it values so gradients flow */
    test_seed(11);
    float *noise = test_alloc_normal(pt->total, 0.05f);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < pt->total; i++)
            r[k].w[i] += noise[i];
    if (r[0].acts->plan->floats >= r[1].acts->plan->floats)
        test_fail("the plan (%zu floats) is not smaller than keep-all (%zu)",
                  r[0].acts->plan->floats, r[1].acts->plan->floats);
    char what[64];
    for (int step = 0; step < 2; step++) {
        for (int k = 0; k < 2; k++)
            run_step(g, &r[k], x, aux, dout, 1);
        snprintf(what, sizeof what, "step %d: output", step);
        check_same(what, r[0].out, r[1].out, in_n);
        snprintf(what, sizeof what, "step %d: weight gradients", step);
        check_same(what, r[0].dw, r[1].dw, pt->trainable);
        snprintf(what, sizeof what, "step %d: BN moving statistics", step);
        check_same(what, r[0].w, r[1].w, pt->total);
    }
    for (int k = 0; k < 2; k++)
        run_step(g, &r[k], x, aux, NULL, 0);
    check_same("inference forward: output", r[0].out, r[1].out, in_n);
    for (int k = 0; k < 2; k++) {
        graph_acts_destroy(be, r[k].acts);
        free(r[k].w);
        free(r[k].dw);
        free(r[k].out);
    }
    free(x);
    free(dout);
    free(noise);
    unet_destroy(net);
}

/* --- 3. the seed's network at batch 64 ------------------------------------------------- */

static void check_seed_memory(void)
{
    static const int widths[] = {32, 64, 96, 128};
    struct unet *net = make_unet(64, widths, 4, 2, 32);
    struct graph_plan *train = graph_plan_create(unet_graph(net), 64, GRAPH_PLAN_TRAIN);
    struct graph_plan *all = graph_plan_create(unet_graph(net), 64, GRAPH_PLAN_KEEP_ALL);
    double mib = train->floats * 4.0 / (1 << 20), all_mib = all->floats * 4.0 / (1 << 20);
    if (train->floats > all->floats * 3 / 10)
        test_fail("seed network, batch 64: the plan takes %.1f MiB, more than 30%% of keep-all's "
                  "%.1f MiB",
                  mib, all_mib);
    else
        printf("ok   seed network, batch 64: %.1f MiB planned, %.1f MiB kept all (%.0f%%)\n", mib,
               all_mib, 100.0 * mib / all_mib);
    graph_plan_free(train);
    graph_plan_free(all);
    unet_destroy(net);
}

int main(void)
{
    be = cpu_backend_create();
    comm = comm_single();
    test_seed(3);
    check_simulations();
    check_against_keep_all();
    check_seed_memory();
    be->destroy(be);
    return test_finish("test_graph_plan");
}
