/* kid.h: Kernel Inception Distance as the Keras example's KID metric computes it.
 *
 * Features: InceptionV3 (inception.h) on images in [0, 1], 2048 per image. Per batch of n
 * real and n generated images, with k(x, y) = (x . y / 2048 + 1)^3:
 *   KID = sum_{i!=j} k(r_i, r_j) / (n(n-1)) + sum_{i!=j} k(g_i, g_j) / (n(n-1))
 *         - 2 sum_{i,j} k(r_i, g_j) / n^2
 * (the unbiased estimate of the squared MMD), and the metric is the mean over batches.
 * The sums are accumulated in double (Keras sums float32): see docs/kid.md. */
#ifndef DDIM_KID_H
#define DDIM_KID_H

#include "backend.h"

#include <stddef.h>

struct kid_encoder;

/* The encoder for images of image_size px resized to kid_image_size (75), in batches of up
 * to `batch` images, with the weights of Keras's InceptionV3 notop file at `weights_path`.
 * NULL with a message when the file is missing or does not match, or the backend lacks the
 * inference ops. */
struct kid_encoder *kid_encoder_create(struct backend *be, const char *weights_path, int image_size,
                                       int kid_image_size, int batch, char *err, size_t errlen);
void kid_encoder_destroy(struct kid_encoder *e);
int kid_encoder_batch(const struct kid_encoder *e);

/* features_host (n, 2048) of images (n, S, S, 3) in [0, 1], backend memory, n <= batch. */
void kid_encode(struct kid_encoder *e, const float *images, int n, float *features_host);

enum { KID_SUM_REAL = 0, KID_SUM_GENERATED = 1, KID_SUM_CROSS = 2 };

/* sums[3] of one batch: the three kernel sums above, over n real and n generated features
 * (n, dims) each. */
void kid_kernel_sums(const float *real, const float *generated, int n, int dims, double sums[3]);
/* The KID of one batch from its sums (n >= 2). */
double kid_from_sums(const double sums[3], int n);

#endif
