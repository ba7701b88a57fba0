/* inception.c: building InceptionV3 (inception.h) as a graph, and the order in which Keras
 * lists its layers, which is the order its weight file is read in.
 *
 * Keras (tf_keras functional.py, _map_graph_network) orders a model's layers by depth (the
 * longest path to the output, deepest first), ties broken by the order a depth-first walk
 * from the output, inputs in order, first reaches each layer. The walk needs every Keras
 * layer, weighted or not (activations, pools, concatenations), so the builder records each
 * Keras layer it stands for beside the graph nodes it makes (struct klayer). */
#include "inception.h"
#include "h5_util.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_KLAYERS = 512, MAX_CONVS = 128, MAX_COUT = 2048 };

enum klayer_kind { KL_INPUT, KL_CONV, KL_BN, KL_ACT, KL_POOL, KL_CONCAT };

struct klayer {
    enum klayer_kind kind;
    int inputs[4], num_inputs;
    int conv;         /* KL_CONV, KL_BN: index into convs */
    int index, depth; /* Keras's traversal index and depth */
    int state;        /* walk: 0 new, 1 in progress, 2 finished */
};

struct iconv {
    int kh, kw, cin, cout;
    int kernel, bias; /* parameter ids */
};

struct inception {
    struct graph g;
    int image_size;
    struct klayer kl[MAX_KLAYERS];
    int num_kl;
    struct iconv convs[MAX_CONVS];
    int num_convs;
    int pre_mean, pre_var;    /* parameter ids of the [0,1] -> [-1,1] constants */
    int order[2 * MAX_CONVS]; /* the weighted Keras layers (klayer ids) in Keras's order */
    int num_weighted;
};

/* A tensor of the graph and the Keras layer that produced it. */
struct ref {
    int t, kl;
};

static int kl_add(struct inception *net, enum klayer_kind kind, const int *inputs, int n, int conv)
{
    if (net->num_kl == MAX_KLAYERS)
        DDIM_FATAL("inception: more than %d Keras layers", MAX_KLAYERS);
    struct klayer *l = &net->kl[net->num_kl];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    for (int i = 0; i < n; i++)
        l->inputs[i] = inputs[i];
    l->num_inputs = n;
    l->conv = conv;
    l->index = -1;
    return net->num_kl++;
}

/* Keras's conv2d_bn: Conv2D (no bias) + BatchNormalization(scale=False) + ReLU. */
static struct ref conv_bn(struct inception *net, struct ref x, int cout, int kh, int kw, int stride,
                          int valid)
{
    if (net->num_convs == MAX_CONVS)
        DDIM_FATAL("inception: more than %d convolutions", MAX_CONVS);
    char name[32];
    snprintf(name, sizeof name, "inception_conv%02d", net->num_convs);
    struct graph *g = &net->g;
    int cin = g->tensors[x.t].c;
    int t = graph_add_conv(g, name, x.t, cout, kh, kw, stride, valid);
    const struct node *n = &g->nodes[g->num_nodes - 1];
    struct iconv c = {kh, kw, cin, cout, n->kernel, n->bias};
    net->convs[net->num_convs] = c;
    int kc = kl_add(net, KL_CONV, &x.kl, 1, net->num_convs);
    int kb = kl_add(net, KL_BN, &kc, 1, net->num_convs);
    net->num_convs++;
    const struct tensor_desc *o = &g->tensors[t];
    struct ref r = {graph_add_simple(g, NODE_RELU, t, -1, o->h, o->w, o->c), 0};
    r.kl = kl_add(net, KL_ACT, &kb, 1, -1);
    return r;
}

/* MaxPooling2D((3, 3), strides=(2, 2)) or AveragePooling2D((3, 3), strides=(1, 1),
 * padding="same"): the only two pools InceptionV3 has. */
