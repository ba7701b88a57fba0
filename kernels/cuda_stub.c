/* cuda_stub.c: the CUDA backend's stand-in in builds without CUDA (CMakeLists.txt compiles
 * it instead of kernels/cuda_*.cu): asking for the CUDA backend says how to get one. */
#include "backend.h"
#include "util.h"

struct backend *cuda_backend_create(int device, char *err, size_t errlen)
{
    util_error(err, errlen,
               "this ddim-dist was built without the CUDA backend (reconfigure "
               "with -DDDIM_CUDA=ON where nvcc, cuDNN and NCCL are found)");
    return NULL;
}
