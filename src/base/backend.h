/* backend.h: the op table that the whole trainer runs on.
 *
 * The U-Net, the diffusion step, the optimizer and the sampler are written once against
 * this table. Two implementations fill it: the CPU backend (kernels/cpu_*.c, plain C11 +
 * OpenMP + BLAS, the readable reference) and the CUDA backend (kernels/cuda_*.cu).
 *
 * Conventions, stated once for the whole trainer:
 * - Every image-like tensor is float32, NHWC (channels last), contiguous. "rows" means
 *   N*H*W, so such a tensor is a (rows, C) row-major matrix.
 * - Convolution kernels are HWIO, as Keras stores them: (k, k, Cin, Cout), i.e. a
 *   (k*k*Cin, Cout) row-major matrix.
 * - Pointers are backend memory (host memory for the CPU backend, device memory for CUDA)
 *   unless the name ends in _host.
 * - Backward ops store activation gradients (dx, da, db) as the caller's enum grad_mode
 *   says: written (=) by a tensor's first contributor in the backward pass, accumulated (+=)
 *   by the later ones (a tensor that feeds several consumers), so no gradient buffer needs
 *   zeroing first. Parameter gradients (dw, dbias) are always written (=): every parameter
 *   is used exactly once. Tests check both modes of every op. conv2d_backward's dx,
 *   concat_backward's and add_backward's da/db may be NULL: "not needed", skipped.
 * - Per-example scalars (rates, times, variances) are (N,) vectors in backend memory.
 * - What changes from one training step to the next (the random streams' step, the
 *   resident data's offset, AdamW's step, the loss history's slot) can be read from int32
 *   counters in backend memory, which counters_add advances: a step recorded once (a CUDA
 *   graph) then reads the current values each time it runs.
 */
#ifndef DDIM_BACKEND_H
#define DDIM_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum loss_kind { LOSS_MAE = 0, LOSS_MSE = 1 };

/* How a backward op stores an activation gradient: GRAD_WRITE (=) where it is the tensor's
 * first contributor, GRAD_ADD (+=) where another consumer has written it already. A
 * written value is computed as 0.0f + v, the bits the same op gives when it accumulates
 * into a zero-filled buffer (only the sign of a zero could differ otherwise). */
enum grad_mode { GRAD_WRITE = 0, GRAD_ADD = 1 };

/* Purposes of random streams: part of the Philox counter, so that each use of the seed
 * draws independent numbers (see src/base/rng.h). */
enum rng_purpose {
    RNG_TRAIN_NOISE = 1,
    RNG_TRAIN_TIME = 2,
    RNG_VAL_NOISE = 3,
    RNG_VAL_TIME = 4,
    RNG_SAMPLE_NOISE = 5,
    RNG_INIT = 6,
    RNG_SHUFFLE = 7,
    RNG_KID_NOISE = 8,
    RNG_SAMPLE_ETA = 13, /* the stochastic sampler's fresh noise (eta > 0), keyed by step */
};

/* A convolution's shape. The first six fields alone (k = 1 or 3, the rest 0) describe the
 * U-Net's convolutions: square kernel, stride 1, 'same' padding. InceptionV3 also sets
 * kh/kw (1x7, 7x1, 1x3, 3x1, 5x5), stride 2 and 'valid' padding. Padding follows
 * TensorFlow: 'same' gives ceil(in/stride) outputs with pad_total = max((out-1)*stride +
 * k - in, 0), pad_total/2 before and the rest after; 'valid' gives (in-k)/stride + 1. */
struct conv_shape {
    int n, h, w; /* batch and INPUT spatial size */
    int cin, cout;
    int k;      /* square kernel size, used when kh and kw are 0 */
    int kh, kw; /* kernel height and width (0: k) */
    int stride; /* 0 or 1: stride 1; else that stride in both directions */
    int valid;  /* 0: 'same' zero padding; 1: 'valid' (no padding) */
};

