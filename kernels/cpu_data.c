/* cpu_data.c: the resident training set's gather on the CPU: a batch of uint8 images picked
 * by index and scaled to [0, 1] with io/dataset.c's float32 expression (u / 255.0f, a
 * division, as the Keras example's preprocess_image), so that resident and streamed data
 * give the same bits; and the step counters (counters_add, copy_to_slot). */
#include "cpu_ops.h"

#include <string.h>

void cpu_gather_images(struct backend *be, float *out, const uint8_t *images, const int32_t *idx,
                       const int32_t *idx_first, int n, size_t per)
{
    if (idx_first)
        idx += *idx_first;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        const uint8_t *src = images + (size_t)idx[i] * per;
        float *dst = out + (size_t)i * per;
        for (size_t j = 0; j < per; j++)
            dst[j] = (float)src[j] / 255.0f;
    }
}

void cpu_counters_add(struct backend *be, int32_t *c, const int32_t *by, int n)
{
    for (int i = 0; i < n; i++)
        c[i] += by[i];
}

void cpu_copy_to_slot(struct backend *be, float *dst, const int32_t *slot, const float *src,
                      size_t n)
{
    memcpy(dst + (size_t)*slot * n, src, n * sizeof(float));
}
