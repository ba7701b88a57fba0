/* kid.c: the KID encoder (InceptionV3 on a backend) and the KID arithmetic (kid.h). */
#include "kid.h"
#include "comm.h"
#include "inception.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kid_encoder {
    struct backend *be;
    struct inception *net;
    struct graph_acts *acts;
    float *w;        /* folded weights, backend memory */
    float *input;    /* (batch, S, S, 3): a short last batch is padded with zeros */
    float *features; /* (batch, 2048) */
    int batch, image_size;
};

struct kid_encoder *kid_encoder_create(struct backend *be, const char *weights_path, int image_size,
                                       int kid_image_size, int batch, char *err, size_t errlen)
{
    char missing[256];
    if (backend_missing_inference_ops(be, missing, sizeof missing) != 0) {
        util_error(err, errlen, "the %s backend cannot run InceptionV3 for KID (missing %s)",
                   be->name, missing);
        return NULL;
    }
    if (batch < 1) { /* a rank's share of a KID batch may be one image */
        util_error(err, errlen, "the KID encoder needs a batch of at least 1 image, got %d", batch);
        return NULL;
    }
    struct inception *net = inception_create(image_size, kid_image_size, err, errlen);
    if (!net)
        return NULL;
    const struct graph *g = inception_graph(net);
    if (graph_check_backend(be, g, batch, 0, err, errlen) != 0) { /* every op at its shape */
        inception_destroy(net);
        return NULL;
    }
    float *host = util_xcalloc(g->params.total, sizeof(float));
    if (inception_load_keras_h5(net, weights_path, host, err, errlen) != 0) {
        free(host);
        inception_destroy(net);
        return NULL;
    }
    struct kid_encoder *e = util_xcalloc(1, sizeof *e);
    e->be = be;
    e->net = net;
    e->batch = batch;
    e->image_size = image_size;
    e->w = be->alloc(be, g->params.total * sizeof(float));
    be->upload(be, e->w, host, g->params.total * sizeof(float));
    free(host);
    e->acts = graph_acts_create(be, g, batch, GRAPH_PLAN_INFER);
    e->input = be->alloc(be, (size_t)batch * image_size * image_size * 3 * sizeof(float));
    e->features = be->alloc(be, (size_t)batch * INCEPTION_FEATURES * sizeof(float));
    return e;
}

void kid_encoder_destroy(struct kid_encoder *e)
{
    if (!e)
        return;
    struct backend *be = e->be;
    graph_acts_destroy(be, e->acts);
    be->free(be, e->w);
    be->free(be, e->input);
    be->free(be, e->features);
    inception_destroy(e->net);
    free(e);
}

int kid_encoder_batch(const struct kid_encoder *e)
{
    return e->batch;
}

void kid_encode(struct kid_encoder *e, const float *images, int n, float *features_host)
{
    if (n < 1 || n > e->batch)
        DDIM_FATAL("kid_encode: %d images for an encoder of batch %d", n, e->batch);
    struct backend *be = e->be;
    const struct graph *g = inception_graph(e->net);
    size_t per = (size_t)e->image_size * e->image_size * 3;
    const float *input = images;
    if (n < e->batch) {
        be->fill(be, e->input, 0.0f, (size_t)e->batch * per);
        be->copy(be, e->input, images, (size_t)n * per * sizeof(float));
        input = e->input;
    }
    /* inference only: no BatchNorm statistics, so no communicator is used */
    graph_forward(be, g, e->acts, e->w, input, NULL, 0, NULL, e->features);
    be->download(be, features_host, e->features, (size_t)n * INCEPTION_FEATURES * sizeof(float));
}

/* k(x, y) = (x . y / dims + 1)^3, the dot product in double */
static double poly_kernel(const float *x, const float *y, int dims)
{
    double dot = 0.0;
    for (int k = 0; k < dims; k++)
        dot += (double)x[k] * y[k];
    double v = dot / dims + 1.0;
    return v * v * v;
}

void kid_kernel_sums(const float *real, const float *generated, int n, int dims, double sums[3])
{
    double rr = 0.0, gg = 0.0, rg = 0.0;
    for (int i = 0; i < n; i++) {
        const float *ri = real + (size_t)i * dims, *gi = generated + (size_t)i * dims;
        for (int j = 0; j < n; j++) {
            const float *rj = real + (size_t)j * dims, *gj = generated + (size_t)j * dims;
            if (i != j) {
                rr += poly_kernel(ri, rj, dims);
                gg += poly_kernel(gi, gj, dims);
            }
            rg += poly_kernel(ri, gj, dims);
        }
    }
    sums[KID_SUM_REAL] = rr;
    sums[KID_SUM_GENERATED] = gg;
    sums[KID_SUM_CROSS] = rg;
}

double kid_from_sums(const double sums[3], int n)
{
    double pairs = (double)n * (n - 1);
    return sums[KID_SUM_REAL] / pairs + sums[KID_SUM_GENERATED] / pairs -
           2.0 * sums[KID_SUM_CROSS] / ((double)n * n);
}
