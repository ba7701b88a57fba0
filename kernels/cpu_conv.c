/* cpu_conv.c: 2D convolution as im2col + BLAS sgemm.
 *
 * NHWC activations and HWIO kernels make both GEMMs plain row-major products:
 *   y (rows, Cout) = col (rows, kh*kw*Cin) x w (kh*kw*Cin, Cout)
 * where col row (n,oy,ox) holds the kh*kw input patches that output pixel reads (any
 * stride and TensorFlow padding, struct conv_shape), zeros outside the image. 1x1
 * convolutions at stride 1 need no im2col. Backward takes the U-Net's shapes only
 * (conv_is_basic): the other shapes serve InceptionV3, which only runs forward. Images are
 * processed in chunks so that the im2col buffer stays bounded while each GEMM still has a few
 * thousand rows. */
#include "cpu_ops.h"
#include "util.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

enum { CONV_CHUNK_ROWS = 4096 };

static int chunk_images(const struct conv_shape *s)
{
    int hw = conv_out_h(s) * conv_out_w(s);
    int imgs = CONV_CHUNK_ROWS / (hw > 0 ? hw : 1);
    if (imgs < 1)
        imgs = 1;
    return imgs < s->n ? imgs : s->n;
}

/* The im2col buffer for one chunk; grown (once per new maximum), never shrunk. */
static float *conv_workspace(struct backend *be, const struct conv_shape *s)
{
    struct cpu_ctx *ctx = be->ctx;
    size_t need =
        (size_t)chunk_images(s) * conv_out_h(s) * conv_out_w(s) * conv_kh(s) * conv_kw(s) * s->cin;
    if (need > ctx->workspace_floats) {
        free(ctx->workspace);
        ctx->workspace = util_xmalloc(need * sizeof(float));
        ctx->workspace_floats = need;
    }
    return ctx->workspace;
}

/* col (imgs*ho*wo, kh*kw*cin) from x (imgs,h,w,cin) */
static void im2col(float *col, const float *x, int imgs, const struct conv_shape *s)
{
    int h = s->h, w = s->w, cin = s->cin, kh = conv_kh(s), kw = conv_kw(s);
    int st = conv_stride(s), ho = conv_out_h(s), wo = conv_out_w(s);
    int pt = conv_pad_before(h, kh, st, s->valid), pl = conv_pad_before(w, kw, st, s->valid);
    size_t kcols = (size_t)kh * kw * cin;
#pragma omp parallel for schedule(static)
    for (long row = 0; row < (long)imgs * ho * wo; row++) {
        int img = (int)(row / (ho * wo)), oy = (int)(row / wo % ho), ox = (int)(row % wo);
        float *dst = col + (size_t)row * kcols;
        for (int ky = 0; ky < kh; ky++) {
            for (int kx = 0; kx < kw; kx++, dst += cin) {
                int sy = oy * st + ky - pt, sx = ox * st + kx - pl;
                if (sy < 0 || sy >= h || sx < 0 || sx >= w)
                    memset(dst, 0, (size_t)cin * sizeof(float));
                else
                    memcpy(dst, x + (((size_t)img * h + sy) * w + sx) * cin,
                           (size_t)cin * sizeof(float));
            }
        }
    }
}

/* dx (imgs,h,w,cin) += col2im(dcol): a gather over the patches that read each pixel, so
 * every output element is written by one thread. */
static void col2im_add(float *dx, const float *dcol, int imgs, const struct conv_shape *s)
{
    int h = s->h, w = s->w, cin = s->cin, k = s->k, r = k / 2;
    size_t kcols = (size_t)k * k * cin;
#pragma omp parallel for schedule(static)
    for (long row = 0; row < (long)imgs * h * w; row++) {
        int img = (int)(row / (h * w)), yy = (int)(row / w % h), xx = (int)(row % w);
        float *dst = dx + (size_t)row * cin;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                /* the output pixel (oy,ox) whose patch tap (ky,kx) is this input pixel */
                int oy = yy - ky + r, ox = xx - kx + r;
                if (oy < 0 || oy >= h || ox < 0 || ox >= w)
                    continue;
                const float *src =
                    dcol + (((size_t)img * h + oy) * w + ox) * kcols + ((size_t)ky * k + kx) * cin;
                for (int c = 0; c < cin; c++)
                    dst[c] += src[c];
            }
        }
    }
}