static inline int conv_kh(const struct conv_shape *s)
{
    return s->kh ? s->kh : s->k;
}
static inline int conv_kw(const struct conv_shape *s)
{
    return s->kw ? s->kw : s->k;
}
static inline int conv_stride(const struct conv_shape *s)
{
    return s->stride > 1 ? s->stride : 1;
}
/* Output size along an axis of input size `in`, kernel k (TensorFlow's rule). */
static inline int conv_out_size(int in, int k, int stride, int valid)
{
    return valid ? (in - k) / stride + 1 : (in + stride - 1) / stride;
}
/* Zero rows (or columns) before the first input along an axis: 'same' pads pad_total/2. */
static inline int conv_pad_before(int in, int k, int stride, int valid)
{
    int total = (conv_out_size(in, k, stride, valid) - 1) * stride + k - in;
    return valid || total < 0 ? 0 : total / 2;
}
static inline int conv_out_h(const struct conv_shape *s)
{
    return conv_out_size(s->h, conv_kh(s), conv_stride(s), s->valid);
}
static inline int conv_out_w(const struct conv_shape *s)
{
    return conv_out_size(s->w, conv_kw(s), conv_stride(s), s->valid);
}
/* The U-Net's kind (square, stride 1, 'same'): the only kind conv2d_backward takes. */
static inline int conv_is_basic(const struct conv_shape *s)
{
    return conv_kh(s) == s->k && conv_kw(s) == s->k && conv_stride(s) == 1 && !s->valid;
}

/* What a forward convolution does to y after its bias (conv2d_forward's epi; NULL: nothing):
 * the ops that would otherwise read y back at once, fused into the pass that adds the bias.
 * In this order, each computed as its own op computes it, so the bits are those of the ops
 * run apart: y = y + residual (a residual block's add, writing y in the add's place), then
 * swish = swish(y) (y is kept: swish's backward reads it). */
struct conv_epilogue {
    const float *residual; /* (n, ho, wo, cout) or NULL */
    float *swish;          /* (n, ho, wo, cout) or NULL */
};

struct adamw_scalars; /* src/base/optim_math.h: one step's AdamW scalars */

enum pool_mode { POOL_MAX = 0, POOL_AVG = 1 };

/* A k x k pooling window with TensorFlow's padding rules (as conv_shape). Average pooling
 * with 'same' padding divides by the number of cells inside the image (padded cells are
 * left out of the average), as TensorFlow's AvgPool does. */
struct pool_shape {
    int n, h, w, c; /* INPUT size */
    int k, stride;
    int valid; /* 0: 'same'; 1: 'valid' */
    enum pool_mode mode;
};

/* The op list, written once: X(need, return type, name, (parameters)) for every op. The
 * struct below, each backend's declarations and table fill (kernels/cpu_ops.h,
 * kernels/cpu_backend.c, kernels/cuda_common.h, kernels/cuda_backend.cu) and the
 * capability queries (backend_missing_ops) are all expanded from it: adding an op is a line
 * here, its function in each backend and its tests. `need` says who needs the op: every
 * backend (OP_REQUIRED: training cannot run without it), InceptionV3 for KID
 * (OP_INFERENCE: a backend may leave it NULL), ddim-bench (OP_TIMING: likewise). */
enum backend_op_need { OP_REQUIRED, OP_INFERENCE, OP_TIMING };

