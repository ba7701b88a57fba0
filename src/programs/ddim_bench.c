/* ddim_bench.c: the ddim-bench program: times the training step (draw, forward, backward,
 * gradient all-reduce, AdamW + EMA) on random data at a given configuration, whole and by
 * phase, with the backend's timing events after a warm-up, and prints the figures with the
 * setup they ran with (a table, optionally a CSV of every step and one JSON line).
 *
 * Timing: the whole step is timed by events recorded between steps, with no host
 * synchronization inside the timed loop (CUDA events wait only when read, after it). The
 * breakdown is a second loop of as many steps that records an event between phases
 * (trainer_step_* in trainer.h), so its sum can sit slightly above the whole step. A third
 * loop of --op-steps steps runs on ddim_bench_ops.h's forwarding backend, which brackets every op
 * with events: the time per group of ops (convolutions, BatchNorm ...), the profile of a
 * step without a profiler (the events add a little time per op). */
#include "ddim_bench.h"
#include "comm.h"
#include "config.h"
#include "graph.h"
#include "launch.h"
#include "trainer.h"
#include "util.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The options' defaults are those of main's bench_opts (the model's: the key table's). */
static void usage(FILE *out, const struct bench_opts *d)
{
    char widths[128], precision[16];
    bench_report_precision(d->precision, precision, sizeof precision);
    size_t j = 0;
    for (int i = 0; i < d->num_levels && j < sizeof widths; i++)
        j += (size_t)snprintf(widths + j, sizeof widths - j, "%s%d", i ? "," : "", d->widths[i]);
    fprintf(out,
            "usage: ddim-bench [options]\n"
            "\n"
            "Times the Keras DDIM example's training step (forward, backward, all-reduce,\n"
            "AdamW + EMA) on random images, whole and by phase, after a warm-up. Runs under\n"
            "mpirun too (one GPU per rank; rank 0 reports its own times); with several\n"
            "ranks it also times the step's collectives alone (BatchNorm's, the gradient's).\n"
            "\n"
            "options:\n"
            "  --backend B        cpu, cuda or auto (default: cuda if usable, else cpu)\n"
            "  --batch N          images per step per rank (default %d)\n"
            "  --image-size S     image side in pixels (default %d)\n"
            "  --widths LIST      channels per level, comma-separated (default %s)\n"
            "  --block-depth D    residual blocks per level (default %d)\n"
            "  --warmup N         untimed steps first (default %d)\n"
            "  --steps N          timed steps, for the whole step and again by phase\n"
            "                     (default %d)\n"
            "  --op-steps N       steps timed op by op, for the time per group of ops\n"
            "                     (default %d; 0: none)\n"
            "  --cuda-graph on|partial|off  the whole step as one CUDA graph, where the\n"
            "                     backend has graphs (default on); partial: data to\n"
            "                     all-reduce only (draw and update op by op)\n"
            "  --fuse on|off      bias, residual add and swish in the convolutions'\n"
            "                     epilogue (default on; off: every node apart)\n"
            "  --precision P      fp32, tf32 or bf16 (default %s; model.precision)\n"
            "  --bucket-mib X     several ranks: the gradient all-reduced in buckets of X\n"
            "                     MiB during the backward pass (default %g; 0: in one piece\n"
            "                     after it; run.allreduce_bucket_mib)\n"
            "  --csv FILE         every timed step's times, in ms\n"
            "  --json             also print one JSON line of the results (last line)\n"
            "  -h, --help         this text\n",
            d->batch, d->image_size, widths, d->block_depth, d->warmup, d->steps, d->op_steps,
            precision, d->bucket_mib);
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out)
{
    return util_parse_int("ddim-bench", opt, v, lo, hi, out);
}

