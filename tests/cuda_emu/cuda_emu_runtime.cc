/* cuda_emu_runtime.cc: the host emulation's CUDA runtime API: one device, whose memory is
 * host memory (cudaMalloc'd ranges are recorded, so that a kernel given a host pointer is an
 * error), every call synchronous (streams and events are markers, events read the host
 * clock), errors kept until cudaGetLastError as the runtime keeps them. */
#include "cuda_emu.h"

#include <chrono>
#include <map>
#include <stdio.h>
#include <stdlib.h>

static cudaError_t last_error = cudaSuccess;
static std::map<uintptr_t, size_t> allocations; /* device allocations: start -> bytes */

namespace emu
{

cudaError_t check_kernel_pointer(const config &cfg, int index, const void *p)
{
    if (!p)
        return cudaSuccess;
    uintptr_t a = (uintptr_t)p;
    auto it = allocations.upper_bound(a);
    if (it != allocations.begin()) {
        --it;
        if (a <= it->first + it->second) /* inside, or one past the end */
            return cudaSuccess;
    }
    fprintf(stderr,
            "cuda emulator: kernel launched at %s:%d: argument %d (%p) is not device memory "
            "(not from cudaMalloc)\n",
            base_name(cfg.file), cfg.line, index + 1, p);
    return cudaErrorIllegalAddress;
}

void set_launch_error(cudaError_t e)
{
    if (e != cudaSuccess && last_error == cudaSuccess)
        last_error = e;
}

} // namespace emu

/* --- runtime API ------------------------------------------------------------------------ */
struct emu_stream {
    unsigned flags;
};
struct emu_event {
    double ms; /* host time when recorded: the work before it has finished (synchronous) */
};

static double now_ms()
{
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

static cudaError_t fail(cudaError_t e)
{
    if (last_error == cudaSuccess)
        last_error = e;
    return e;
}

cudaError_t cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int device)
{
    return device == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice);
}
cudaError_t cudaGetDevice(int *device)
{
    *device = 0;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device)
{
    if (device != 0)
        return fail(cudaErrorInvalidDevice);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "ddim-dist host emulation");
    prop->totalGlobalMem = (size_t)16 << 30;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->sharedMemPerBlockOptin = 48 * 1024;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 0x7fffffff;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->multiProcessorCount = 8;
    prop->major = 9;
    prop->clockRate = 1000000;
    return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize()
{
    return last_error;
}
cudaError_t cudaGetLastError()
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
cudaError_t cudaPeekAtLastError()
{
    return last_error;
}
const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess:
        return "cudaSuccess";
    case cudaErrorInvalidValue:
        return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
        return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
        return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer:
        return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidResourceHandle:
        return "cudaErrorInvalidResourceHandle";
    case cudaErrorNoDevice:
        return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
        return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress:
        return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure:
        return "cudaErrorLaunchFailure";
    }
    return "cudaErrorUnknown";
}
const char *cudaGetErrorString(cudaError_t e)
{
    return e == cudaSuccess ? "no error"
                            : "error found by the CUDA host emulation (its message is above)";
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    size_t rounded = (bytes + 255) / 256 * 256; /* aligned_alloc needs a multiple */
    *p = aligned_alloc(256, rounded ? rounded : 256);
    if (!*p)
        return fail(cudaErrorMemoryAllocation);
    allocations[(uintptr_t)*p] = bytes;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p)
{
    if (!p)
        return cudaSuccess;
    auto it = allocations.find((uintptr_t)p);
    if (it == allocations.end()) {
        fprintf(stderr, "cuda emulator: cudaFree(%p) of memory cudaMalloc did not return\n", p);
        return fail(cudaErrorInvalidDevicePointer);
    }
    allocations.erase(it);
    free(p);
    return last_error;
}
cudaError_t cudaMallocHost(void **p, size_t bytes)
{
    *p = malloc(bytes ? bytes : 1);
    return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}
cudaError_t cudaFreeHost(void *p)
{
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    *free_bytes = *total_bytes = (size_t)16 << 30;
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind)
{
    if (bytes)
        memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t)
{
    return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void *p, int value, size_t bytes)
{
    if (bytes)
        memset(p, value, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t)
{
    return cudaMemset(p, value, bytes);
}

cudaError_t cudaStreamCreate(cudaStream_t *stream)
{
    return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags)
{
    *stream = new emu_stream{flags};
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    delete stream;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t)
{
    return last_error;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned)
{
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *ev)
{
    *ev = new emu_event{0.0};
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned)
{
    return cudaEventCreate(ev);
}
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t)
{
    ev->ms = now_ms();
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t)
{
    return last_error;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    *ms = (float)(end->ms - start->ms);
    return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t ev)
{
    delete ev;
    return cudaSuccess;
}