/* (clang-format would read "struct backend *be" in the list as a product) */
/* clang-format off */
#define BACKEND_OPS(X)                                                                             \
    /* --- memory --- */                                                                           \
    X(OP_REQUIRED, void *, alloc,                                                                  \
      (struct backend *be, size_t bytes)) /* zero-filled; never NULL (dies) */                     \
    X(OP_REQUIRED, void, free, (struct backend *be, void *p))                                      \
    X(OP_REQUIRED, void, upload,                                                                   \
      (struct backend *be, void *dst, const void *src_host, size_t bytes))                         \
    X(OP_REQUIRED, void, download,                                                                 \
      (struct backend *be, void *dst_host, const void *src, size_t bytes))                         \
    X(OP_REQUIRED, void, copy, (struct backend *be, void *dst, const void *src, size_t bytes))     \
    X(OP_REQUIRED, void, fill, (struct backend *be, float *x, float value, size_t n))              \
    X(OP_REQUIRED, void, synchronize, (struct backend *be))                                        \
    X(OP_REQUIRED, void, destroy, (struct backend *be))                                            \
                                                                                                   \
    /* --- convolution (zero padding, bias; see struct conv_shape) --- */                          \
    /* y (n,ho,wo,cout) = conv(x (n,h,w,cin), w (kh,kw,cin,cout)) + bias (cout), then the         \
     * epilogue (NULL: none; see struct conv_epilogue) */                                          \
    X(OP_REQUIRED, void, conv2d_forward,                                                           \
      (struct backend *be, float *y, const float *x, const float *w, const float *bias,            \
       const struct conv_shape *s, const struct conv_epilogue *epi))                               \
    /* dx (=/+= by dx_mode) dL/dx (skipped when dx is NULL); dw = dL/dw; dbias = dL/dbias.        \
     * Only for conv_is_basic shapes (the U-Net's): the other shapes are inference-only. */        \
    X(OP_REQUIRED, void, conv2d_backward,                                                          \
      (struct backend *be, float *dx, float *dw, float *dbias, const float *dy, const float *x,    \
       const float *w, const struct conv_shape *s, enum grad_mode dx_mode))                        \
                                                                                                   \
    /* --- BatchNormalization without center/scale (Keras: momentum, epsilon) ---                  \
     * Training mode is split in two so that the per-channel sums can be all-reduced               \
     * across ranks between the calls (synchronized BatchNorm). */                                 \
    /* stats (2c) = [sum_r x[r,c], sum_r x[r,c]^2]: written (=) */                                 \
    X(OP_REQUIRED, void, bn_stats,                                                                 \
      (struct backend *be, float *stats, const float *x, size_t rows, int c))                      \
    /* From global stats over `count` rows: mean, biased var; y = (x-mean)/sqrt(var+eps);          \
     * saved (2c) = [mean, 1/sqrt(var+eps)] for backward; moving_mean/moving_var updated as        \
     * moving = momentum*moving + (1-momentum)*batch, where the batch variance for the             \
     * moving average is var*count/(count-1) (TensorFlow's fused batch norm). */                   \
    X(OP_REQUIRED, void, bn_forward_train,                                                         \
      (struct backend *be, float *y, float *saved, float *moving_mean, float *moving_var,          \
       const float *x, const float *stats, double count, size_t rows, int c, float momentum,       \
       float eps))                                                                                 \
    /* y = (x - moving_mean) / sqrt(moving_var + eps) */                                           \
    X(OP_REQUIRED, void, bn_forward_infer,                                                         \
      (struct backend *be, float *y, const float *x, const float *moving_mean,                     \
       const float *moving_var, size_t rows, int c, float eps))                                    \
    /* bstats (2c) = [sum_r dy, sum_r dy*xhat]: written (=) */                                     \
    X(OP_REQUIRED, void, bn_backward_stats,                                                        \
      (struct backend *be, float *bstats, const float *dy, const float *x, const float *saved,     \
       size_t rows, int c))                                                                        \
    /* dx (=/+=) invstd * (dy - sum_dy/count - xhat*sum_dy_xhat/count), from global bstats */      \
    X(OP_REQUIRED, void, bn_backward_apply,                                                        \
      (struct backend *be, float *dx, const float *dy, const float *x, const float *saved,         \
       const float *bstats, double count, size_t rows, int c, enum grad_mode mode))                \
                                                                                                   \
    /* --- elementwise and layout ops --- */                                                       \
    /* y = x * sigmoid(x) */                                                                       \
    X(OP_REQUIRED, void, swish_forward, (struct backend *be, float *y, const float *x, size_t n))  \
    /* dx (=/+=) dy * d swish(x)/dx */                                                             \
    X(OP_REQUIRED, void, swish_backward,                                                           \
      (struct backend *be, float *dx, const float *dy, const float *x, size_t n,                   \
       enum grad_mode mode))                                                                       \
    /* y = a + b */                                                                                \
    X(OP_REQUIRED, void, add,                                                                      \
      (struct backend *be, float *y, const float *a, const float *b, size_t n))                    \
    /* the backward of add, dy read once: da (=/+= by mode_a) dy; db (by mode_b) dy; either        \
     * may be NULL */                                                                              \
    X(OP_REQUIRED, void, add_backward,                                                             \
      (struct backend *be, float *da, float *db, const float *dy, size_t n, enum grad_mode mode_a, \
       enum grad_mode mode_b))                                                                     \
    /* y += alpha * x */                                                                           \
    X(OP_REQUIRED, void, axpy,                                                                     \
      (struct backend *be, float *y, float alpha, const float *x, size_t n))                       \
    /* x *= alpha */                                                                               \
    X(OP_REQUIRED, void, scale, (struct backend *be, float *x, float alpha, size_t n))             \
    /* y (rows, ca+cb) = [a (rows, ca) | b (rows, cb)] */                                          \
    X(OP_REQUIRED, void, concat_forward,                                                           \
      (struct backend *be, float *y, const float *a, const float *b, size_t rows, int ca,          \
       int cb))                                                                                    \
    /* da (=/+= by mode_a) dy[:, :ca]; db (by mode_b) dy[:, ca:] (either may be NULL) */           \
    X(OP_REQUIRED, void, concat_backward,                                                          \
      (struct backend *be, float *da, float *db, const float *dy, size_t rows, int ca, int cb,     \
       enum grad_mode mode_a, enum grad_mode mode_b))                                              \
    /* y (n,h/2,w/2,c) = 2x2 average pooling, stride 2, of x (n,h,w,c); h, w even */               \
    X(OP_REQUIRED, void, avgpool2_forward,                                                         \
      (struct backend *be, float *y, const float *x, int n, int h, int w, int c))                  \
    /* dx (=/+=) pooling backward of dy (n,h/2,w/2,c); h, w are the INPUT size */                  \
    X(OP_REQUIRED, void, avgpool2_backward,                                                        \
      (struct backend *be, float *dx, const float *dy, int n, int h, int w, int c,                 \
       enum grad_mode mode))                                                                       \
    /* y (n,2h,2w,c) = bilinear 2x upsampling of x (n,h,w,c), TF half-pixel centers */             \
    X(OP_REQUIRED, void, upsample2_forward,                                                        \
      (struct backend *be, float *y, const float *x, int n, int h, int w, int c))                  \
    /* dx (=/+=) backward of the above; h, w are the INPUT size */                                 \
    X(OP_REQUIRED, void, upsample2_backward,                                                       \
      (struct backend *be, float *dx, const float *dy, int n, int h, int w, int c,                 \
       enum grad_mode mode))                                                                       \
    /* e (n,h,w,dims) = [sin(2*pi*f_k*v_i), cos(2*pi*f_k*v_i)], f_k = exp(linspace(log fmin,       \
     * log fmax, dims/2)), v (n,) the noise variances, broadcast over h, w (float32 math in        \
     * TensorFlow's order, see kernels/cpu_elementwise.c) */                                       \
    X(OP_REQUIRED, void, sinusoidal_embedding,                                                     \
      (struct backend *be, float *e, const float *v, int n, int h, int w, int dims, float fmin,    \
       float fmax))                                                                                \
                                                                                                   \
    /* --- loss --- */                                                                             \
    /* out[0] = mean over n elements of |pred-target| (MAE) or (pred-target)^2 (MSE) */            \
    X(OP_REQUIRED, void, loss_value,                                                               \
      (struct backend *be, float *out, const float *pred, const float *target, size_t n,           \
       enum loss_kind kind))                                                                       \
    /* dpred = scale * d loss_elem / d pred (written, =) */                                        \
    X(OP_REQUIRED, void, loss_backward,                                                            \
      (struct backend *be, float *dpred, const float *pred, const float *target, size_t n,         \
       float scale, enum loss_kind kind))                                                          \
                                                                                                   \
    /* --- diffusion (per-example scalars broadcast over `per` elements) --- */                    \
    /* noise_rates = sin(a), signal_rates = cos(a), a = acos(max) + t*(acos(min) - acos(max)) */   \
    X(OP_REQUIRED, void, diffusion_schedule,                                                       \
      (struct backend *be, float *noise_rates, float *signal_rates, const float *times, int n,     \
       float min_signal_rate, float max_signal_rate))                                              \
    /* y = sa[i]*a + sb[i]*b: mixing images with noises, and the sampler's remix */                \
    X(OP_REQUIRED, void, mix,                                                                      \
      (struct backend *be, float *y, const float *sa, const float *a, const float *sb,             \
       const float *b, int n, size_t per))                                                         \
    /* pred_images = (noisy - noise_rates[i]*pred_noises) / signal_rates[i] */                     \
    X(OP_REQUIRED, void, pred_images,                                                              \
      (struct backend *be, float *y, const float *noisy, const float *pred_noises,                 \
       const float *noise_rates, const float *signal_rates, int n, size_t per))                    \
    /* v = x*x (the network is fed the noise variance) */                                          \
    X(OP_REQUIRED, void, square, (struct backend *be, float *v, const float *x, size_t n))         \
    /* y (rows,c) = (x - mean[c]) / max(sqrt(var[c]), 1e-7) (Keras Normalization) */               \
    X(OP_REQUIRED, void, normalize,                                                                \
      (struct backend *be, float *y, const float *x, const float *mean, const float *var,          \
       size_t rows, int c))                                                                        \
    /* y = clip(mean[c] + x*sqrt(var[c]), 0, 1) */                                                 \
    X(OP_REQUIRED, void, denormalize,                                                              \
      (struct backend *be, float *y, const float *x, const float *mean, const float *var,          \
       size_t rows, int c))                                                                        \
    /* out (n, per) = images[idx[first + i]] / 255 for i < n, first = *idx_first (a counter;       \
     * NULL: 0): uint8 images (count, per), int32 indices, all in backend memory. The training     \
     * shard kept resident (data.resident): float32 division by 255, exactly as io/dataset.c's     \
     * host path, so both give the same bits. The indices are not checked: the caller keeps        \
     * them in [0, count). */                                                                      \
    X(OP_REQUIRED, void, gather_images,                                                            \
      (struct backend *be, float *out, const uint8_t *images, const int32_t *idx,                  \
       const int32_t *idx_first, int n, size_t per))                                               \
    /* c[i] += by[i] for i < n: advances step counters (both int32, backend memory) */             \
    X(OP_REQUIRED, void, counters_add, (struct backend *be, int32_t *c, const int32_t *by, int n)) \
    /* dst[slot * n + j] = src[j] for j < n, slot = *slot (a counter): e.g. a step's losses        \
     * into its place in a history */                                                              \
    X(OP_REQUIRED, void, copy_to_slot,                                                             \
      (struct backend *be, float *dst, const int32_t *slot, const float *src, size_t n))           \
                                                                                                   \
    /* --- random numbers (Philox4x32-10, counter-based, see src/base/rng.h) ---                   \
     * Element j of example i (global index first + i) is a function of (seed, step,               \
     * purpose, first + i, j) only: the same on every backend and any number of ranks. The         \
     * step is step + *step_add (a counter; NULL: + 0), in uint32 arithmetic. */                   \
    X(OP_REQUIRED, void, fill_normal,                                                              \
      (struct backend *be, float *x, int n, size_t per, uint64_t seed, uint32_t step,              \
       uint32_t purpose, uint32_t first, const int32_t *step_add))                                 \
    X(OP_REQUIRED, void, fill_uniform,                                                             \
      (struct backend *be, float *x, int n, size_t per, uint64_t seed, uint32_t step,              \
       uint32_t purpose, uint32_t first, const int32_t *step_add))                                 \
                                                                                                   \
    /* --- optimizer, over flat parameter buffers --- */                                           \
    /* Keras AdamW, in Keras's order: w -= lr*wd*w; m += (g-m)(1-b1); v += (g^2-v)(1-b2);          \
     * w -= m * lr*sqrt(1-b2^t)/(1-b1^t) / (sqrt(v) + eps), with step t's scalars                  \
     * table[*index] (optim_math.h's adamw_scalars_for_step, computed on the host: one float32     \
     * powf for every backend; table and index, a counter, in backend memory) */                   \
    X(OP_REQUIRED, void, adamw_update,                                                             \
      (struct backend *be, float *w, const float *g, float *m, float *v, size_t n,                 \
       const struct adamw_scalars *table, const int32_t *index))                                   \
    /* ema = decay*ema + (1-decay)*w */                                                            \
    X(OP_REQUIRED, void, ema_update,                                                               \
      (struct backend *be, float *ema, const float *w, size_t n, float decay))                     \
                                                                                                   \
    /* --- inference-only ops (optional: InceptionV3 for KID; NULL where a backend has none,       \
     * see backend_missing_inference_ops; no backward exists) --- */                               \
    /* y = max(x, 0) */                                                                            \
    X(OP_INFERENCE, void, relu_forward, (struct backend *be, float *y, const float *x, size_t n))  \
    /* y (n, ho, wo, c) = max or average pooling of x (n, h, w, c), see struct pool_shape */       \
    X(OP_INFERENCE, void, pool_forward,                                                            \
      (struct backend *be, float *y, const float *x, const struct pool_shape *s))                  \
    /* y (n, c) = mean over h*w of x (n, h, w, c), accumulated in double */                        \
    X(OP_INFERENCE, void, global_avgpool_forward,                                                  \
      (struct backend *be, float *y, const float *x, int n, int h, int w, int c))                  \
    /* y (n, ho, wo, c) = bilinear resize of x (n, h, w, c) as TensorFlow's ResizeBilinear with    \
     * half_pixel_centers (tf.image.resize, antialias off): src = (o + 0.5) * in/out - 0.5,        \
     * taps floor(src) clamped to >= 0 and ceil(src) clamped to <= in-1 */                         \
    X(OP_INFERENCE, void, resize_bilinear_forward,                                                 \
      (struct backend *be, float *y, const float *x, int n, int h, int w, int c, int ho, int wo))  \
                                                                                                   \
    /* --- timing and memory (optional: NULL where a backend has none; ddim-bench) ---             \
     * Events are recorded in op order (CUDA: on be->stream), so the time between two is the       \
     * time the ops queued between them took, without a host synchronization per step. */          \
    X(OP_TIMING, void *, event_create, (struct backend *be))                                       \
    X(OP_TIMING, void, event_record, (struct backend *be, void *ev))                               \
    X(OP_TIMING, float, event_elapsed_ms,                                                          \
      (struct backend *be, void *start, void *end)) /* waits for end */                            \
    X(OP_TIMING, void, event_destroy, (struct backend *be, void *ev))                              \
    /* device memory in use at its peak, or 0 if unknown */                                        \
    X(OP_TIMING, size_t, memory_peak_bytes, (struct backend *be))
