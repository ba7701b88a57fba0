/* cuda_data.cu: the step counters (counters_add, copy_to_slot) and the resident training
 * set's gather on the GPU: a batch of uint8 images
 * picked by an int32 index vector (both in device memory) and scaled to [0, 1] with
 * kernels/cpu_data.c's float32 expression u / 255.0f. The division is __fdiv_rn (IEEE,
 * round to nearest) whatever -prec-div or --use_fast_math say, so that the bits equal the
 * CPU's and io/dataset.c's host path. No host synchronization: the step's images never
 * leave the device. */
#include "cuda_common.h"

/* out[i, j] = images[idx[first + i], j] / 255, first = *idx_first (or 0) */
static __global__ void gather_images_kernel(float *out, const uint8_t *images, const int32_t *idx,
                                            const int32_t *idx_first, int n, size_t per)
{
    if (idx_first)
        idx += *idx_first;
    CUDA_GRID_STRIDE_LOOP(k, (size_t)n * per)
    {
        size_t i = k / per, j = k - i * per;
        uint8_t u = images[(size_t)idx[i] * per + j];
        out[k] = __fdiv_rn((float)u, 255.0f);
    }
}

void cuda_gather_images(struct backend *be, float *out, const uint8_t *images, const int32_t *idx,
                        const int32_t *idx_first, int n, size_t per)
{
    size_t total = (size_t)(n > 0 ? n : 0) * per;
    if (!total)
        return;
    gather_images_kernel<<<cuda_grid(total, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(
        out, images, idx, idx_first, n, per);
    KERNEL_CHECK();
}

/* c[i] += by[i]: one block, a few counters */
static __global__ void counters_add_kernel(int32_t *c, const int32_t *by, int n)
{
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        c[i] += by[i];
}

void cuda_counters_add(struct backend *be, int32_t *c, const int32_t *by, int n)
{
    if (n <= 0)
        return;
    counters_add_kernel<<<1, 32, 0, cuda_stream(be)>>>(c, by, n);
    KERNEL_CHECK();
}

/* dst[*slot * n + j] = src[j] */
static __global__ void copy_to_slot_kernel(float *dst, const int32_t *slot, const float *src,
                                           size_t n)
{
    float *d = dst + (size_t)*slot * n;
    CUDA_GRID_STRIDE_LOOP(j, n)
    {
        d[j] = src[j];
    }
}

void cuda_copy_to_slot(struct backend *be, float *dst, const int32_t *slot, const float *src,
                       size_t n)
{
    if (!n)
        return;
    copy_to_slot_kernel<<<cuda_grid(n, CUDA_BLOCK), CUDA_BLOCK, 0, cuda_stream(be)>>>(dst, slot,
                                                                                      src, n);
    KERNEL_CHECK();
}
