/* cpu_conv.c: 2D convolution on the CPU through oneDNN, the library TensorFlow's CPU path
 * runs its convolutions on (docs/perf.md "The convolutions: oneDNN, not im2col + BLAS" says why).
 *
 * Activations stay NHWC and kernels HWIO in our buffers: oneDNN reads and writes the
 * activations in place ("nhwc"), and only the kernels, a few hundred KB at most, are
 * reordered into the blocked layout its AVX-512 / AVX2 kernels want. Per convolution shape
 * a plan holds these primitives, made on first use and kept (the U-Net has ~15 shapes):
 *   forward   y = conv(x, w) + bias
 *   data      dx (=/+=) conv(dy, w'), w'[ky][kx][co][ci] = w[k-1-ky][k-1-kx][ci][co]: for a
 *             stride-1 'same' convolution the input gradient is the forward convolution of
 *             dy with the kernel turned by 180 degrees and its channels swapped (each side
 *             padded by k-1 minus the forward's padding there), and oneDNN's forward
 *             convolution can add into its output (a "sum" post-op), which its backward-data
 *             primitive cannot. Two of them: GRAD_ADD's with the sum post-op, GRAD_WRITE's
 *             without (the same kernel, so the same sums: 0 + v would differ from v only in
 *             the sign of a zero)
 *   weights   dw = dL/dw, dbias = dL/dbias: oneDNN's backward-weights primitive, each
 *             chunk's sums then added in chunk order
 * each as one primitive per chunk of images (up to CHUNKS, from the batch alone), made for
 * one thread; the threads take the chunks as they come free. oneDNN's own split of a
 * primitive between threads is static and waits for them at barriers: on a machine shared
 * with other work, one preempted thread held the whole op up (the seed's step on two
 * threads took 1.5x its CPU time in wall time; its backward-weights barriers, spinning,
 * burnt 3x the CPU time of one thread at the quickstart's size).
 * Determinism: the algorithm is fixed (direct, never Winograd); each output is summed in one
 * thread, and the chunks depend on the batch alone, so the results do not depend on the
 * thread count or on scheduling: the same bits every run on the same CPU
 * (tests/train/test_determinism.sh).
 * Scratch memory (oneDNN's scratchpads, the reordered kernels) is ours, grown to the largest
 * layer once, never inside a step after the first. */
#include "cpu_ops.h"
#include "util.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdlib.h>
#include <string.h>

enum { OP_MAX_ARGS = 6, CHUNKS = 16 };

/* A primitive and the memory objects of its arguments; the buffers are set at each run. */
struct dnnl_op {
    dnnl_primitive_t prim; /* NULL: nothing to run (a reorder between equal layouts) */
    int nargs;
    int ids[OP_MAX_ARGS];
    dnnl_memory_t mem[OP_MAX_ARGS];
    size_t scratch_bytes; /* its scratchpad */
};

/* Every primitive but the kernels' reorders runs as one per chunk of images (CHUNKS at
 * most); the reorders x_w put our HWIO kernel into the layout x's primitives read. */
struct conv_plan {
    struct conv_shape s;
    struct dnnl_op fwd[CHUNKS], fwd_w;
    struct dnnl_op data[CHUNKS], data_w; /* data_w: from the turned kernel (plain layout) */
    struct dnnl_op data_write[CHUNKS], data_write_w; /* without the sum post-op (GRAD_WRITE) */
    struct dnnl_op wgrad[CHUNKS];
    struct dnnl_op wgrad_w; /* the summed weight gradient back to HWIO */
    int chunks, chunk_imgs;
    size_t part_floats;   /* one chunk's sums: its weight gradient (oneDNN's layout), bias */
    size_t chunk_scratch; /* scratchpad bytes per chunk */
    int has_backward;
    size_t wbuf_floats; /* the largest reordered kernel of this plan */
    struct conv_plan *next;
};