static struct ref pool(struct inception *net, struct ref x, enum pool_mode mode)
{
    struct ref r;
    if (mode == POOL_MAX)
        r.t = graph_add_pool2d(&net->g, x.t, 3, 2, 1, POOL_MAX);
    else
        r.t = graph_add_pool2d(&net->g, x.t, 3, 1, 0, POOL_AVG);
    r.kl = kl_add(net, KL_POOL, &x.kl, 1, -1);
    return r;
}

/* One Keras Concatenate of n parts, as a chain of two-input concatenations. */
static struct ref concat(struct inception *net, const struct ref *parts, int n)
{
    int ins[4];
    struct ref r = parts[0];
    ins[0] = parts[0].kl;
    for (int i = 1; i < n; i++) {
        r.t = graph_add_concat(&net->g, r.t, parts[i].t);
        ins[i] = parts[i].kl;
    }
    r.kl = kl_add(net, KL_CONCAT, ins, n, -1);
    return r;
}

/* mixed0..2 (35x35 at 299 px): 1x1, 5x5, double 3x3 and pooled branches */
static struct ref block_a(struct inception *net, struct ref x, int pool_features)
{
    struct ref b[4];
    b[0] = conv_bn(net, x, 64, 1, 1, 1, 0);
    b[1] = conv_bn(net, conv_bn(net, x, 48, 1, 1, 1, 0), 64, 5, 5, 1, 0);
    b[2] = conv_bn(net, x, 64, 1, 1, 1, 0);
    b[2] = conv_bn(net, conv_bn(net, b[2], 96, 3, 3, 1, 0), 96, 3, 3, 1, 0);
    b[3] = conv_bn(net, pool(net, x, POOL_AVG), pool_features, 1, 1, 1, 0);
    return concat(net, b, 4);
}

/* mixed3: the grid halves */
static struct ref block_b(struct inception *net, struct ref x)
{
    struct ref b[3];
    b[0] = conv_bn(net, x, 384, 3, 3, 2, 1);
    b[1] = conv_bn(net, x, 64, 1, 1, 1, 0);
    b[1] = conv_bn(net, conv_bn(net, b[1], 96, 3, 3, 1, 0), 96, 3, 3, 2, 1);
    b[2] = pool(net, x, POOL_MAX);
    return concat(net, b, 3);
}

/* mixed4..7: factorized 7x7 convolutions with c7 channels */
static struct ref block_c(struct inception *net, struct ref x, int c7)
{
    struct ref b[4];
    b[0] = conv_bn(net, x, 192, 1, 1, 1, 0);
    b[1] = conv_bn(net, x, c7, 1, 1, 1, 0);
    b[1] = conv_bn(net, conv_bn(net, b[1], c7, 1, 7, 1, 0), 192, 7, 1, 1, 0);
    b[2] = conv_bn(net, x, c7, 1, 1, 1, 0);
    b[2] = conv_bn(net, conv_bn(net, b[2], c7, 7, 1, 1, 0), c7, 1, 7, 1, 0);
    b[2] = conv_bn(net, conv_bn(net, b[2], c7, 7, 1, 1, 0), 192, 1, 7, 1, 0);
    b[3] = conv_bn(net, pool(net, x, POOL_AVG), 192, 1, 1, 1, 0);
    return concat(net, b, 4);
}

/* mixed8: the grid halves again */
static struct ref block_d(struct inception *net, struct ref x)
{
    struct ref b[3];
    b[0] = conv_bn(net, conv_bn(net, x, 192, 1, 1, 1, 0), 320, 3, 3, 2, 1);
    b[1] = conv_bn(net, x, 192, 1, 1, 1, 0);
    b[1] = conv_bn(net, conv_bn(net, b[1], 192, 1, 7, 1, 0), 192, 7, 1, 1, 0);
    b[1] = conv_bn(net, b[1], 192, 3, 3, 2, 1);
    b[2] = pool(net, x, POOL_MAX);
    return concat(net, b, 3);
}