/* clang-format on */

/* Every op's index in the list: BACKEND_OP_conv2d_forward, ... (tests and supports_op name
 * ops by it); BACKEND_OP_COUNT ops in all. */
enum backend_op_id {
#define BACKEND_OP_ID(need, ret, op, params) BACKEND_OP_##op,
    BACKEND_OPS(BACKEND_OP_ID)
#undef BACKEND_OP_ID
        BACKEND_OP_COUNT
};

/* The shape an op is asked about (supports_op): the fields of the op's kind, the rest 0.
 * Convolutions: conv; pool_forward: pool; BatchNorm's ops: rows and c (channels);
 * sinusoidal_embedding: c (dims). Other ops take every size. */
struct op_shape {
    const struct conv_shape *conv;
    const struct pool_shape *pool;
    size_t rows;
    int c;
};

struct backend {
    const char *name; /* "cpu" or "cuda" */
    void *ctx;        /* implementation state: workspaces, library handles */
    void *stream;     /* CUDA: the cudaStream_t every op runs on (NCCL joins it); CPU: NULL */
#define BACKEND_OP_FIELD(need, ret, op, params) ret(*op) params;
    BACKEND_OPS(BACKEND_OP_FIELD)
#undef BACKEND_OP_FIELD

    /* --- graphs (optional: NULL where a backend has none; CUDA: stream capture) ---
     * Not ops: they record ops. Between graph_capture_begin and graph_capture_end the ops are
     * recorded, not run; graph_launch runs the recorded ops again, in order, with the same
     * arguments (so what changes between launches must live in backend memory). An op that
     * cannot be recorded (a host synchronization, an allocation, an upload) spoils the
     * capture: end then returns NULL with the reason in err, the backend is usable again and
     * nothing of the recorded work has run. */
    void (*graph_capture_begin)(struct backend *be);
    void *(*graph_capture_end)(struct backend *be, char *err, size_t errlen);
    /* 1, or 0 without running anything when the graph is stale: a buffer it uses was
     * replaced since its capture (a workspace grown for a new shape); capture again */
    int (*graph_launch)(struct backend *be, void *graph);
    void (*graph_destroy)(struct backend *be, void *graph);