struct cpu_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    struct conv_plan *plans;
    void *scratch; /* oneDNN's scratchpads, shared: one primitive runs at a time */
    size_t scratch_bytes;
    float *wbuf, *wturn; /* a reordered kernel; the turned kernel (plain layout) */
    size_t wbuf_floats, wturn_floats;
    dnnl_stream_t chunk_stream[CHUNKS]; /* the weight gradient's chunks, side by side */
    float *parts;                       /* CHUNKS chunks' sums */
    void *chunk_scratch;
    size_t parts_floats, chunk_scratch_bytes;
};

static void check(dnnl_status_t st, const char *what, const struct conv_shape *s)
{
    if (st != dnnl_success)
        DDIM_FATAL("cpu convolution (oneDNN): %s failed: %s (batch %d, %dx%d, %d -> %d channels, "
                   "kernel %dx%d, stride %d, %s)",
                   what, dnnl_status2str(st), s->n, s->h, s->w, s->cin, s->cout, conv_kh(s),
                   conv_kw(s), conv_stride(s), s->valid ? "valid" : "same");
}

static struct cpu_dnnl *dnnl_ctx(struct backend *be)
{
    struct cpu_ctx *ctx = be->ctx;
    if (!ctx->dnnl) {
        struct cpu_dnnl *d = util_xcalloc(1, sizeof *d);
        struct conv_shape none = {0};
        check(dnnl_engine_create(&d->engine, dnnl_cpu, 0), "engine", &none);
        check(dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags), "stream",
              &none);
        for (int c = 0; c < CHUNKS; c++)
            check(dnnl_stream_create(&d->chunk_stream[c], d->engine, dnnl_stream_default_flags),
                  "stream", &none);
        ctx->dnnl = d;
    }
    return ctx->dnnl;
}

/* Grows *buf to at least `bytes` (contents not kept). */
static void grow(void **buf, size_t *have, size_t bytes)
{
    if (bytes <= *have)
        return;
    free(*buf);
    size_t rounded = (bytes + 63) / 64 * 64;
    *buf = aligned_alloc(64, rounded);
    if (!*buf)
        DDIM_FATAL("cpu convolution: out of host memory (%zu bytes of scratch)", bytes);
    *have = rounded;
}

/* The primitive of pd with memory objects for the argument ids (and its scratchpad). */
static void op_make(struct cpu_dnnl *d, struct dnnl_op *op, dnnl_primitive_desc_t pd,
                    const int *ids, int nargs, const struct conv_shape *s)
{
    check(dnnl_primitive_create(&op->prim, pd), "primitive", s);
    op->nargs = 0;
    for (int i = 0; i <= nargs; i++) {
        int id = i < nargs ? ids[i] : DNNL_ARG_SCRATCHPAD;
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, id);
        if (!md || md->ndims == 0)
            continue; /* an empty scratchpad */
        if (id == DNNL_ARG_SCRATCHPAD)
            op->scratch_bytes = dnnl_memory_desc_get_size(md);
        op->ids[op->nargs] = id;
        check(dnnl_memory_create(&op->mem[op->nargs], md, d->engine, DNNL_MEMORY_NONE), "memory",
              s);
        op->nargs++;
    }
}

/* Runs op on the buffers (one per id given to op_make, in that order) on a stream, with a
 * scratchpad of op->scratch_bytes. */
static void op_run_on(const struct dnnl_op *op, void *const *bufs, void *scratch,
                      dnnl_stream_t stream, const struct conv_shape *s)
{
    dnnl_exec_arg_t args[OP_MAX_ARGS];
    for (int i = 0; i < op->nargs; i++) {
        void *p = op->ids[i] == DNNL_ARG_SCRATCHPAD ? scratch : bufs[i];
        check(dnnl_memory_set_data_handle(op->mem[i], p), "set buffer", s);
        args[i].arg = op->ids[i];
        args[i].memory = op->mem[i];
    }
    check(dnnl_primitive_execute(op->prim, stream, op->nargs, args), "execute", s);
    check(dnnl_stream_wait(stream), "wait", s);
}