static int parse_widths(const char *v, struct bench_opts *o)
{
    o->num_levels = 0;
    const char *p = v;
    while (*p) {
        char *end = NULL;
        long x = strtol(p, &end, 10);
        if (end == p || x < 1 || x > 4096 || o->num_levels == UNET_MAX_LEVELS ||
            (*end && *end != ',')) {
            fprintf(stderr,
                    "ddim-bench: --widths: expected up to %d comma-separated channel counts "
                    "(1..4096), got '%s'\n",
                    UNET_MAX_LEVELS, v);
            return -1;
        }
        o->widths[o->num_levels++] = (int)x;
        p = *end ? end + 1 : end;
    }
    if (o->num_levels < 2) {
        fprintf(stderr, "ddim-bench: --widths: expected at least 2 levels, got '%s'\n", v);
        return -1;
    }
    return 0;
}

/* One option with its value (NULL for --json), for util_getopt_each: 0, or -1 after a
 * message. */
static int parse_option(void *ctx, const char *a, const char *v)
{
    struct bench_opts *o = ctx;
    int rc = 0;
    if (!strcmp(a, "--json")) {
        o->json = 1;
    } else if (!strcmp(a, "--backend")) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda") && strcmp(v, "auto")) {
            fprintf(stderr, "ddim-bench: --backend: expected cpu, cuda or auto, got '%s'\n", v);
            rc = -1;
        }
        o->backend = v;
    } else if (!strcmp(a, "--batch")) {
        rc = parse_int(a, v, 1, 1 << 16, &o->batch);
    } else if (!strcmp(a, "--image-size")) {
        rc = parse_int(a, v, 2, 4096, &o->image_size);
    } else if (!strcmp(a, "--widths")) {
        rc = parse_widths(v, o);
    } else if (!strcmp(a, "--block-depth")) {
        rc = parse_int(a, v, 1, 16, &o->block_depth);
    } else if (!strcmp(a, "--warmup")) {
        rc = parse_int(a, v, 0, 1000000, &o->warmup);
    } else if (!strcmp(a, "--steps")) {
        rc = parse_int(a, v, 1, 1000000, &o->steps);
    } else if (!strcmp(a, "--cuda-graph")) {
        o->graph = !strcmp(v, "on")        ? TRAINER_GRAPH_WHOLE
                   : !strcmp(v, "partial") ? TRAINER_GRAPH_PARTIAL
                                           : TRAINER_GRAPH_OFF;
        if (!o->graph && strcmp(v, "off")) {
            fprintf(stderr, "ddim-bench: --cuda-graph: expected on, partial or off, got '%s'\n", v);
            rc = -1;
        }
    } else if (!strcmp(a, "--fuse")) {
        o->fuse = !strcmp(v, "on");
        if (!o->fuse && strcmp(v, "off")) {
            fprintf(stderr, "ddim-bench: --fuse: expected on or off, got '%s'\n", v);
            rc = -1;
        }
    } else if (!strcmp(a, "--precision")) { /* model.precision's names, from the key table */
        char name[16];
        rc = -1;
        for (int p = PRECISION_FP32; p <= PRECISION_BF16 && rc; p++)
            if (!strcmp(v, bench_report_precision((enum precision)p, name, sizeof name))) {
                o->precision = (enum precision)p;
                rc = 0;
            }
        if (rc)
            fprintf(stderr, "ddim-bench: --precision: expected fp32, tf32 or bf16, got '%s'\n", v);
    } else if (!strcmp(a, "--bucket-mib")) {
        rc = util_parse_double("ddim-bench", a, v, 0, 65536, &o->bucket_mib);
    } else if (!strcmp(a, "--op-steps")) {
        rc = parse_int(a, v, 0, 1000000, &o->op_steps);
    } else if (!strcmp(a, "--csv")) {
        o->csv = v;
    }
    return rc;
}

