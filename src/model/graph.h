/* graph.h: a network as a list of nodes over numbered tensors, and the one executor that
 * runs any such list on a backend. Two builders use it: the U-Net (unet.c, trained) and
 * InceptionV3 (inception.c, inference only, for KID).
 *
 * Every activation and activation gradient lives in one arena per batch (struct graph_acts),
 * at the offset its memory plan gives it (graph_plan.c): buffers whose lives do not meet
 * share memory, and backward recomputes some activations instead of keeping them. No
 * allocation happens in a step. An element is a float32, or a bf16 where the network runs
 * in PRECISION_BF16 on a backend that stores 2 bytes per bf16 (backend.h); the executor sets
 * the backend's precision to the network's for each pass. The backward pass writes each
 * gradient (=) at its first contributor and adds (+=) at the later ones: no gradient buffer
 * is zeroed. Weights live in one flat buffer described by the graph's parameter table. */
#ifndef DDIM_GRAPH_H
#define DDIM_GRAPH_H

#include "backend.h"
#include "comm.h"
#include "params.h"

#include <stddef.h>

enum node_kind {
    NODE_CONV,     /* conv2d + bias (kernel shape, stride, padding in the node) */
    NODE_BN,       /* BatchNormalization without center/scale (training or inference) */
    NODE_SWISH,    /* x * sigmoid(x) */
    NODE_ADD,      /* in0 + in1 */
    NODE_CONCAT,   /* [in0 | in1] along channels */
    NODE_POOL,     /* 2x2 average pooling, stride 2 (the U-Net's) */
    NODE_UPSAMPLE, /* 2x bilinear upsampling */
    NODE_EMBED,    /* sinusoidal embedding of the per-example variances */
    /* inference only (no backward): InceptionV3 */
    NODE_RELU,       /* max(x, 0) */
    NODE_POOL2D,     /* max or average k x k pooling with TF padding */
    NODE_GLOBAL_AVG, /* mean over h, w: (h, w, c) -> (1, 1, c) */
    NODE_RESIZE,     /* bilinear resize to the output tensor's h, w */
    NODE_NORMALIZE   /* (x - mean[c]) / sqrt(var[c]) with constant parameters mean, var */
};

struct tensor_desc {
    int h, w, c;
    int needs_grad; /* 0 for inputs, the embedding and every tensor of an inference graph */
};

struct node {
    enum node_kind kind;
    int in0, in1, out;         /* tensor ids; in1 only for add/concat */
    int kh, kw, stride, valid; /* conv: kernel, stride (1 or 2), 'valid' (1) or 'same' */
    int kernel, bias;          /* conv: parameter ids */
    int mean, var;             /* bn: moving statistics; normalize: the constants */
    size_t bn_offset;          /* bn: [saved 2c | stats 2c | bstats 2c] in the bn arena */
    int pool_k, pool_stride;   /* pool2d (with valid) */
    enum pool_mode pool_mode;  /* pool2d */
    float fmin, fmax;          /* embed: frequencies */
};

struct graph {
    struct param_table params;
    struct tensor_desc *tensors;
    int num_tensors, cap_tensors;
    struct node *nodes;
    int num_nodes, cap_nodes;
    size_t bn_floats;  /* bn arena size (independent of batch) */
    int input, output; /* tensor ids */
    float bn_momentum, bn_epsilon;
    int trainable; /* set before building: 0 for an inference-only graph (no gradients) */
    int unfused;   /* 1: every node runs apart (ddim-bench --fuse off); 0: fused (graph_exec.c) */
    /* how its activations are stored and its convolutions computed (backend.h); a network
     * with inference-only nodes takes PRECISION_FP32 or PRECISION_TF32 only */
    enum precision precision;
};

/* --- building (graph.c) --- */
/* A new tensor of h x w x c per example; returns its id. */
int graph_tensor(struct graph *g, int h, int w, int c, int needs_grad);
/* A node of `kind` reading in0 (and in1) into a new tensor (h, w, c); returns the tensor.
 * Outputs need gradients in a trainable graph, but the embedding's. */
int graph_add_simple(struct graph *g, enum node_kind kind, int in0, int in1, int h, int w, int c);
/* Convolution `name` (kernel kh x kw x cin x cout and bias cout in the parameter table). */
int graph_add_conv(struct graph *g, const char *name, int in, int cout, int kh, int kw, int stride,
                   int valid);
int graph_add_bn(struct graph *g, const char *name, int in);
int graph_add_concat(struct graph *g, int a, int b);
int graph_add_pool2d(struct graph *g, int in, int k, int stride, int valid, enum pool_mode mode);
void graph_free(struct graph *g);