void cpu_conv2d_forward(struct backend *be, float *y, const float *x, const float *w,
                        const float *bias, const struct conv_shape *s)
{
    size_t hw = (size_t)conv_out_h(s) * conv_out_w(s), rows = (size_t)s->n * hw;
    size_t in_hw = (size_t)s->h * s->w;
    size_t kcols = (size_t)conv_kh(s) * conv_kw(s) * s->cin;
#pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)rows; r++)
        memcpy(y + (size_t)r * s->cout, bias, (size_t)s->cout * sizeof(float));
    if (kcols == (size_t)s->cin && conv_stride(s) == 1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, s->cout, s->cin, 1.0f, x,
                    s->cin, w, s->cout, 1.0f, y, s->cout);
        return;
    }
    float *col = conv_workspace(be, s);
    int step = chunk_images(s);
    for (int i0 = 0; i0 < s->n; i0 += step) {
        int imgs = s->n - i0 < step ? s->n - i0 : step;
        im2col(col, x + (size_t)i0 * in_hw * s->cin, imgs, s);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(imgs * hw), s->cout,
                    (int)kcols, 1.0f, col, (int)kcols, w, s->cout, 1.0f,
                    y + (size_t)i0 * hw * s->cout, s->cout);
    }
}

/* dbias = column sums of dy (rows, cout), accumulated in double. */
static void bias_grad(float *dbias, const float *dy, size_t rows, int cout)
{
    double *acc = util_xcalloc((size_t)cout, sizeof(double));
    for (size_t r = 0; r < rows; r++)
        for (int c = 0; c < cout; c++)
            acc[c] += dy[r * cout + c];
    for (int c = 0; c < cout; c++)
        dbias[c] = (float)acc[c];
    free(acc);
}

void cpu_conv2d_backward(struct backend *be, float *dx, float *dw, float *dbias, const float *dy,
                         const float *x, const float *w, const struct conv_shape *s)
{
    backend_require_conv_backward("cpu", s); /* supports_op refuses it first */
    size_t hw = (size_t)s->h * s->w, rows = (size_t)s->n * hw;
    int kcols = s->k * s->k * s->cin;
    bias_grad(dbias, dy, rows, s->cout);
    if (s->k == 1) {
        /* dw (cin, cout) = x^T dy ; dx (rows, cin) += dy w^T */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s->cin, s->cout, (int)rows, 1.0f, x,
                    s->cin, dy, s->cout, 0.0f, dw, s->cout);
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, s->cin, s->cout, 1.0f,
                        dy, s->cout, w, s->cout, 1.0f, dx, s->cin);
        return;
    }
    float *col = conv_workspace(be, s);
    int step = chunk_images(s);
    for (int i0 = 0; i0 < s->n; i0 += step) {
        int imgs = s->n - i0 < step ? s->n - i0 : step;
        int crow = (int)(imgs * hw);
        const float *dy_chunk = dy + (size_t)i0 * hw * s->cout;
        im2col(col, x + (size_t)i0 * hw * s->cin, imgs, s);
        /* dw (kcols, cout) (+)= col^T dy: the first chunk writes, later ones add */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, kcols, s->cout, crow, 1.0f, col, kcols,
                    dy_chunk, s->cout, i0 == 0 ? 0.0f : 1.0f, dw, s->cout);
        if (dx) {
            /* dcol (crow, kcols) = dy w^T, reusing the im2col buffer */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, crow, kcols, s->cout, 1.0f,
                        dy_chunk, s->cout, w, s->cout, 0.0f, col, kcols);
            col2im_add(dx + (size_t)i0 * hw * s->cin, col, imgs, s);
        }
    }
}