/* op_run_on the shared stream and scratchpad: the ops that use all threads, one at a time. */
static void op_run(struct cpu_dnnl *d, const struct dnnl_op *op, void *const *bufs,
                   const struct conv_shape *s)
{
    grow(&d->scratch, &d->scratch_bytes, op->scratch_bytes);
    op_run_on(op, bufs, d->scratch, d->stream, s);
}

static void op_free(struct dnnl_op *op)
{
    if (op->prim)
        dnnl_primitive_destroy(op->prim);
    for (int i = 0; i < op->nargs; i++)
        dnnl_memory_destroy(op->mem[i]);
    memset(op, 0, sizeof *op);
}

static dnnl_primitive_attr_t attr_make(int sum_into_dst, const struct conv_shape *s)
{
    dnnl_primitive_attr_t attr;
    check(dnnl_primitive_attr_create(&attr), "attributes", s);
    check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad",
          s);
    if (sum_into_dst) {
        dnnl_post_ops_t po;
        check(dnnl_post_ops_create(&po), "post-ops", s);
        check(dnnl_post_ops_append_sum(po, 1.0f), "sum post-op", s);
        check(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops", s);
        dnnl_post_ops_destroy(po);
    }
    return attr;
}

/* A reorder from `from` to `to` (kernels); no primitive when the layouts agree. */
static void reorder_make(struct cpu_dnnl *d, struct conv_plan *p, struct dnnl_op *op,
                         const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to)
{
    if (dnnl_memory_desc_equal(from, to))
        return;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_attr_t attr = attr_make(0, &p->s);
    check(dnnl_reorder_primitive_desc_create(&pd, from, d->engine, to, d->engine, attr),
          "kernel reorder", &p->s);
    const int ids[2] = {DNNL_ARG_FROM, DNNL_ARG_TO};
    op_make(d, op, pd, ids, 2, &p->s);
    size_t bytes = dnnl_memory_desc_get_size(from), to_bytes = dnnl_memory_desc_get_size(to);
    bytes = bytes > to_bytes ? bytes : to_bytes;
    if (bytes / sizeof(float) > p->wbuf_floats)
        p->wbuf_floats = bytes / sizeof(float);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
}

/* oneDNN's descriptions of a shape: activations NHWC, our kernels HWIO, logical dims in
 * oneDNN's order (N, C, H, W) and (O, I, H, W). `turned`: the data gradient's convolution
 * (dy in, dx out, channels swapped). */
struct conv_descs {
    dnnl_memory_desc_t src, dst, bias, wuser, wany;
    dnnl_dims_t strides, pad_l, pad_r;
};

static void descs_init(struct conv_descs *c, const struct conv_shape *s, int turned)
{
    int kh = conv_kh(s), kw = conv_kw(s), st = conv_stride(s);
    int ho = conv_out_h(s), wo = conv_out_w(s);
    int pt = conv_pad_before(s->h, kh, st, s->valid), pl = conv_pad_before(s->w, kw, st, s->valid);
    int pb = (ho - 1) * st + kh - s->h - pt, pr = (wo - 1) * st + kw - s->w - pl;
    if (turned) { /* stride 1, 'same': each side pads k-1 minus what the forward padded */
        pt = kh - 1 - pt;
        pb = kh - 1 - pb;
        pl = kw - 1 - pl;
        pr = kw - 1 - pr;
    }
    int ci = turned ? s->cout : s->cin, co = turned ? s->cin : s->cout;
    dnnl_dims_t src = {s->n, ci, s->h, s->w}, dst = {s->n, co, ho, wo};
    dnnl_dims_t w = {co, ci, kh, kw}, b = {co};
    check(dnnl_memory_desc_init_by_tag(&c->src, 4, src, dnnl_f32, dnnl_nhwc), "src desc", s);
    check(dnnl_memory_desc_init_by_tag(&c->dst, 4, dst, dnnl_f32, dnnl_nhwc), "dst desc", s);
    check(dnnl_memory_desc_init_by_tag(&c->bias, 1, b, dnnl_f32, dnnl_x), "bias desc", s);
    check(dnnl_memory_desc_init_by_tag(&c->wuser, 4, w, dnnl_f32, dnnl_hwio), "kernel desc", s);
    check(dnnl_memory_desc_init_by_tag(&c->wany, 4, w, dnnl_f32, dnnl_format_tag_any),
          "kernel desc", s);
    c->strides[0] = c->strides[1] = st;
    c->pad_l[0] = pt;
    c->pad_l[1] = pl;
    c->pad_r[0] = pb > 0 ? pb : 0; /* 'valid': rows past the last window are not read */
    c->pad_r[1] = pr > 0 ? pr : 0;
}