/* mixed9, mixed10: expanded filter banks (1x3 and 3x1 side by side) */
static struct ref block_e(struct inception *net, struct ref x)
{
    struct ref b[4], pair[2];
    b[0] = conv_bn(net, x, 320, 1, 1, 1, 0);
    struct ref t = conv_bn(net, x, 384, 1, 1, 1, 0);
    pair[0] = conv_bn(net, t, 384, 1, 3, 1, 0);
    pair[1] = conv_bn(net, t, 384, 3, 1, 1, 0);
    b[1] = concat(net, pair, 2);
    t = conv_bn(net, conv_bn(net, x, 448, 1, 1, 1, 0), 384, 3, 3, 1, 0);
    pair[0] = conv_bn(net, t, 384, 1, 3, 1, 0);
    pair[1] = conv_bn(net, t, 384, 3, 1, 1, 0);
    b[2] = concat(net, pair, 2);
    b[3] = conv_bn(net, pool(net, x, POOL_AVG), 192, 1, 1, 1, 0);
    return concat(net, b, 4);
}

/* Keras's depth-first walk from the output (_build_map_helper): the traversal index when a
 * layer is first reached, and the finished layers in post order. */
static void walk(struct inception *net, int id, int *post, int *num_post, int *next_index)
{
    struct klayer *l = &net->kl[id];
    if (l->state == 2)
        return;
    if (l->index < 0)
        l->index = (*next_index)++;
    l->state = 1;
    for (int i = 0; i < l->num_inputs; i++)
        walk(net, l->inputs[i], post, num_post, next_index);
    l->state = 2;
    post[(*num_post)++] = id;
}

static const struct inception *sort_net; /* qsort has no context argument */