/* 0 to run, 1 to exit 0 (help), -1 to exit 2 (bad usage) */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    static const struct option options[] = {{"backend", required_argument, NULL, 0},
                                            {"batch", required_argument, NULL, 0},
                                            {"image-size", required_argument, NULL, 0},
                                            {"widths", required_argument, NULL, 0},
                                            {"block-depth", required_argument, NULL, 0},
                                            {"warmup", required_argument, NULL, 0},
                                            {"steps", required_argument, NULL, 0},
                                            {"cuda-graph", required_argument, NULL, 0},
                                            {"fuse", required_argument, NULL, 0},
                                            {"precision", required_argument, NULL, 0},
                                            {"bucket-mib", required_argument, NULL, 0},
                                            {"op-steps", required_argument, NULL, 0},
                                            {"csv", required_argument, NULL, 0},
                                            {"json", no_argument, NULL, 0},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const struct bench_opts defaults = *o;
    int rc = util_getopt_each("ddim-bench", argc, argv, options, parse_option, o);
    if (rc == 1)
        usage(stdout, &defaults);
    return rc;
}

/* Forward convolution FLOPs of one step of `batch` images, from the network's graph. */
static double conv_flops_forward(const struct unet *net, int batch)
{
    return graph_conv_flops(unet_graph(net), batch);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static struct stats stats_of(const double *v, int n)
{
    double *s = util_xmalloc((size_t)n * sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    struct stats st = {0, 0, s[0], s[n - 1]};
    st.median = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    for (int i = 0; i < n; i++)
        st.mean += s[i] / n;
    free(s);
    return st;
}

/* Whole steps: ms[i] = time of step i, between the events that bracket it. Returns the
 * host's wall time per step (the loop and one final wait); *cpu_ms: the process's CPU time
 * per step over the same loop, all threads. */
static double time_whole_steps(struct trainer *t, int steps, double *ms, double *cpu_ms)
{
    struct backend *be = t->be;
    void **ev = util_xmalloc((size_t)(steps + 1) * sizeof *ev);
    for (int i = 0; i <= steps; i++)
        ev[i] = be->event_create(be);
    be->synchronize(be);
    double t0 = util_now(), c0 = util_cpu_now();
    be->event_record(be, ev[0]);
    for (int i = 0; i < steps; i++) {
        trainer_train_step(t);
        be->event_record(be, ev[i + 1]);
    }
    be->synchronize(be);
    double wall = (util_now() - t0) * 1e3 / steps;
    *cpu_ms = (util_cpu_now() - c0) * 1e3 / steps;
    for (int i = 0; i < steps; i++)
        ms[i] = be->event_elapsed_ms(be, ev[i], ev[i + 1]);
    for (int i = 0; i <= steps; i++)
        be->event_destroy(be, ev[i]);
    free(ev);
    return wall;
}

/* With several ranks: the step's collectives alone, each round after a barrier, over `reps`
 * rounds (the minimum: what the transport takes when nothing else runs on the machine):
 * BatchNorm's (for every BN layer two all-reduces of 2c floats, the forward and the backward
 * statistics) and the gradient's. The network's own sizes, on the trainer's gradient buffer
 * (its values are spent by then). */
static void time_collectives(struct trainer *t, int reps, struct stats *bn_ms,
                             struct stats *grad_ms)
{
    const struct graph *g = unet_graph(t->net);
    struct comm *c = t->comm;
    double *bn = util_xmalloc((size_t)reps * sizeof *bn);
    double *grad = util_xmalloc((size_t)reps * sizeof *grad);
    for (int i = 0; i < reps; i++) {
        c->barrier(c);
        double t0 = util_now();
        for (int k = 0; k < g->num_nodes; k++)
            for (int pass = 0; pass < 2 && g->nodes[k].kind == NODE_BN; pass++)
                c->allreduce_sum(c, t->grad, 2 * (size_t)g->tensors[g->nodes[k].in0].c);
        t->be->synchronize(t->be);
        bn[i] = (util_now() - t0) * 1e3;
        c->barrier(c);
        t0 = util_now();
        c->allreduce_sum(c, t->grad, unet_params(t->net)->trainable);
        t->be->synchronize(t->be);
        grad[i] = (util_now() - t0) * 1e3;
    }
    *bn_ms = stats_of(bn, reps);
    *grad_ms = stats_of(grad, reps);
    free(bn);
    free(grad);
}

/* Steps again, with an event between phases: ms[p * steps + i] = phase p of step i. */
static void time_phases(struct trainer *t, int steps, double *ms)
{
    struct backend *be = t->be;
    int per = NUM_PHASES + 1;
    void **ev = util_xmalloc((size_t)steps * per * sizeof *ev);
    for (int i = 0; i < steps * per; i++)
        ev[i] = be->event_create(be);
    be->synchronize(be);
    for (int i = 0; i < steps; i++) {
        void **e = ev + (size_t)i * per;
        be->event_record(be, e[0]);
        trainer_step_begin(t);
        trainer_step_draw(t);
        trainer_step_data(t);
        be->event_record(be, e[1]);
        trainer_step_forward(t);
        be->event_record(be, e[2]);
        trainer_step_backward(t);
        be->event_record(be, e[3]);
        trainer_step_allreduce(t);
        be->event_record(be, e[4]);
        trainer_step_update(t);
        trainer_step_end(t);
        be->event_record(be, e[5]);
    }
    be->synchronize(be);
    for (int i = 0; i < steps; i++)
        for (int p = 0; p < NUM_PHASES; p++)
            ms[(size_t)p * steps + i] =
                be->event_elapsed_ms(be, ev[(size_t)i * per + p], ev[(size_t)i * per + p + 1]);
    for (int i = 0; i < steps * per; i++)
        be->event_destroy(be, ev[i]);
    free(ev);
}

/* Steps on the op-timing backend: group_ms[g] and calls[g] per step, averaged. */
static void time_op_groups(struct trainer *t, int steps, double *group_ms, double *group_cpu_ms,
                           double *calls)
{
    struct backend *be = t->be;
    int graph = !t->graph_mode     ? TRAINER_GRAPH_OFF
                : t->graph_partial ? TRAINER_GRAPH_PARTIAL
                                   : TRAINER_GRAPH_WHOLE;
    trainer_set_graph(t, TRAINER_GRAPH_OFF); /* a graph would replay the ops untimed */
    struct bench_ops *b = bench_ops_create(be);
    double ms[BG_COUNT] = {0}, cpu[BG_COUNT] = {0};
    long n[BG_COUNT] = {0};
    be->synchronize(be);
    t->be = bench_ops_backend(b);
    for (int i = 0; i < steps; i++) {
        trainer_train_step(t);
        bench_ops_collect(b, ms, cpu, n); /* a wait per step: the events stay few */
    }
    t->be = be;
    bench_ops_destroy(b);
    trainer_set_graph(t, graph);
    for (int g = 0; g < BG_COUNT; g++) {
        group_ms[g] = steps ? ms[g] / steps : 0;
        group_cpu_ms[g] = steps ? cpu[g] / steps : 0;
        calls[g] = steps ? (double)n[g] / steps : 0;
    }
}

/* Random images in [0, 1] (uniform: mean 0.5, variance 1/12 per channel). */
static void fill_random_images(struct trainer *t)
{
    const float mean[3] = {0.5f, 0.5f, 0.5f}, var[3] = {1.0f / 12, 1.0f / 12, 1.0f / 12};
    t->be->fill_uniform(t->be, t->images, t->batch, t->per_image, t->dc.seed, 0, RNG_SHUFFLE,
                        (uint32_t)t->first_example, NULL);
    trainer_set_normalizer(t, mean, var);
}

/* 0, or 1 when an output could not be written (the figures are printed either way) */
static int run_bench(const struct bench_opts *o, struct backend *be, struct comm *comm)
{
    struct unet_config ucfg = config_default_model();
    ucfg.image_size = o->image_size;
    ucfg.block_depth = o->block_depth;
    ucfg.num_levels = o->num_levels;
    memcpy(ucfg.widths, o->widths, sizeof o->widths);
    ucfg.precision = o->precision;
    struct diffusion_config dc = config_default_diffusion();
    char err[2048];
    struct trainer *t = trainer_create(be, comm, &ucfg, &dc, o->batch, o->batch * comm->world,
                                       o->batch * comm->rank, err, sizeof err);
    if (!t)
        DDIM_FATAL("%s", err);
    trainer_init_weights(t);
    fill_random_images(t);
    unet_set_fusion(t->net, o->fuse);
    trainer_set_buckets(t, o->bucket_mib);
    trainer_set_graph(t, o->graph);
    for (int i = 0; i < o->warmup; i++)
        trainer_train_step(t);
    be->synchronize(be);

    double *whole = util_xmalloc((size_t)o->steps * sizeof *whole);
    double *phases = util_xmalloc((size_t)o->steps * NUM_PHASES * sizeof *phases);
    struct results r;
    memset(&r, 0, sizeof r);
    double comm_s = comm->seconds;
    long comm_calls = comm->calls;
    r.wall_ms = time_whole_steps(t, o->steps, whole, &r.cpu_ms);
    r.comm_ms = (comm->seconds - comm_s) * 1e3 / o->steps;
    r.comm_calls = (double)(comm->calls - comm_calls) / o->steps;
    r.graph = t->graph != NULL;
    time_phases(t, o->steps, phases);
    time_op_groups(t, o->op_steps, r.group_ms, r.group_cpu_ms, r.group_calls);
    if (comm->world > 1)
        time_collectives(t, 20, &r.alone_bn, &r.alone_grad);
    float losses[2];
    trainer_read_losses(t, losses);
    if (!isfinite(losses[0]))
        DDIM_FATAL("the noise loss is %g after %d steps: the step is broken", losses[0], t->step);

    const struct param_table *pt = unet_params(t->net);
    r.step = stats_of(whole, o->steps);
    for (int p = 0; p < NUM_PHASES; p++)
        r.phase[p] = stats_of(phases + (size_t)p * o->steps, o->steps);
    r.images_per_s = r.step.median > 0 ? o->batch * comm->world / (r.step.median * 1e-3) : 0;
    double fwd = conv_flops_forward(t->net, o->batch);
    r.flops = fwd > 0 ? 3.0 * fwd : 0; /* backward: data and filter gradients, 2x forward */
    r.tflops = r.step.median > 0 ? r.flops / (r.step.median * 1e-3) * 1e-12 : 0;
    r.peak_bytes = be->memory_peak_bytes(be);
    r.acts_bytes = unet_acts_bytes(t->acts);
    r.state_bytes = (2 * pt->total + 3 * pt->trainable) * sizeof(float);
    r.trainable = pt->trainable;
    bench_report_table(o, be, comm, &r);
    util_log("  last losses    noise %.4f, image %.4f (random images: a sanity check only)\n",
             losses[0], losses[1]);
    if (o->json)
        bench_report_json(o, be, comm, &r);
    int rc = 0;
    if (o->csv && comm->rank == 0 && bench_report_csv(o->csv, o->steps, whole, phases) != 0)
        rc = 1;
    free(whole);
    free(phases);
    trainer_destroy(t);
    return rc;
}

int main(int argc, char **argv)
{
    util_prefer_passive_openmp(argv);
    /* the example's network and batch (the key table's defaults) */
    struct run_config d;
    config_defaults(&d);
    struct bench_opts o = {.backend = "auto",
                           .batch = d.batch_size,
                           .image_size = d.model.image_size,
                           .block_depth = d.model.block_depth,
                           .warmup = 10,
                           .steps = 50,
                           .op_steps = 5,
                           .graph = TRAINER_GRAPH_WHOLE,
                           .fuse = 1,
                           .precision = d.model.precision,
                           .bucket_mib = d.allreduce_bucket_mib,
                           .num_levels = d.model.num_levels};
    memcpy(o.widths, d.model.widths, sizeof o.widths);
    int rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    struct comm *mpi = comm_mpi_create(&argc, &argv);
    struct backend *be = launch_pick_backend(o.backend, mpi, "ddim-bench");
    if (!be->event_create || !be->event_record || !be->event_elapsed_ms || !be->event_destroy ||
        !be->memory_peak_bytes)
        DDIM_FATAL("the %s backend has no timing events", be->name);
    struct comm *comm = launch_comm_for_backend(mpi, be);
    rc = run_bench(&o, be, comm);
    launch_finish(comm, be, mpi);
    return rc;
}