    /* Which shapes an op takes, as ggml's supports_op (optional: NULL takes every shape of
     * every op the backend has): 1, or 0 with the reason in why. A network asks for each of
     * its nodes when it meets a backend (graph_check_backend), so that a shape a backend
     * cannot run is refused there, naming the op and the shape, not in the middle of a
     * run. An op's kernel checks the same rule and dies if it is called anyway. */
    int (*supports_op)(struct backend *be, enum backend_op_id op, const struct op_shape *s,
                       char *why, size_t whylen);
};

/* The CPU backend: always available. */
struct backend *cpu_backend_create(void);

/* The CUDA backend on GPU `device`; NULL with a message in err when no usable GPU (no
 * device, driver too old, device index out of range). Returns NULL when built without
 * CUDA. */
struct backend *cuda_backend_create(int device, char *err, size_t errlen);

/* The capability query: names of the ops of that need a backend leaves NULL,
 * comma-separated into out (may be NULL); returns their count. */
int backend_missing(const struct backend *be, enum backend_op_need need, char *out, size_t outlen);

/* backend_missing(be, OP_REQUIRED, ...): a backend with missing ops cannot train. */
int backend_missing_ops(const struct backend *be, char *out, size_t outlen);

/* backend_missing(be, OP_INFERENCE, ...): the optional ops InceptionV3 (KID) needs. */
int backend_missing_inference_ops(const struct backend *be, char *out, size_t outlen);

/* 1 if be fills op's entry (not NULL). */
int backend_has_op(const struct backend *be, enum backend_op_id op);

/* An op's name ("conv2d_forward") and need, from the op list. */
const char *backend_op_name(enum backend_op_id op);
enum backend_op_need backend_op_need_of(enum backend_op_id op);

/* 1 if be has op and takes it at shape s (supports_op); else 0 with "the cuda backend
 * cannot run sinusoidal_embedding on dims=2048: ..." in err. */
int backend_supports(struct backend *be, enum backend_op_id op, const struct op_shape *s, char *err,
                     size_t errlen);

/* The one rule of conv2d_backward, the same on every backend: only the U-Net's kind of
 * convolution (conv_is_basic) has a backward. 1, or 0 with the reason in why. */
int backend_conv_has_backward(const struct conv_shape *s, char *why, size_t whylen);

/* Each backend's conv2d_backward calls this first: it dies naming the backend and the shape
 * when backend_conv_has_backward refuses s (a caller that skipped supports_op). */
void backend_require_conv_backward(const char *backend, const struct conv_shape *s);

#ifdef __cplusplus
}
#endif

#endif