static const dnnl_memory_desc_t *pd_md(dnnl_primitive_desc_t pd, int arg)
{
    return dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
}

/* Chunk c's number of images in plan p. */
static int chunk_images(const struct conv_plan *p, int c)
{
    int left = p->s.n - c * p->chunk_imgs;
    return left < p->chunk_imgs ? left : p->chunk_imgs;
}

/* A forward-kind convolution of plan p's shape (`turned`: the data gradient's; `sum`: adding
 * into its output) as one primitive per chunk of images, each made while OpenMP offers one
 * thread, so that it runs inline on the thread that takes its chunk. Chunk 0's primitive
 * picks the kernel layout; the others are made to read that same one, so one reorder *w
 * serves them all. */
static void conv_chunks_make(struct cpu_dnnl *d, struct conv_plan *p, struct dnnl_op *ops,
                             struct dnnl_op *w, int turned, int sum)
{
    dnnl_memory_desc_t wmd = {0};
    dnnl_primitive_attr_t attr = attr_make(sum, &p->s);
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    for (int c = 0; c < p->chunks; c++) {
        struct conv_shape cs = p->s;
        cs.n = chunk_images(p, c);
        struct conv_descs t;
        descs_init(&t, &cs, turned);
        dnnl_convolution_desc_t cd;
        check(dnnl_convolution_forward_desc_init(
                  &cd, turned ? dnnl_forward_inference : dnnl_forward_training,
                  dnnl_convolution_direct, &t.src, c ? &wmd : &t.wany, turned ? NULL : &t.bias,
                  &t.dst, t.strides, t.pad_l, t.pad_r),
              turned ? "data gradient desc" : "forward desc", &cs);
        dnnl_primitive_desc_t pd;
        check(dnnl_primitive_desc_create(&pd, &cd, attr, d->engine, NULL),
              turned ? "data gradient" : "forward", &cs);
        const int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
        const int turned_ids[3] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST};
        op_make(d, &ops[c], pd, turned ? turned_ids : ids, turned ? 3 : 4, &cs);
        if (!c)
            wmd = *pd_md(pd, DNNL_ARG_WEIGHTS);
        if (ops[c].scratch_bytes > p->chunk_scratch)
            p->chunk_scratch = (ops[c].scratch_bytes + 63) / 64 * 64;
        dnnl_primitive_desc_destroy(pd);
    }
    omp_set_num_threads(threads);
    dnnl_primitive_attr_destroy(attr);
    struct conv_descs t;
    descs_init(&t, &p->s, turned);
    reorder_make(d, p, w, &t.wuser, &wmd);
}

/* Runs chunked primitives ops on in (image stride in_img floats) into out (out_img), the
 * kernel wk, bias (NULL: none): the chunks go to the threads as they come free, so that a
 * thread another process holds up delays only its own chunk. */
