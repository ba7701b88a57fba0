/* test_infer_ops.c: the CPU backend's inference-only ops (InceptionV3 for KID) against
 * naive references written from TensorFlow's definitions, with the output sizes and
 * paddings worked out by hand in the case tables (not by the helpers under test).
 *
 * Tolerances: the convolution reference sums in double; the op sums k*k*cin float32
 * products in oneDNN's order: |error| <= 1e-5 + 1e-5*|want| for values of order 1 and at most
 * 5*5*8 = 200 terms (float32 rounding ~ sqrt(200) * 6e-8 * sum|terms| < 1e-5). A wrong tap,
 * padding side or stride moves outputs by O(1). Pooling, resizing and ReLU are exact float32
 * operations in the same order as the reference: atol 1e-6. */
#include "backend.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct backend *be;

struct conv_case {
    const char *name;
    int h, w, cin, cout, kh, kw, stride, valid;
    int ho, wo, pad_top, pad_left; /* worked out by hand */
};

static const struct conv_case conv_cases[] = {
    {"3x3 s2 valid 9x9", 9, 9, 3, 4, 3, 3, 2, 1, 4, 4, 0, 0},
    {"3x3 s1 valid 7x6", 7, 6, 2, 3, 3, 3, 1, 1, 5, 4, 0, 0},
    {"3x3 s1 same 7x6", 7, 6, 2, 3, 3, 3, 1, 0, 7, 6, 1, 1},
    {"1x7 same 6x9", 6, 9, 3, 2, 1, 7, 1, 0, 6, 9, 0, 3},
    {"7x1 same 9x6", 9, 6, 3, 2, 7, 1, 1, 0, 9, 6, 3, 0},
    {"1x3 same 5x5", 5, 5, 4, 3, 1, 3, 1, 0, 5, 5, 0, 1},
    {"3x1 same 5x5", 5, 5, 4, 3, 3, 1, 1, 0, 5, 5, 1, 0},
    {"5x5 same 6x6", 6, 6, 8, 5, 5, 5, 1, 0, 6, 6, 2, 2},
    {"1x1 s1 valid", 4, 5, 6, 7, 1, 1, 1, 1, 4, 5, 0, 0},
    {"1x1 s2 valid 5x5", 5, 5, 3, 2, 1, 1, 2, 1, 3, 3, 0, 0},
    /* 'same' at stride 2: out ceil(8/2) = 4, pad_total (4-1)*2+3-8 = 1: 0 before, 1 after */
    {"3x3 s2 same 8x8", 8, 8, 3, 2, 3, 3, 2, 0, 4, 4, 0, 0},
    /* out 4, pad_total 6+3-7 = 2: 1 before, 1 after */
    {"3x3 s2 same 7x7", 7, 7, 3, 2, 3, 3, 2, 0, 4, 4, 1, 1},
};

