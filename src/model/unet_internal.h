/* unet_internal.h: the U-Net as a graph (graph.h), shared by unet.c (which builds it) and
 * unet_exec.c (which runs it through the graph executor). Not for use outside the model. */
#ifndef DDIM_UNET_INTERNAL_H
#define DDIM_UNET_INTERNAL_H

#include "graph.h"
#include "unet.h"

struct unet {
    struct unet_config cfg;
    struct graph g; /* input: the noisy images; output: the predicted noises */
};

struct unet_acts {
    struct graph_acts *ga;
};

#endif
