/* ddim_bench.h: what ddim-bench's main (ddim_bench.c) and its report (ddim_bench_report.c)
 * share: the options, the phases of a step and the measured results. */
#ifndef DDIM_BENCH_H
#define DDIM_BENCH_H

#include "backend.h"
#include "comm.h"
#include "ddim_bench_ops.h"
#include "unet.h"

#include <stddef.h>

enum { NUM_PHASES = 5 };
static const char *const bench_phase_names[NUM_PHASES] = {"data", "forward", "backward",
                                                          "allreduce", "update"};
static const char *const bench_phase_help[NUM_PHASES] = {
    "draw noises/times, normalize, schedule, mix", "U-Net forward (BN training mode)",
    "losses, loss gradient, U-Net backward", "gradient all-reduce over the ranks", "AdamW and EMA"};

struct bench_opts {
    const char *backend; /* "auto", "cpu" or "cuda" */
    int batch;           /* per rank */
    int image_size, block_depth, warmup, steps, op_steps, json;
    int graph;                /* --cuda-graph: TRAINER_GRAPH_WHOLE, _PARTIAL or _OFF */
    int fuse;                 /* --fuse: 1 on, 0 off (unet_set_fusion) */
    enum precision precision; /* --precision: model.precision */
    double bucket_mib;        /* --bucket-mib: run.allreduce_bucket_mib */
    int widths[UNET_MAX_LEVELS], num_levels;
    const char *csv; /* per-step times, or NULL */
};

struct stats {
    double median, mean, min, max;
};

struct results {
    struct stats step, phase[NUM_PHASES];
    double group_ms[BG_COUNT], group_cpu_ms[BG_COUNT], group_calls[BG_COUNT];
    int graph; /* the whole steps ran as a CUDA graph */
    double wall_ms, cpu_ms, images_per_s, flops, tflops;
    double comm_ms, comm_calls;        /* per whole step: host time in the communicator's calls */
    struct stats alone_bn, alone_grad; /* the step's collectives alone (time_collectives) */
    size_t peak_bytes, acts_bytes, state_bytes, trainable;
};

/* p as model.precision spells it (the key table's name: "fp32", "tf32", "bf16") */
const char *bench_report_precision(enum precision p, char *buf, size_t len);
/* The setup and the figures as a table on the log (rank 0 prints; util_log). */
void bench_report_table(const struct bench_opts *o, const struct backend *be,
                        const struct comm *comm, const struct results *r);
/* The same as one JSON line. */
void bench_report_json(const struct bench_opts *o, const struct backend *be,
                       const struct comm *comm, const struct results *r);
/* Every timed step's whole and per-phase times (phases[p * steps + i]) as CSV at path;
 * 0, or -1 after a message naming the file and the system's cause. */
int bench_report_csv(const char *path, int steps, const double *whole, const double *phases);

#endif