static void check_conv(const struct conv_case *c)
{
    int n = 2;
    struct conv_shape s = {n, c->h, c->w, c->cin, c->cout, 0, c->kh, c->kw, c->stride, c->valid};
    if (conv_out_h(&s) != c->ho || conv_out_w(&s) != c->wo) {
        test_fail("conv %s: output %dx%d, expected %dx%d", c->name, conv_out_h(&s), conv_out_w(&s),
                  c->ho, c->wo);
        return;
    }
    size_t nx = (size_t)n * c->h * c->w * c->cin, nw = (size_t)c->kh * c->kw * c->cin * c->cout;
    size_t ny = (size_t)n * c->ho * c->wo * c->cout;
    float *x = test_alloc_normal(nx, 1.0f), *w = test_alloc_normal(nw, 0.3f);
    float *b = test_alloc_normal((size_t)c->cout, 1.0f), *want = test_alloc_zeros(ny);
    float *y = be->alloc(be, ny * sizeof(float));
    for (size_t i = 0; i < ny; i++)
        y[i] = NAN; /* written, never read */
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < c->ho; oy++)
            for (int ox = 0; ox < c->wo; ox++)
                for (int co = 0; co < c->cout; co++) {
                    double acc = b[co];
                    for (int ky = 0; ky < c->kh; ky++)
                        for (int kx = 0; kx < c->kw; kx++) {
                            int sy = oy * c->stride + ky - c->pad_top;
                            int sx = ox * c->stride + kx - c->pad_left;
                            if (sy < 0 || sy >= c->h || sx < 0 || sx >= c->w)
                                continue;
                            for (int ci = 0; ci < c->cin; ci++)
                                acc +=
                                    (double)x[(((size_t)i * c->h + sy) * c->w + sx) * c->cin + ci] *
                                    w[(((size_t)ky * c->kw + kx) * c->cin + ci) * c->cout + co];
                        }
                    want[(((size_t)i * c->ho + oy) * c->wo + ox) * c->cout + co] = (float)acc;
                }
    be->conv2d_forward(be, y, x, w, b, &s, NULL);
    char label[96];
    snprintf(label, sizeof label, "conv %s", c->name);
    test_close(label, y, want, ny, 1e-5f, 1e-5f);
    free(x);
    free(w);
    free(b);
    free(want);
    be->free(be, y);
}

/* Pooling by definition: the window's cells inside the image, max or their mean. */
static void check_pool(const char *name, int h, int w, int k, int stride, int valid, int ho, int wo,
                       int pad, enum pool_mode mode, int ones)
{
    int n = 2, c = 3;
    struct pool_shape s = {n, h, w, c, k, stride, valid, mode};
    size_t nx = (size_t)n * h * w * c, ny = (size_t)n * ho * wo * c;
    float *x = test_alloc_normal(nx, 1.0f), *want = test_alloc_zeros(ny);
    float *y = test_alloc_zeros(ny);
    if (ones)
        for (size_t i = 0; i < nx; i++)
            x[i] = 1.0f;
    for (int i = 0; i < n; i++)
        for (int oy = 0; oy < ho; oy++)
            for (int ox = 0; ox < wo; ox++)
                for (int j = 0; j < c; j++) {
                    float best = -INFINITY, sum = 0.0f;
                    int count = 0;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int sy = oy * stride + ky - pad, sx = ox * stride + kx - pad;
                            if (sy < 0 || sy >= h || sx < 0 || sx >= w)
                                continue;
                            float v = x[(((size_t)i * h + sy) * w + sx) * c + j];
                            best = v > best ? v : best;
                            sum += v;
                            count++;
                        }
                    want[(((size_t)i * ho + oy) * wo + ox) * c + j] =
                        mode == POOL_MAX ? best : sum / (float)count;
                }
    be->pool_forward(be, y, x, &s);
    test_close(name, y, want, ny, 1e-6f, 1e-6f);
    free(x);
    free(want);
    free(y);
}

static void check_global_avgpool(void)
{
    int n = 3, h = 4, w = 5, c = 6;
    size_t nx = (size_t)n * h * w * c;
    float *x = test_alloc_normal(nx, 1.0f), *want = test_alloc_zeros((size_t)n * c);
    float *y = test_alloc_zeros((size_t)n * c);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < c; j++) {
            double acc = 0.0;
            for (int p = 0; p < h * w; p++)
                acc += x[((size_t)i * h * w + p) * c + j];
            want[i * c + j] = (float)(acc / (h * w));
        }
    be->global_avgpool_forward(be, y, x, n, h, w, c);
    test_close("global avgpool", y, want, (size_t)n * c, 1e-6f, 1e-6f);
    free(x);
    free(want);
    free(y);
}

