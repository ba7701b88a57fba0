/* cuda_data.cu: the resident training set's gather on the GPU: a batch of uint8 images
 * picked by an int32 index vector (both in device memory) and scaled to [0, 1] with
 * kernels/cpu_data.c's float32 expression u / 255.0f. The division is __fdiv_rn (IEEE,
 * round to nearest) whatever -prec-div or --use_fast_math say, so that the bits equal the
 * CPU's and io/dataset.c's host path. No host synchronization: the step's images never
 * leave the device. */
#include "cuda_common.h"

/* out[i, j] = images[idx[i], j] / 255 */
static __global__ void gather_images_kernel(float *out, const uint8_t *images, const int32_t *idx,
                                            int n, size_t per)
{
    CUDA_GRID_STRIDE_LOOP(k, (size_t)n * per)
    {
        size_t i = k / per, j = k - i * per;
        uint8_t u = images[(size_t)idx[i] * per + j];
        out[k] = __fdiv_rn((float)u, 255.0f);
    }
}

void cuda_gather_images(struct backend *be, float *out, const uint8_t *images, const int32_t *idx,
                        int n, size_t per)
{
    size_t total = (size_t)(n > 0 ? n : 0) * per;
    if (!total)
        return;
    gather_images_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        out, images, idx, n, per);
    KERNEL_CHECK();
}
