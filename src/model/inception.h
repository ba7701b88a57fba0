/* inception.h: InceptionV3 without its top, as keras.applications.InceptionV3(
 * include_top=False, input_shape=(75, 75, 3)) builds it, followed by the KID encoder's
 * preprocessing and pooling (the Keras example's KID class): images in [0, 1] of any square
 * size are resized to 75x75 (bilinear, half-pixel centres, no antialiasing), mapped to
 * [-1, 1] (x * 255 / 127.5 - 1), run through the network in inference mode and averaged
 * over space: 2048 features per image.
 *
 * A graph (graph.h) on the one executor, inference only: each Conv2D + BatchNormalization
 * (no bias, no gamma, epsilon 1e-3) is one convolution whose kernel and bias hold the
 * BatchNorm folded in at load time, followed by a ReLU node. */
#ifndef DDIM_INCEPTION_H
#define DDIM_INCEPTION_H

#include "graph.h"

#include <stddef.h>

enum { INCEPTION_INPUT_SIZE = 75, INCEPTION_FEATURES = 2048 };

struct inception;

/* The network for images of image_size x image_size x 3, resized to input_size (75 in the
 * example, eval.kid_image_size); NULL with a message if a size is out of range. */
struct inception *inception_create(int image_size, int input_size, char *err, size_t errlen);
void inception_destroy(struct inception *net);
const struct graph *inception_graph(const struct inception *net);

/* Reads Keras's weight file (inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5, or
 * any file in its layout) into w_host (graph params.total floats), BatchNorm folded into
 * the convolutions. As Keras loads it: by layer order (the root attribute `layer_names`, the
 * layers whose `weight_names` is not empty, in the order Keras lists the model's layers),
 * not by name; every shape is checked. 0, or -1 with a message naming the file and layer. */
int inception_load_keras_h5(const struct inception *net, const char *path, float *w_host, char *err,
                            size_t errlen);

#endif