static void check_resize(void)
{
    /* 2x2 -> 3x3 by hand: src = (o + 0.5) * 2/3 - 0.5 = -1/6, 1/2, 7/6: rows/cols 0, the
     * midpoint, 1 (the clamped taps) */
    float a = 1.0f, b = 2.0f, c = 4.0f, d = 8.0f;
    float x[4] = {a, b, c, d}, y[9];
    float want[9] = {a, (a + b) / 2, b, (a + c) / 2, (a + b + c + d) / 4, (b + d) / 2,
                     c, (c + d) / 2, d};
    be->resize_bilinear_forward(be, y, x, 1, 2, 2, 1, 3, 3);
    test_close("resize 2x2->3x3 by hand", y, want, 9, 1e-6f, 1e-6f);

    /* doubling: the same rule as the U-Net's upsample2 (scale exactly 0.5): same bits */
    int n = 2, h = 5, w = 3, ch = 4;
    size_t nx = (size_t)n * h * w * ch, ny = nx * 4;
    float *xi = test_alloc_normal(nx, 1.0f), *y1 = test_alloc_zeros(ny), *y2 = test_alloc_zeros(ny);
    be->resize_bilinear_forward(be, y1, xi, n, h, w, ch, 2 * h, 2 * w);
    be->upsample2_forward(be, y2, xi, n, h, w, ch);
    test_close("resize 2x == upsample2", y1, y2, ny, 0.0f, 0.0f);
    free(xi);
    free(y1);
    free(y2);
}

static void check_relu(void)
{
    float x[5] = {-2.0f, -0.0f, 0.0f, 0.5f, 3.0f}, y[5], want[5] = {0, 0, 0, 0.5f, 3.0f};
    be->relu_forward(be, y, x, 5);
    test_close("relu", y, want, 5, 0.0f, 0.0f);
}

/* The capability query (backend.h's op list): an optional op left out is named among the
 * inference ops and does not stop training; a required one does. */
static void check_capabilities(void)
{
    struct backend partial = *be;
    char missing[256];
    partial.pool_forward = NULL;
    if (backend_missing(&partial, OP_INFERENCE, missing, sizeof missing) != 1 ||
        strcmp(missing, "pool_forward") != 0)
        test_fail("without pool_forward: missing inference ops [%s], expected [pool_forward]",
                  missing);
    if (backend_missing_ops(&partial, missing, sizeof missing) != 0)
        test_fail("without pool_forward: missing required ops [%s], expected none", missing);
    partial.event_record = NULL;
    partial.mix = NULL;
    partial.adamw_update = NULL;
    if (backend_missing(&partial, OP_REQUIRED, missing, sizeof missing) != 2 ||
        strcmp(missing, "mix, adamw_update") != 0)
        test_fail("without mix and adamw_update: missing required ops [%s]", missing);
    if (backend_missing(&partial, OP_TIMING, missing, sizeof missing) != 1 ||
        strcmp(missing, "event_record") != 0)
        test_fail("without event_record: missing timing ops [%s]", missing);
}

int main(void)
{
    test_seed(10);
    be = cpu_backend_create();
    char missing[256];
    if (backend_missing_inference_ops(be, missing, sizeof missing) != 0)
        test_fail("cpu backend lacks inference ops: %s", missing);
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        check_conv(&conv_cases[i]);
    /* InceptionV3's pools: max 3x3 stride 2 valid (7x7 -> 3x3), average 3x3 stride 1 same */
    check_pool("maxpool 3x3 s2 valid", 7, 7, 3, 2, 1, 3, 3, 0, POOL_MAX, 0);
    check_pool("maxpool 3x3 s2 valid 8x9", 8, 9, 3, 2, 1, 3, 4, 0, POOL_MAX, 0);
    check_pool("avgpool 3x3 s1 same", 5, 6, 3, 1, 0, 5, 6, 1, POOL_AVG, 0);
    /* all ones: 1 everywhere only if the padded cells are left out of the average */
    check_pool("avgpool 3x3 s1 same, ones", 4, 4, 3, 1, 0, 4, 4, 1, POOL_AVG, 1);
    check_global_avgpool();
    check_resize();
    check_relu();
    check_capabilities();
    be->destroy(be);
    return test_finish("test_infer_ops");
}
