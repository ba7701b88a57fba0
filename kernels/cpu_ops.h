/* cpu_ops.h: the CPU backend's ops, shared between its source files (not a public API:
 * everything outside kernels/ goes through struct backend). */
#ifndef DDIM_CPU_OPS_H
#define DDIM_CPU_OPS_H

#include "backend.h"

struct cpu_ctx {
    float *workspace; /* im2col buffer, grown to the largest layer once */
    size_t workspace_floats;
};

/* Convolution (cpu_conv.c) */
void cpu_conv2d_forward(struct backend *be, float *y, const float *x, const float *w,
                        const float *bias, const struct conv_shape *s);
void cpu_conv2d_backward(struct backend *be, float *dx, float *dw, float *dbias, const float *dy,
                         const float *x, const float *w, const struct conv_shape *s);

/* BatchNorm (cpu_norm.c) */
void cpu_bn_stats(struct backend *be, float *stats, const float *x, size_t rows, int c);
void cpu_bn_forward_train(struct backend *be, float *y, float *saved, float *moving_mean,
                          float *moving_var, const float *x, const float *stats, double count,
                          size_t rows, int c, float momentum, float eps);
void cpu_bn_forward_infer(struct backend *be, float *y, const float *x, const float *moving_mean,
                          const float *moving_var, size_t rows, int c, float eps);
void cpu_bn_backward_stats(struct backend *be, float *bstats, const float *dy, const float *x,
                           const float *saved, size_t rows, int c);
void cpu_bn_backward_apply(struct backend *be, float *dx, const float *dy, const float *x,
                           const float *saved, const float *bstats, double count, size_t rows,
                           int c);

/* Elementwise, layout, resampling, embedding, loss (cpu_elementwise.c, cpu_resample.c) */
void cpu_swish_forward(struct backend *be, float *y, const float *x, size_t n);
void cpu_swish_backward(struct backend *be, float *dx, const float *dy, const float *x, size_t n);
void cpu_add(struct backend *be, float *y, const float *a, const float *b, size_t n);
void cpu_axpy(struct backend *be, float *y, float alpha, const float *x, size_t n);
void cpu_scale(struct backend *be, float *x, float alpha, size_t n);
void cpu_concat_forward(struct backend *be, float *y, const float *a, const float *b, size_t rows,
                        int ca, int cb);
void cpu_concat_backward(struct backend *be, float *da, float *db, const float *dy, size_t rows,
                         int ca, int cb);
void cpu_avgpool2_forward(struct backend *be, float *y, const float *x, int n, int h, int w, int c);
void cpu_avgpool2_backward(struct backend *be, float *dx, const float *dy, int n, int h, int w,
                           int c);
void cpu_upsample2_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                           int c);
void cpu_upsample2_backward(struct backend *be, float *dx, const float *dy, int n, int h, int w,
                            int c);
void cpu_sinusoidal_embedding(struct backend *be, float *e, const float *v, int n, int h, int w,
                              int dims, float fmin, float fmax);
void cpu_loss_value(struct backend *be, float *out, const float *pred, const float *target,
                    size_t n, enum loss_kind kind);
void cpu_loss_backward(struct backend *be, float *dpred, const float *pred, const float *target,
                       size_t n, float scale, enum loss_kind kind);

/* Diffusion, normalization, random numbers, optimizer (cpu_diffusion.c) */
void cpu_diffusion_schedule(struct backend *be, float *noise_rates, float *signal_rates,
                            const float *times, int n, float min_signal_rate,
                            float max_signal_rate);
void cpu_mix(struct backend *be, float *y, const float *sa, const float *a, const float *sb,
             const float *b, int n, size_t per);
void cpu_pred_images(struct backend *be, float *y, const float *noisy, const float *pred_noises,
                     const float *noise_rates, const float *signal_rates, int n, size_t per);
void cpu_square(struct backend *be, float *v, const float *x, size_t n);
void cpu_normalize(struct backend *be, float *y, const float *x, const float *mean,
                   const float *var, size_t rows, int c);
void cpu_denormalize(struct backend *be, float *y, const float *x, const float *mean,
                     const float *var, size_t rows, int c);
void cpu_fill_normal(struct backend *be, float *x, int n, size_t per, uint64_t seed, uint32_t step,
                     uint32_t purpose, uint32_t first);
void cpu_fill_uniform(struct backend *be, float *x, int n, size_t per, uint64_t seed, uint32_t step,
                      uint32_t purpose, uint32_t first);
void cpu_adamw_update(struct backend *be, float *w, const float *g, float *m, float *v, size_t n,
                      float lr, float beta1, float beta2, float eps, float wd, int step);
void cpu_ema_update(struct backend *be, float *ema, const float *w, size_t n, float decay);

/* The resident training set's gather (cpu_data.c) */
void cpu_gather_images(struct backend *be, float *out, const uint8_t *images, const int32_t *idx,
                       int n, size_t per);

/* Inference-only ops for InceptionV3 (cpu_infer.c) */
void cpu_relu_forward(struct backend *be, float *y, const float *x, size_t n);
void cpu_pool_forward(struct backend *be, float *y, const float *x, const struct pool_shape *s);
void cpu_global_avgpool_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                                int c);
void cpu_resize_bilinear_forward(struct backend *be, float *y, const float *x, int n, int h, int w,
                                 int c, int ho, int wo);

/* Timing events and memory figure, backend.h's optional hooks (cpu_timing.c) */
void *cpu_event_create(struct backend *be);
void cpu_event_record(struct backend *be, void *ev);
float cpu_event_elapsed_ms(struct backend *be, void *start, void *end);
void cpu_event_destroy(struct backend *be, void *ev);
size_t cpu_memory_peak_bytes(struct backend *be);

#endif
