/* unet.c: the Keras example's residual U-Net as a node list over the backend op table.
 * See unet.h for the shape of the design; the Keras layer structure it mirrors is
 * get_network / ResidualBlock / DownBlock / UpBlock in the reference example. */
#include "unet.h"
#include "config.h"
#include "rng.h"
#include "unet_internal.h"
#include "util.h"
#include "weights_h5.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- the shape that files store (io/weights_h5.h) ------------------------------------- */

void unet_shape_of_config(const struct unet_config *u, struct model_shape *s)
{
    memset(s, 0, sizeof *s);
    s->image_size = u->image_size;
    s->num_levels = u->num_levels;
    for (int i = 0; i < u->num_levels && i < MODEL_SHAPE_MAX_LEVELS; i++)
        s->widths[i] = u->widths[i];
    s->block_depth = u->block_depth;
    s->embedding_dims = u->embedding_dims;
}

void unet_shape_to_config(struct unet_config *u, const struct model_shape *s)
{
    u->image_size = s->image_size;
    u->num_levels = s->num_levels;
    for (int i = 0; i < s->num_levels && i < UNET_MAX_LEVELS; i++)
        u->widths[i] = s->widths[i];
    u->block_depth = s->block_depth;
    u->embedding_dims = s->embedding_dims;
}

/* --- building (on graph.h's builder) ---------------------------------------------------- */

static int add_conv(struct unet *net, const char *name, int in, int cout, int k)
{
    return graph_add_conv(&net->g, name, in, cout, k, k, 1, 0);
}

static int add_simple(struct unet *net, enum node_kind kind, int in0, int in1, int h, int w, int c)
{
    return graph_add_simple(&net->g, kind, in0, in1, h, w, c);
}

/* Keras ResidualBlock(width): residual = x or 1x1 conv(x); BN (no center/scale); 3x3 conv
 * with swish; 3x3 conv; add. */
static int add_res_block(struct unet *net, const char *prefix, int x, int width)
{
    char name[64];
    int residual = x;
    if (net->g.tensors[x].c != width) {
        snprintf(name, sizeof name, "%s_skip", prefix);
        residual = add_conv(net, name, x, width, 1);
    }
    snprintf(name, sizeof name, "%s_bn", prefix);
    int h = graph_add_bn(&net->g, name, x);
    snprintf(name, sizeof name, "%s_conv1", prefix);
    h = add_conv(net, name, h, width, 3);
    const struct tensor_desc *t = &net->g.tensors[h];
    h = add_simple(net, NODE_SWISH, h, -1, t->h, t->w, t->c);
    snprintf(name, sizeof name, "%s_conv2", prefix);
    h = add_conv(net, name, h, width, 3);
    t = &net->g.tensors[h];
    return add_simple(net, NODE_ADD, h, residual, t->h, t->w, t->c);
}

struct unet *unet_create(const struct unet_config *cfg, char *err, size_t errlen)
{
    if (config_check_model(cfg, err, errlen) != 0)
        return NULL;
    struct unet *net = util_xcalloc(1, sizeof *net);
    net->cfg = *cfg;
    int s = cfg->image_size, L = cfg->num_levels, D = cfg->block_depth;
    char name[64];

    struct graph *g = &net->g;
    g->trainable = 1;
    g->bn_momentum = cfg->bn_momentum;
    g->bn_epsilon = cfg->bn_epsilon;
    g->input = graph_tensor(g, s, s, 3, 0);
    int x = add_conv(net, "stem", g->input, cfg->widths[0], 1);
    int e = add_simple(net, NODE_EMBED, -1, -1, s, s, cfg->embedding_dims);
    g->nodes[g->num_nodes - 1].fmin = cfg->embedding_min_frequency;
    g->nodes[g->num_nodes - 1].fmax = cfg->embedding_max_frequency;
    x = graph_add_concat(g, x, e);

    int skips[UNET_MAX_LEVELS * 16], num_skips = 0;
    for (int l = 0; l < L - 1; l++) {
        for (int j = 0; j < D; j++) {
            snprintf(name, sizeof name, "down%d_block%d", l, j);
            x = add_res_block(net, name, x, cfg->widths[l]);
            skips[num_skips++] = x;
        }
        const struct tensor_desc *t = &g->tensors[x];
        x = add_simple(net, NODE_POOL, x, -1, t->h / 2, t->w / 2, t->c);
    }
    for (int j = 0; j < D; j++) {
        snprintf(name, sizeof name, "mid_block%d", j);
        x = add_res_block(net, name, x, cfg->widths[L - 1]);
    }
    for (int l = L - 2; l >= 0; l--) {
        const struct tensor_desc *t = &g->tensors[x];
        x = add_simple(net, NODE_UPSAMPLE, x, -1, t->h * 2, t->w * 2, t->c);
        for (int j = 0; j < D; j++) {
            x = graph_add_concat(g, x, skips[--num_skips]);
            snprintf(name, sizeof name, "up%d_block%d", l, j);
            x = add_res_block(net, name, x, cfg->widths[l]);
        }
    }
    g->output = add_conv(net, "head", x, 3, 1);
    params_finalize(&g->params);
    return net;
}

void unet_destroy(struct unet *net)
{
    if (!net)
        return;
    graph_free(&net->g);
    free(net);
}

const struct graph *unet_graph(const struct unet *net)
{
    return &net->g;
}

void unet_set_fusion(struct unet *net, int on)
{
    net->g.unfused = !on;
}

const struct param_table *unet_params(const struct unet *net)
{
    return &net->g.params;
}

const struct unet_config *unet_get_config(const struct unet *net)
{
    return &net->cfg;
}

void unet_init_weights(const struct unet *net, float *w_host, uint64_t seed, uint32_t stream)
{
    const struct param_table *pt = &net->g.params;
    for (int i = 0; i < pt->count; i++) {
        const struct param *p = &pt->items[i];
        float *dst = w_host + p->offset;
        float value = p->kind == PARAM_MOVING_VARIANCE ? 1.0f : 0.0f;
        int zero_kernel = strcmp(p->name, "head/kernel") == 0; /* kernel_initializer="zeros" */
        if (p->kind != PARAM_KERNEL || zero_kernel) {
            for (size_t j = 0; j < p->count; j++)
                dst[j] = value;
            continue;
        }
        /* glorot uniform: limit = sqrt(6 / (fan_in + fan_out)), fans include k*k */
        double rf = (double)p->shape[0] * p->shape[1];
        double limit = sqrt(6.0 / (rf * p->shape[2] + rf * p->shape[3]));
        for (size_t j = 0; j < p->count; j++) {
            float u = rng_uniform(seed, RNG_INIT, stream, (uint32_t)i, (uint32_t)j);
            dst[j] = (float)((2.0 * u - 1.0) * limit);
        }
    }
}
