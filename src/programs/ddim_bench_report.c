/* ddim_bench_report.c: ddim-bench's report: the setup and the figures of a run as a table,
 * as one JSON line, and every timed step as CSV. */
#include "config.h"
#include "ddim_bench.h"
#include "trainer.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "32,64,96,128" */
static void format_widths(char *out, size_t len, const struct bench_opts *o)
{
    out[0] = 0;
    for (int i = 0; i < o->num_levels; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%d", i ? "," : "", o->widths[i]);
}

const char *bench_report_precision(enum precision p, char *buf, size_t len)
{
    struct run_config c;
    config_defaults(&c);
    c.model.precision = p;
    if (config_value_text(&c, "model.precision", buf, len) != 0)
        snprintf(buf, len, "?");
    return buf;
}

static void format_bytes(char *out, size_t len, size_t bytes)
{
    if (!bytes)
        snprintf(out, len, "unknown");
    else
        snprintf(out, len, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

void bench_report_table(const struct bench_opts *o, const struct backend *be,
                        const struct comm *comm, const struct results *r)
{
    char widths[128], peak[32], acts[32], state[32], precision[16];
    format_widths(widths, sizeof widths, o);
    bench_report_precision(o->precision, precision, sizeof precision);
    const char *no_tf32 = getenv("DDIM_CUDNN_NO_TF32");
    int tf32 = !(no_tf32 && no_tf32[0] && strcmp(no_tf32, "0"));
    util_log("ddim-bench: setup\n"
             "  backend        %s%s\n"
             "  ranks          %d (batch %d per rank, %d global)\n"
             "  network        %dx%d, widths [%s], block depth %d, %zu trainable weights\n"
             "  precision      %s%s\n"
             "  steps          %d warm-up, %d timed whole, %d timed by phase\n",
             be->name, strcmp(be->name, "cuda") ? "" : " (cuDNN convolutions)", comm->world,
             o->batch, o->batch * comm->world, o->image_size, o->image_size, widths, o->block_depth,
             r->trainable, precision,
             strcmp(be->name, "cuda") || o->precision != PRECISION_TF32
                 ? ""
                 : (tf32 ? ", convolutions may use TF32 (cuDNN default)"
                         : ", convolutions without TF32 (DDIM_CUDNN_NO_TF32)"),
             o->warmup, o->steps, o->steps);
    util_log("\n%-10s %10s %10s %10s %10s %7s  %s\n", "phase", "median ms", "mean ms", "min ms",
             "max ms", "share", "what");
    double sum = 0;
    for (int p = 0; p < NUM_PHASES; p++)
        sum += r->phase[p].median;
    for (int p = 0; p < NUM_PHASES; p++)
        util_log("%-10s %10.3f %10.3f %10.3f %10.3f %6.1f%%  %s\n", bench_phase_names[p],
                 r->phase[p].median, r->phase[p].mean, r->phase[p].min, r->phase[p].max,
                 sum > 0 ? 100.0 * r->phase[p].median / sum : 0.0, bench_phase_help[p]);
    util_log("%-10s %10.3f %10s %10s %10s %7s  %s\n", "sum", sum, "", "", "", "",
             "of the phase medians");
    util_log("%-10s %10.3f %10.3f %10.3f %10.3f %7s  %s\n", "step", r->step.median, r->step.mean,
             r->step.min, r->step.max, "", "whole step, timed without phase events");
    format_bytes(peak, sizeof peak, r->peak_bytes);
    format_bytes(acts, sizeof acts, r->acts_bytes);
    format_bytes(state, sizeof state, r->state_bytes);
    if (o->op_steps) {
        double total = 0, total_cpu = 0;
        util_log("\n%-12s %10s %10s %8s  (ops timed one by one over %d steps; host CPU: this "
                 "process's CPU time in the calls)\n",
                 "op group", "ms/step", "host CPU", "ops/step", o->op_steps);
        for (int g = 0; g < BG_COUNT; g++) {
            total += r->group_ms[g];
            total_cpu += r->group_cpu_ms[g];
            util_log("%-12s %10.3f %10.3f %8.0f\n", bench_group_names[g], r->group_ms[g],
                     r->group_cpu_ms[g], r->group_calls[g]);
        }
        util_log("%-12s %10.3f %10.3f %8s  (the all-reduces are not backend ops)\n", "sum", total,
                 total_cpu, "");
    }
    util_log("\n  cuda graph     %s\n",
             !r->graph ? "off: op by op"
             : o->graph == TRAINER_GRAPH_PARTIAL
                 ? "partial: data to all-reduce replay one captured graph, draw and update op by "
                   "op (the phase and op loops run op by op)"
                 : "on: whole steps replay one captured graph (the phase and op loops run op by "
                   "op)");
    util_log("  fusion         %s\n  all-reduce     %s", o->fuse ? "on" : "off",
             comm->world == 1    ? "one rank: none\n"
             : o->bucket_mib > 0 ? "in buckets during the backward pass: "
                                 : "in one piece after the backward pass\n");
    if (comm->world > 1 && o->bucket_mib > 0)
        util_log("%g MiB\n", o->bucket_mib);
    util_log("  throughput     %.1f images/s (global batch / median step)\n"
             "  host wall      %.3f ms per step (enqueue + run, one wait at the end)\n"
             "  host CPU       %.3f ms per step (this process, all threads: other processes on "
             "a busy machine stretch the wall time, not this)\n",
             r->images_per_s, r->wall_ms, r->cpu_ms);
    if (comm->world > 1)
        util_log("  collectives    %.3f ms per step in %.0f calls: BatchNorm's small all-reduces "
                 "and the gradient's (host time in the calls, waiting for the other ranks "
                 "included; %s)\n"
                 "  alone          %.3f ms BatchNorm's %.0f, %.3f ms the gradient's (after a "
                 "barrier, no step around them: what the transport takes; medians, minima "
                 "%.3f and %.3f)\n",
                 r->comm_ms, r->comm_calls,
                 strcmp(be->name, "cuda") ? "the allreduce phase is the gradient's"
                                          : "NCCL: the enqueue only",
                 r->alone_bn.median, r->comm_calls - 1, r->alone_grad.median, r->alone_bn.min,
                 r->alone_grad.min);
    if (r->flops > 0)
        util_log("  conv FLOPs     %.2f GFLOP per step per rank (forward x3), %.2f TFLOP/s\n",
                 r->flops * 1e-9, r->tflops);
    else
        util_log("  conv FLOPs     unknown\n");
    util_log("  peak memory    %s%s\n"
             "  of which       %s activations and their gradients, %s weights, EMA, Adam, "
             "gradient\n",
             peak,
             strcmp(be->name, "cuda") ? " (process peak resident set)"
                                      : " (the backend's device allocations at their peak)",
             acts, state);
}

void bench_report_json(const struct bench_opts *o, const struct backend *be,
                       const struct comm *comm, const struct results *r)
{
    char widths[128], precision[16];
    format_widths(widths, sizeof widths, o);
    bench_report_precision(o->precision, precision, sizeof precision);
    util_log("{\"tool\":\"ddim-bench\",\"backend\":\"%s\",\"ranks\":%d,\"batch\":%d,"
             "\"global_batch\":%d,\"cuda_graph\":%d,\"graph_scope\":\"%s\",\"fuse\":%d,"
             "\"precision\":\"%s\","
             "\"bucket_mib\":%g,\"image_size\":%d,\"widths\":[%s],\"block_"
             "depth\":%d,"
             "\"warmup\":%d,\"steps\":%d,\"step_ms_median\":%.4f,\"step_ms_mean\":%.4f,"
             "\"step_ms_min\":%.4f,\"images_per_s\":%.2f,\"host_wall_ms_per_step\":%.4f,"
             "\"host_cpu_ms_per_step\":%.4f,",
             be->name, comm->world, o->batch, o->batch * comm->world, r->graph,
             !r->graph                           ? "off"
             : o->graph == TRAINER_GRAPH_PARTIAL ? "partial"
                                                 : "whole",
             o->fuse, precision, comm->world > 1 ? o->bucket_mib : 0.0, o->image_size, widths,
             o->block_depth, o->warmup, o->steps, r->step.median, r->step.mean, r->step.min,
             r->images_per_s, r->wall_ms, r->cpu_ms);
    util_log("\"phases_ms_median\":{");
    for (int p = 0; p < NUM_PHASES; p++)
        util_log("%s\"%s\":%.4f", p ? "," : "", bench_phase_names[p], r->phase[p].median);
    util_log("},\"op_groups_ms\":{");
    for (int g = 0; g < BG_COUNT && o->op_steps; g++)
        util_log("%s\"%s\":%.4f", g ? "," : "", bench_group_names[g], r->group_ms[g]);
    util_log("},\"op_groups_cpu_ms\":{");
    for (int g = 0; g < BG_COUNT && o->op_steps; g++)
        util_log("%s\"%s\":%.4f", g ? "," : "", bench_group_names[g], r->group_cpu_ms[g]);
    util_log("},\"comm_ms_per_step\":%.4f,\"comm_calls_per_step\":%.1f,"
             "\"alone_bn_ms\":%.4f,\"alone_grad_ms\":%.4f,\"alone_bn_ms_min\":%.4f,"
             "\"alone_grad_ms_min\":%.4f,"
             "\"peak_mem_bytes\":%zu,\"acts_bytes\":%zu,\"state_bytes\":%zu,"
             "\"trainable_params\":%zu,\"conv_gflop_per_step\":%.4f,\"tflops\":%.4f}\n",
             r->comm_ms, r->comm_calls, r->alone_bn.median, r->alone_grad.median, r->alone_bn.min,
             r->alone_grad.min, r->peak_bytes, r->acts_bytes, r->state_bytes, r->trainable,
             r->flops * 1e-9, r->tflops);
}

int bench_report_csv(const char *path, int steps, const double *whole, const double *phases)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "ddim-bench: cannot write --csv %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "step,step_ms");
    for (int p = 0; p < NUM_PHASES; p++)
        fprintf(f, ",%s_ms", bench_phase_names[p]);
    fprintf(f, "\n");
    for (int i = 0; i < steps; i++) {
        fprintf(f, "%d,%.4f", i, whole[i]);
        for (int p = 0; p < NUM_PHASES; p++)
            fprintf(f, ",%.4f", phases[(size_t)p * steps + i]);
        fprintf(f, "\n");
    }
    if (ferror(f) | fclose(f)) {
        fprintf(stderr, "ddim-bench: cannot write --csv %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}