/* Forward convolution FLOPs for `batch` examples (2 per multiply-add), from the tensor
 * shapes: what ddim-bench reports, for any network built on the graph. */
double graph_conv_flops(const struct graph *g, int batch);

/* --- the memory plan (graph_plan.c) --- */
enum graph_step_kind {
    GRAPH_STEP_RECOMPUTE, /* run the node's forward again: its output was not kept */
    GRAPH_STEP_BACKWARD   /* the node's backward */
};
struct graph_step {
    enum graph_step_kind kind;
    int node;
};
enum graph_plan_kind {
    GRAPH_PLAN_INFER,    /* forward passes only: every activation freed after its last reader */
    GRAPH_PLAN_TRAIN,    /* forward, then backward: the plan of graph_plan.c */
    GRAPH_PLAN_KEEP_ALL, /* training with every buffer its own memory and nothing recomputed:
                          * the reference tests/test_graph_plan.c holds the plan to */
};
struct graph_plan {
    size_t *value, *grad;     /* per tensor: its offset in the arena in elements; SIZE_MAX: none */
    int *grad_root;           /* per tensor: the tensor whose gradient buffer its gradient
                               * is: itself, or (an add's input that feeds nothing else) the
                               * add's output's (same memory, nothing for the add to pass) */
    int *absorber, *absorbed; /* the fusions graph_exec.c makes unless g->unfused: per node,
                               * the convolution that runs it in its epilogue, or -1; per
                               * convolution, the node it runs so, or -1 */
    struct graph_step *steps; /* the backward pass, in order */
    int num_steps;
    size_t floats; /* the arena's size, in elements (float32 or bf16, graph_acts) */
    int batch;
    enum graph_plan_kind kind;
};
/* The plan of `kind` for `batch` examples. */
struct graph_plan *graph_plan_create(const struct graph *g, int batch, enum graph_plan_kind kind);
void graph_plan_free(struct graph_plan *plan);

/* --- running (graph_exec.c) --- */
struct graph_acts {
    int batch;
    size_t act_size; /* bytes per element: 4, or be->bf16_size in PRECISION_BF16 */
    void *arena;     /* plan->floats elements */
    float *bn;       /* bn_floats */
    struct graph_plan *plan;
    unsigned char *grad_written; /* per tensor, during backward: its gradient holds a value */
    size_t bytes;
};

struct graph_acts *graph_acts_create(struct backend *be, const struct graph *g, int batch,
                                     enum graph_plan_kind kind);
void graph_acts_destroy(struct backend *be, struct graph_acts *acts);
/* The bytes graph_acts_create allocates for `plan` with act_size bytes per activation (4,
 * or a backend's bf16_size): what the arena takes on any backend. */
size_t graph_acts_size(const struct graph *g, const struct graph_plan *plan, size_t act_size);
/* Tensor t of a batch (backend memory, stored as the network's precision says: the ops read
 * it, the caller does not), valid while the plan keeps it: during the node that writes it
 * and those that read it. */
float *graph_value(const struct graph *g, const struct graph_acts *a, int t);

/* out (batch, output tensor) = the graph run on input (batch, input tensor), with `aux` the
 * per-example values NODE_EMBED reads (NULL if none). training: BatchNorm uses the batch
 * statistics summed over the ranks of comm and updates the moving statistics in w. */
void graph_forward(struct backend *be, const struct graph *g, struct graph_acts *a, float *w,
                   const float *input, const float *aux, int training, struct comm *comm,
                   float *out);
/* Whether be can run the network at `batch` examples: every op its nodes call, forward
 * (BatchNorm in training or inference mode) and, when training, backward, at the node's
 * shape (backend_supports: the op is there and supports_op takes the shape). 0, or -1 with
 * the first op and shape refused, and why, in err. Ask before running, when a network meets
 * a backend: a refused shape is then an error at start, not a failure mid-run. */
int graph_check_backend(struct backend *be, const struct graph *g, int batch, int training,
                        char *err, size_t errlen);

/* Told during the backward pass which parameter gradients are final: floats [offset, offset
 * + count) of dw, right after the op that wrote them was enqueued (e.g. to start their
 * all-reduce while the backward pass goes on). */
struct grad_listener {
    void (*written)(void *arg, size_t offset, size_t count);
    void *arg;
};

/* After a training forward: dw = parameter gradients (written, =) for dout; listen (may be
 * NULL) hears of each parameter's gradient as it is written. */
void graph_backward(struct backend *be, const struct graph *g, struct graph_acts *a, const float *w,
                    float *dw, const float *dout, struct comm *comm,
                    const struct grad_listener *listen);

#endif