static int keras_order_cmp(const void *pa, const void *pb)
{
    const struct klayer *a = &sort_net->kl[*(const int *)pa], *b = &sort_net->kl[*(const int *)pb];
    if (a->depth != b->depth)
        return a->depth > b->depth ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* net->order: the weighted layers as Keras lists them (model.layers). */
static void keras_order(struct inception *net, int output_kl)
{
    int post[MAX_KLAYERS], num_post = 0, next_index = 0, ids[MAX_KLAYERS];
    walk(net, output_kl, post, &num_post, &next_index);
    /* depth: 0 at the output, each input at least one more than its consumer */
    for (int i = num_post - 1; i >= 0; i--) {
        const struct klayer *l = &net->kl[post[i]];
        for (int j = 0; j < l->num_inputs; j++) {
            struct klayer *in = &net->kl[l->inputs[j]];
            if (in->depth < l->depth + 1)
                in->depth = l->depth + 1;
        }
    }
    for (int i = 0; i < num_post; i++)
        ids[i] = post[i];
    sort_net = net;
    qsort(ids, (size_t)num_post, sizeof ids[0], keras_order_cmp);
    net->num_weighted = 0;
    for (int i = 0; i < num_post; i++)
        if (net->kl[ids[i]].kind == KL_CONV || net->kl[ids[i]].kind == KL_BN)
            net->order[net->num_weighted++] = ids[i];
}

struct inception *inception_create(int image_size, int input_size, char *err, size_t errlen)
{
    if (image_size < 1 || image_size > 4096) {
        util_error(err, errlen, "inception: image size %d out of range 1..4096", image_size);
        return NULL;
    }
    if (input_size < INCEPTION_INPUT_SIZE || input_size > 4096) {
        util_error(err, errlen,
                   "inception: input size %d out of range %d..4096 (InceptionV3's smallest)",
                   input_size, INCEPTION_INPUT_SIZE);
        return NULL;
    }
    struct inception *net = util_xcalloc(1, sizeof *net);
    struct graph *g = &net->g;
    net->image_size = image_size;
    g->precision = PRECISION_TF32; /* KID's metric: as every GPU ran it, whatever the U-Net's */
    int s = input_size, three[1] = {3};
    g->input = graph_tensor(g, image_size, image_size, 3, 0);
    int t = graph_add_simple(g, NODE_RESIZE, g->input, -1, s, s, 3);
    t = graph_add_simple(g, NODE_NORMALIZE, t, -1, s, s, 3);
    net->pre_mean = params_add(&g->params, "inception_preprocess", PARAM_MOVING_MEAN, 1, three);
    net->pre_var = params_add(&g->params, "inception_preprocess", PARAM_MOVING_VARIANCE, 1, three);
    g->nodes[g->num_nodes - 1].mean = net->pre_mean;
    g->nodes[g->num_nodes - 1].var = net->pre_var;

    struct ref x = {t, kl_add(net, KL_INPUT, NULL, 0, -1)};
    x = conv_bn(net, x, 32, 3, 3, 2, 1);
    x = conv_bn(net, x, 32, 3, 3, 1, 1);
    x = conv_bn(net, x, 64, 3, 3, 1, 0);
    x = pool(net, x, POOL_MAX);
    x = conv_bn(net, x, 80, 1, 1, 1, 1);
    x = conv_bn(net, x, 192, 3, 3, 1, 1);
    x = pool(net, x, POOL_MAX);
    x = block_a(net, x, 32);
    x = block_a(net, x, 64);
    x = block_a(net, x, 64);
    x = block_b(net, x);
    x = block_c(net, x, 128);
    x = block_c(net, x, 160);
    x = block_c(net, x, 160);
    x = block_c(net, x, 192);
    x = block_d(net, x);
    x = block_e(net, x);
    x = block_e(net, x);
    keras_order(net, x.kl);
    const struct tensor_desc *o = &g->tensors[x.t];
    g->output = graph_add_simple(g, NODE_GLOBAL_AVG, x.t, -1, 1, 1, o->c);
    params_finalize(&g->params);
    return net;
}

void inception_destroy(struct inception *net)
{
    if (!net)
        return;
    graph_free(&net->g);
    free(net);
}

const struct graph *inception_graph(const struct inception *net)
{
    return &net->g;
}

/* --- Keras's weight file -------------------------------------------------------------- */

struct file_layer {
    char *name;
    char **weights;
    int num_weights;
};

static void free_file_layers(struct file_layer *fl, int n)
{
    for (int i = 0; i < n; i++) {
        free(fl[i].name);
        h5u_free_strings(fl[i].weights, fl[i].num_weights);
    }
    free(fl);
}

/* A list of names as Keras stores it: attribute `attr` of `obj`, or, when the list is too
 * long for one HDF5 object header (64 KiB), its chunks `attr`0, `attr`1, ... in order
 * (tf_keras saving/legacy/hdf5_format.py, save_attributes_to_hdf5_group). */
static int read_keras_names(hid_t f, const char *path, const char *obj, const char *attr,
                            char ***out, int *count, char *err, size_t errlen)
{
    if (H5Aexists_by_name(f, obj, attr, H5P_DEFAULT) > 0)
        return h5u_read_attr_strings(f, path, obj, attr, out, count, err, errlen);
    char chunk[128];
    int n = 0;
    char **all = NULL;
    for (int k = 0;; k++) {
        snprintf(chunk, sizeof chunk, "%s%d", attr, k);
        if (H5Aexists_by_name(f, obj, chunk, H5P_DEFAULT) <= 0)
            break;
        char **part = NULL;
        int m = 0;
        if (h5u_read_attr_strings(f, path, obj, chunk, &part, &m, err, errlen) != 0) {
            h5u_free_strings(all, n);
            return -1;
        }
        all = realloc(all, ((size_t)n + (size_t)m + 1) * sizeof *all);
        if (!all)
            DDIM_FATAL("out of host memory reading attribute '%s' of '%s' in %s", chunk, obj, path);
        memcpy(all + n, part, (size_t)m * sizeof *part);
        n += m;
        free(part); /* the strings now belong to all */
    }
    if (!all) /* neither the attribute nor its chunks: the error names the attribute */
        return h5u_read_attr_strings(f, path, obj, attr, out, count, err, errlen);
    *out = all;
    *count = n;
    return 0;
}

/* The layers of the file that have weights, in the file's order (as Keras filters them). */
static int read_file_layers(hid_t f, const char *path, struct file_layer **out, int *count,
                            char *err, size_t errlen)
{
    char **names = NULL;
    int n = 0, kept = 0, rc = 0;
    *out = NULL;
    *count = 0;
    if (read_keras_names(f, path, "/", "layer_names", &names, &n, err, errlen) != 0)
        return -1;
    struct file_layer *fl = util_xcalloc(n ? (size_t)n : 1, sizeof *fl);
    for (int i = 0; i < n && rc == 0; i++) {
        char **w = NULL;
        int nw = 0;
        if (!h5u_exists(f, names[i]))
            rc = util_error(err, errlen, "%s: layer '%s' is listed in layer_names but has no group",
                            path, names[i]);
        else if (read_keras_names(f, path, names[i], "weight_names", &w, &nw, err, errlen))
            rc = -1;
        else if (nw == 0)
            h5u_free_strings(w, nw);
        else {
            fl[kept].name = names[i];
            names[i] = NULL;
            fl[kept].weights = w;
            fl[kept++].num_weights = nw;
        }
    }
    h5u_free_strings(names, n);
    if (rc != 0) {
        free_file_layers(fl, kept);
        return -1;
    }
    *out = fl;
    *count = kept;
    return 0;
}

/* Weight j of file layer fl, which must have shape want (ndim dims), into out. */
static int read_weight(hid_t f, const char *path, const struct file_layer *fl, int j,
                       const int *want, int ndim, float *out, const char *what, char *err,
                       size_t errlen)
{
    char ds[512], got_s[96] = "", want_s[96] = "";
    snprintf(ds, sizeof ds, "/%s/%s", fl->name, fl->weights[j]);
    size_t shape[H5U_MAX_DIMS], count = 1;
    int got_ndim = 0, same = 1;
    if (h5u_shape(f, path, ds, &got_ndim, shape, err, errlen) != 0)
        return -1;
    for (int d = 0; d < ndim || d < got_ndim; d++) {
        if (d < got_ndim)
            snprintf(got_s + strlen(got_s), sizeof got_s - strlen(got_s), "%s%zu", d ? "," : "",
                     shape[d]);
        if (d < ndim) {
            snprintf(want_s + strlen(want_s), sizeof want_s - strlen(want_s), "%s%d", d ? "," : "",
                     want[d]);
            count *= (size_t)want[d];
        }
        same = same && d < ndim && d < got_ndim && shape[d] == (size_t)want[d];
    }
    if (!same)
        return util_error(err, errlen,
                          "%s: layer '%s': weight '%s' has shape (%s), expected (%s) for the %s of "
                          "InceptionV3 without its top (is this the notop file of "
                          "keras.applications.InceptionV3?)",
                          path, fl->name, fl->weights[j], got_s, want_s, what);
    return h5u_read_finite_floats(f, path, ds, out, count, err, errlen);
}

/* One weighted Keras layer: a Conv2D's kernel into w, or a BatchNorm's beta, moving mean and
 * moving variance into bn (3 x cout). */
static int read_layer(hid_t f, const char *path, const struct file_layer *fl,
                      const struct klayer *kl, const struct iconv *c, float *kernel, float *bn,
                      char *err, size_t errlen)
{
    int conv = kl->kind == KL_CONV, want_n = conv ? 1 : 3;
    if (fl->num_weights != want_n)
        return util_error(err, errlen,
                          "%s: layer '%s' has %d weights, expected %d for a %s (%dx%d, %d -> %d "
                          "channels) of InceptionV3 without its top, in Keras's layer order",
                          path, fl->name, fl->num_weights, want_n,
                          conv ? "Conv2D kernel" : "BatchNormalization (beta, mean, variance)",
                          c->kh, c->kw, c->cin, c->cout);
    if (conv) {
        int shape[4] = {c->kh, c->kw, c->cin, c->cout};
        return read_weight(f, path, fl, 0, shape, 4, kernel, "Conv2D kernel", err, errlen);
    }
    static const char *names[3] = {"BatchNorm beta", "BatchNorm moving mean",
                                   "BatchNorm moving variance"};
    for (int j = 0; j < 3; j++)
        if (read_weight(f, path, fl, j, &c->cout, 1, bn + (size_t)j * c->cout, names[j], err,
                        errlen) != 0)
            return -1;
    for (int o = 0; o < c->cout; o++) /* folded as 1/sqrt(variance + 1e-3) */
        if (bn[2 * (size_t)c->cout + o] < 0.0f)
            return util_error(err, errlen,
                              "%s: layer '%s': weight '%s' holds the variance %g at element %d: a "
                              "variance is never negative (the file is damaged)",
                              path, fl->name, fl->weights[2], (double)bn[2 * (size_t)c->cout + o],
                              o);
    return 0;
}

/* BatchNorm in inference mode after the convolution, folded in: with inv = 1/sqrt(var + eps),
 * BN(conv(x)) = conv(x) * inv + (beta - mean * inv) = conv'(x) + bias'. */
static void fold_bn(const struct iconv *c, float *kernel, float *bias, const float *bn)
{
    const float *beta = bn, *mean = bn + c->cout, *var = bn + 2 * (size_t)c->cout;
    size_t rows = (size_t)c->kh * c->kw * c->cin;
    for (int o = 0; o < c->cout; o++) {
        double inv = 1.0 / sqrt((double)var[o] + 1e-3); /* Keras's default epsilon */
        for (size_t r = 0; r < rows; r++)
            kernel[r * c->cout + o] = (float)(kernel[r * c->cout + o] * inv);
        bias[o] = (float)(beta[o] - mean[o] * inv);
    }
}

int inception_load_keras_h5(const struct inception *net, const char *path, float *w, char *err,
                            size_t errlen)
{
    char why[768];
    hid_t f = h5u_open_read(path, why, sizeof why);
    if (f < 0)
        return util_error(err, errlen,
                          "%s (InceptionV3 weights: Keras's "
                          "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5, see "
                          "docs/kid.md)",
                          why);
    struct file_layer *fl = NULL;
    int n = 0, rc = read_file_layers(f, path, &fl, &n, err, errlen);
    if (rc == 0 && n != net->num_weighted)
        rc = util_error(err, errlen,
                        "%s: %d layers with weights, InceptionV3 without its top has %d (%d "
                        "Conv2D + %d BatchNormalization): is this "
                        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5?",
                        path, n, net->num_weighted, net->num_convs, net->num_convs);
    const struct param_table *pt = &net->g.params;
    float *bn = util_xcalloc((size_t)net->num_convs * 3 * MAX_COUT, sizeof(float));
    for (int i = 0; rc == 0 && i < n; i++) {
        const struct klayer *kl = &net->kl[net->order[i]];
        const struct iconv *c = &net->convs[kl->conv];
        rc = read_layer(f, path, &fl[i], kl, c, w + pt->items[c->kernel].offset,
                        bn + (size_t)kl->conv * 3 * MAX_COUT, err, errlen);
    }
    for (int i = 0; rc == 0 && i < net->num_convs; i++) {
        const struct iconv *c = &net->convs[i];
        fold_bn(c, w + pt->items[c->kernel].offset, w + pt->items[c->bias].offset,
                bn + (size_t)i * 3 * MAX_COUT);
    }
    /* Rescaling(255) then x / 127.5 - 1 is (x - 0.5) / 0.5 on [0, 1] images */
    for (int j = 0; j < 3; j++) {
        w[pt->items[net->pre_mean].offset + j] = 0.5f;
        w[pt->items[net->pre_var].offset + j] = 0.25f;
    }
    free(bn);
    free_file_layers(fl, n);
    H5Fclose(f);
    return rc;
}
