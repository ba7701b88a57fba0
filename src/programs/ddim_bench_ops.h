/* ddim_bench_ops.h: ddim-bench's time per group of ops (convolutions, BatchNorm, elementwise ...):
 * a backend that forwards every op to another one and records a timing event before and
 * after each timed op. Meant for a few steps apart from the whole-step timing, since an
 * event pair per op adds work and (with CUDA graphs) would split the step. */
#ifndef DDIM_BENCH_OPS_H
#define DDIM_BENCH_OPS_H

#include "backend.h"

enum bench_group {
    BG_CONV_FORWARD,
    BG_CONV_BACKWARD,
    BG_BATCHNORM,
    BG_ELEMENTWISE, /* swish, add, axpy, scale */
    BG_CONCAT,
    BG_RESAMPLE, /* average pooling, upsampling */
    BG_DATA,     /* random numbers, gather, normalize, schedule, mix, embedding, square */
    BG_LOSS,
    BG_OPTIMIZER, /* AdamW, EMA */
    BG_MEMORY,    /* fill, copy */
    BG_COUNT
};

extern const char *const bench_group_names[BG_COUNT];

struct bench_ops;

/* A backend whose ops run on `inner`, timed by group; its memory, sync and timing hooks are
 * the inner backend's own (they reach their state through be->ctx only). */
struct bench_ops *bench_ops_create(struct backend *inner);
struct backend *bench_ops_backend(struct bench_ops *b);
/* Waits for the ops queued so far, adds their times to ms[group], the process's CPU time
 * spent inside the calls to cpu_ms[group] (the op's own work on the CPU backend, whose ops
 * return when done; the enqueueing on an asynchronous one) and their count to calls[group],
 * and forgets them. */
void bench_ops_collect(struct bench_ops *b, double ms[BG_COUNT], double cpu_ms[BG_COUNT],
                       long calls[BG_COUNT]);
void bench_ops_destroy(struct bench_ops *b);

#endif