static void conv_chunks_run(struct cpu_dnnl *d, const struct conv_plan *p,
                            const struct dnnl_op *ops, const float *in, size_t in_img,
                            const float *wk, const float *bias, float *out, size_t out_img)
{
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < p->chunks; c++) {
        size_t first = (size_t)c * p->chunk_imgs;
        void *src = (void *)(in + first * in_img), *dst = out + first * out_img;
        void *with_bias[4] = {src, (void *)wk, (void *)bias, dst},
             *plain[3] = {src, (void *)wk, dst};
        op_run_on(&ops[c], bias ? with_bias : plain,
                  (char *)d->chunk_scratch + (size_t)c * p->chunk_scratch, d->chunk_stream[c],
                  &p->s);
    }
}

static struct conv_plan *plan_create(struct cpu_dnnl *d, const struct conv_shape *s)
{
    struct conv_plan *p = util_xcalloc(1, sizeof *p);
    p->s = *s;
    p->chunk_imgs = (s->n + CHUNKS - 1) / CHUNKS;
    p->chunks = (s->n + p->chunk_imgs - 1) / p->chunk_imgs;
    conv_chunks_make(d, p, p->fwd, &p->fwd_w, 0, 0);
    return p;
}

/* The weight gradient of chunk images (of plan p's shape) for one thread; *part: the layout
 * of its sums. */
static void wgrad_chunk_make(struct cpu_dnnl *d, struct conv_plan *p, struct dnnl_op *op,
                             int images, dnnl_memory_desc_t *part)
{
    struct conv_shape cs = p->s;
    cs.n = images;
    struct conv_descs c;
    descs_init(&c, &cs, 0);
    dnnl_convolution_desc_t fd, wd;
    dnnl_primitive_desc_t hint, pd;
    dnnl_primitive_attr_t attr = attr_make(0, &cs);
    check(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                             &c.src, &c.wany, &c.bias, &c.dst, c.strides, c.pad_l,
                                             c.pad_r),
          "weight gradient hint desc", &cs);
    check(dnnl_primitive_desc_create(&hint, &fd, attr, d->engine, NULL), "weight gradient hint",
          &cs);
    check(dnnl_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &c.src, &c.wany,
                                                      &c.bias, &c.dst, c.strides, c.pad_l, c.pad_r),
          "weight gradient desc", &cs);
    check(dnnl_primitive_desc_create(&pd, &wd, attr, d->engine, hint), "weight gradient", &cs);
    const int ids[4] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS};
    op_make(d, op, pd, ids, 4, &cs);
    const dnnl_memory_desc_t *md = pd_md(pd, DNNL_ARG_DIFF_WEIGHTS);
    if (part->ndims && !dnnl_memory_desc_equal(part, md))
        DDIM_FATAL("cpu convolution (oneDNN): the weight gradient's layout differs between chunks "
                   "of %d and %d images",
                   p->chunk_imgs, images);
    *part = *md;
    if (op->scratch_bytes > p->chunk_scratch)
        p->chunk_scratch = (op->scratch_bytes + 63) / 64 * 64;
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_desc_destroy(hint);
    dnnl_primitive_attr_destroy(attr);
}

/* The weight gradient's chunks: up to CHUNKS of equal size (the last may be smaller),
 * from the batch alone; each primitive made while OpenMP offers one thread, so that it runs
 * inline on the thread that takes its chunk. */
static void wgrad_make(struct cpu_dnnl *d, struct conv_plan *p)
{
    const struct conv_shape *s = &p->s;
    dnnl_memory_desc_t part = {0};
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    for (int c = 0; c < p->chunks; c++)
        wgrad_chunk_make(d, p, &p->wgrad[c], chunk_images(p, c), &part);
    omp_set_num_threads(threads);
    struct conv_descs c;
    descs_init(&c, s, 0);
    reorder_make(d, p, &p->wgrad_w, &part, &c.wuser);
    p->part_floats = (dnnl_memory_desc_get_size(&part) / sizeof(float) + 15) / 16 * 16 +
                     ((size_t)s->cout + 15) / 16 * 16;
}

