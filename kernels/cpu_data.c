/* cpu_data.c: the resident training set's gather on the CPU: a batch of uint8 images picked
 * by index and scaled to [0, 1] with io/dataset.c's float32 expression (u / 255.0f, a
 * division, as the Keras example's preprocess_image), so that resident and streamed data
 * give the same bits. */
#include "cpu_ops.h"

void cpu_gather_images(struct backend *be, float *out, const uint8_t *images, const int32_t *idx,
                       int n, size_t per)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const uint8_t *src = images + (size_t)idx[i] * per;
        float *dst = out + (size_t)i * per;
        for (size_t j = 0; j < per; j++)
            dst[j] = (float)src[j] / 255.0f;
    }
}
