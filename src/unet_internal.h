/* unet_internal.h: the U-Net's node list and activation arenas, shared by unet.c (which
 * builds them) and unet_exec.c (which runs them). Not for use outside the model. */
#ifndef DDIM_UNET_INTERNAL_H
#define DDIM_UNET_INTERNAL_H

#include "unet.h"

enum node_kind {
    NODE_CONV,
    NODE_BN,
    NODE_SWISH,
    NODE_ADD,
    NODE_CONCAT,
    NODE_POOL,
    NODE_UPSAMPLE,
    NODE_EMBED
};

struct tensor_desc {
    size_t offset; /* floats per example before this tensor in the arena */
    int h, w, c;
    int needs_grad; /* 0 for the input images and the embedding */
};

struct node {
    enum node_kind kind;
    int in0, in1, out; /* tensor ids; in1 only for add/concat */
    int k;             /* conv kernel size */
    int kernel, bias;  /* conv: parameter ids */
    int mean, var;     /* bn: parameter ids of the moving statistics */
    size_t bn_offset;  /* bn: [saved 2c | stats 2c | bstats 2c] in the bn arena */
};

struct unet {
    struct unet_config cfg;
    struct param_table params;
    struct tensor_desc *tensors;
    int num_tensors, cap_tensors;
    struct node *nodes;
    int num_nodes, cap_nodes;
    size_t floats_per_example; /* activation arena size per example */
    size_t bn_floats;          /* bn arena size (independent of batch) */
    int input, output;         /* tensor ids */
};

struct unet_acts {
    int batch;
    float *act;  /* (batch * floats_per_example) */
    float *grad; /* same layout, or NULL for inference */
    float *bn;   /* bn_floats */
    size_t bytes;
};

#endif