/* The data and weight gradients' primitives of plan p (conv_is_basic shapes only). */
static void plan_add_backward(struct cpu_dnnl *d, struct conv_plan *p)
{
    conv_chunks_make(d, p, p->data, &p->data_w, 1, 1);
    conv_chunks_make(d, p, p->data_write, &p->data_write_w, 1, 0);
    wgrad_make(d, p);
    p->has_backward = 1;
}

static int shape_equal(const struct conv_shape *a, const struct conv_shape *b)
{
    return a->n == b->n && a->h == b->h && a->w == b->w && a->cin == b->cin && a->cout == b->cout &&
           conv_kh(a) == conv_kh(b) && conv_kw(a) == conv_kw(b) &&
           conv_stride(a) == conv_stride(b) && a->valid == b->valid;
}

/* The plan of shape s (made on first use), its backward too when asked; the shared
 * buffers grown to fit it. */
static struct conv_plan *plan_get(struct cpu_dnnl *d, const struct conv_shape *s, int backward)
{
    struct conv_plan *p = d->plans;
    while (p && !shape_equal(&p->s, s))
        p = p->next;
    if (!p) {
        p = plan_create(d, s);
        p->next = d->plans;
        d->plans = p;
    }
    if (backward && !p->has_backward)
        plan_add_backward(d, p);
    size_t kernel = (size_t)conv_kh(s) * conv_kw(s) * s->cin * s->cout;
    grow((void **)&d->wbuf, &d->wbuf_floats, p->wbuf_floats * sizeof(float));
    grow(&d->chunk_scratch, &d->chunk_scratch_bytes, p->chunks * p->chunk_scratch);
    if (backward) {
        grow((void **)&d->wturn, &d->wturn_floats, kernel * sizeof(float));
        grow((void **)&d->parts, &d->parts_floats, p->chunks * p->part_floats * sizeof(float));
    }
    return p;
}

/* The epilogue with the ops themselves (the same bits by construction): oneDNN's own
 * post-ops (binary add, eltwise swish) would compute swish with other roundings than
 * cpu_swish_forward, the reference the CUDA kernels are held to. */
static void conv_epilogue(struct backend *be, float *y, size_t n, const struct conv_epilogue *epi)
{
    if (!epi)
        return;
    if (epi->residual)
        cpu_add(be, y, y, epi->residual, n);
    if (epi->swish)
        cpu_swish_forward(be, epi->swish, y, n);
}

void cpu_conv2d_forward(struct backend *be, float *y, const float *x, const float *w,
                        const float *bias, const struct conv_shape *s,
                        const struct conv_epilogue *epi)
{
    struct cpu_dnnl *d = dnnl_ctx(be);
    struct conv_plan *p = plan_get(d, s, 0);
    const float *wk = w;
    if (p->fwd_w.prim) {
        void *bufs[2] = {(void *)w, d->wbuf};
        op_run(d, &p->fwd_w, bufs, s);
        wk = d->wbuf;
    }
    conv_chunks_run(d, p, p->fwd, x, (size_t)s->h * s->w * s->cin, wk, bias, y,
                    (size_t)conv_out_h(s) * conv_out_w(s) * s->cout);
    conv_epilogue(be, y, (size_t)s->n * conv_out_h(s) * conv_out_w(s) * s->cout, epi);
}

/* parts[i] += parts[c * stride + i] for c = 1 .. chunks-1, in that order (the same bits
 * whichever threads made the chunks) */
static void parts_sum(float *parts, size_t stride, int chunks)
{
#pragma omp parallel for schedule(static)
    for (long i = 0; i < (long)stride; i++)
        for (int c = 1; c < chunks; c++)
            parts[i] += parts[(size_t)c * stride + i];
}

/* wt (k, k, cout, cin) = w (k, k, cin, cout) turned by 180 degrees, channels swapped */
static void kernel_turn(float *wt, const float *w, const struct conv_shape *s)
{
    int k = s->k, ci = s->cin, co = s->cout;
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++) {
            const float *src = w + ((size_t)(k - 1 - ky) * k + (k - 1 - kx)) * ci * co;
            float *dst = wt + ((size_t)ky * k + kx) * co * ci;
            for (int i = 0; i < ci; i++)
                for (int o = 0; o < co; o++)
                    dst[(size_t)o * ci + i] = src[(size_t)i * co + o];
        }
}

/* dw, dbias: each chunk's sums by the thread that takes it, then added in chunk order. */
static void wgrad_run(struct cpu_dnnl *d, const struct conv_plan *p, float *dw, float *dbias,
                      const float *dy, const float *x)
{
    const struct conv_shape *s = &p->s;
    size_t in_img = (size_t)s->h * s->w * s->cin, out_img = (size_t)s->h * s->w * s->cout;
    size_t bias_at = p->part_floats - ((size_t)s->cout + 15) / 16 * 16;
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < p->chunks; c++) {
        size_t first = (size_t)c * p->chunk_imgs;
        float *part = d->parts + (size_t)c * p->part_floats;
        void *bufs[4] = {(void *)(x + first * in_img), (void *)(dy + first * out_img), part,
                         part + bias_at};
        op_run_on(&p->wgrad[c], bufs, (char *)d->chunk_scratch + (size_t)c * p->chunk_scratch,
                  d->chunk_stream[c], s);
    }
    parts_sum(d->parts, p->part_floats, p->chunks);
    memcpy(dbias, d->parts + bias_at, (size_t)s->cout * sizeof(float));
    if (p->wgrad_w.prim) {
        void *to_user[2] = {d->parts, dw};
        op_run(d, &p->wgrad_w, to_user, s);
    } else {
        memcpy(dw, d->parts, (size_t)s->k * s->k * s->cin * s->cout * sizeof(float));
    }
}

void cpu_conv2d_backward(struct backend *be, float *dx, float *dw, float *dbias, const float *dy,
                         const float *x, const float *w, const struct conv_shape *s,
                         enum grad_mode dx_mode)
{
    backend_require_conv_backward("cpu", s); /* supports_op refuses it first */
    struct cpu_dnnl *d = dnnl_ctx(be);
    struct conv_plan *p = plan_get(d, s, 1);
    if (dx) {
        const struct dnnl_op *data = dx_mode == GRAD_ADD ? p->data : p->data_write;
        const struct dnnl_op *data_w = dx_mode == GRAD_ADD ? &p->data_w : &p->data_write_w;
        kernel_turn(d->wturn, w, s);
        const float *wk = d->wturn;
        if (data_w->prim) {
            void *bufs[2] = {d->wturn, d->wbuf};
            op_run(d, data_w, bufs, s);
            wk = d->wbuf;
        }
        conv_chunks_run(d, p, data, dy, (size_t)s->h * s->w * s->cout, wk, NULL, dx,
                        (size_t)s->h * s->w * s->cin);
    }
    wgrad_run(d, p, dw, dbias, dy, x);
}

void cpu_conv_release(struct cpu_ctx *ctx)
{
    struct cpu_dnnl *d = ctx->dnnl;
    if (!d)
        return;
    while (d->plans) {
        struct conv_plan *p = d->plans;
        d->plans = p->next;
        struct dnnl_op *ops[] = {&p->fwd_w, &p->data_w, &p->data_write_w, &p->wgrad_w};
        for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
            op_free(ops[i]);
        for (int c = 0; c < CHUNKS; c++) {
            op_free(&p->fwd[c]);
            op_free(&p->data[c]);
            op_free(&p->data_write[c]);
            op_free(&p->wgrad[c]);
        }
        free(p);
    }
    dnnl_stream_destroy(d->stream);
    for (int c = 0; c < CHUNKS; c++)
        dnnl_stream_destroy(d->chunk_stream[c]);
    dnnl_engine_destroy(d->engine);
    free(d->scratch);
    free(d->parts);
    free(d->chunk_scratch);
    free(d->wbuf);
    free(d->wturn);
    free(d);
    ctx->dnnl = NULL;
}
