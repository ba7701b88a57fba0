/* cuda_emu_runtime.cc: the host emulation's CUDA runtime API: one device, whose memory is
 * host memory, every call synchronous (streams and events are markers, events read the
 * host clock), errors kept until cudaGetLastError as the runtime keeps them.
 *
 * Device memory: each cudaMalloc'd range is recorded (a kernel given a host pointer is an
 * error) and lies between two red zones; red zones and new memory hold the float
 * signalling NaN 0xff800001. So a read before the start, past the end, or of memory nothing
 * wrote gives NaN, and after every launch a red zone that is no longer intact reports an
 * out-of-bounds write (arithmetic quiets a signalling NaN, so even `x[i] += v` past the end
 * changes the bits). */
#include "cuda_emu.h"

#include <chrono>
#include <map>
#include <stdio.h>
#include <stdlib.h>
#include <vector>

struct emu_graph {
    std::vector<std::function<cudaError_t()>> nodes; /* in stream order */
};
struct emu_graph_exec {
    std::vector<std::function<cudaError_t()>> nodes;
};
struct emu_stream {
    unsigned flags;
    emu_graph *capture; /* while captured: where its work goes */
    bool invalidated;   /* a call during the capture that a capture does not allow */
};
struct emu_event {
    double ms; /* host time when recorded: the work before it has finished (synchronous) */
};

static cudaError_t last_error = cudaSuccess;
static std::map<uintptr_t, size_t> allocations; /* device allocations: start -> bytes */
static const size_t RED_ZONE = 256;             /* bytes before and after each */
static const unsigned char POISON[4] = {0x01, 0x00, 0x80, 0xff}; /* 0xff800001, little end */

/* The poison over bytes [from, to) of an allocation's block (base: 256-aligned, so that
 * the pattern lines up with the floats). */
static void poison(unsigned char *base, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++)
        base[k] = POISON[k % 4];
}

/* First byte of [from, to) no longer poisoned, or -1. */
static long first_changed(const unsigned char *base, size_t from, size_t to)
{
    for (size_t k = from; k < to; k++)
        if (base[k] != POISON[k % 4])
            return (long)k;
    return -1;
}
static cudaStream_t capturing = nullptr; /* the stream being captured, if any */
static long eager_work = 0;              /* stream work run at once (not recorded, not a graph) */

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

cudaError_t check_red_zones(const config &cfg)
{
    cudaError_t e = cudaSuccess;
    for (const auto &a : allocations) {
        unsigned char *base = (unsigned char *)a.first - RED_ZONE;
        size_t end = RED_ZONE + a.second, total = 2 * RED_ZONE + (a.second + 255) / 256 * 256;
        long at = first_changed(base, 0, RED_ZONE);
        if (at < 0)
            at = first_changed(base, end, total);
        if (at < 0)
            continue;
        at -= at % 4; /* the float it belongs to */
        fprintf(stderr,
                "cuda emulator: kernel launched at %s:%d wrote outside the %zu-byte device "
                "allocation at %p: at byte offset %ld\n",
                base_name(cfg.file), cfg.line, a.second, (void *)a.first, at - (long)RED_ZONE);
        poison(base, 0, RED_ZONE); /* reported once */
        poison(base, end, total);
        e = cudaErrorIllegalAddress;
    }
    return e;
}

bool capture(cudaStream_t stream, std::function<cudaError_t()> work)
{
    if (!capturing || stream != capturing) {
        eager_work++;
        return false;
    }
    stream->capture->nodes.push_back(std::move(work));
    return true;
}

long eager_work_count()
{
    return eager_work;
}

} // namespace emu

/* --- runtime API ------------------------------------------------------------------------ */

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

/* A call that waits for the device, allocates, or uses the legacy stream, made while a
 * stream is captured: CUDA refuses it and invalidates the capture (global mode, which is
 * what a training step captured as one graph must live with). */
static cudaError_t refuse_in_capture(const char *call)
{
    if (!capturing)
        return cudaSuccess;
    fprintf(stderr,
            "cuda emulator: %s while a stream is captured into a CUDA graph (not allowed "
            "there: the capture is invalidated)\n",
            call);
    capturing->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported);
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
    if (capturing)
        return refuse_in_capture("cudaDeviceSynchronize");
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
#define EMU_ERROR_NAME(name)                                                                       \
    case name:                                                                                     \
        return #name;
    switch (e) {
        EMU_ERROR_NAME(cudaSuccess)
        EMU_ERROR_NAME(cudaErrorInvalidValue)
        EMU_ERROR_NAME(cudaErrorMemoryAllocation)
        EMU_ERROR_NAME(cudaErrorInvalidConfiguration)
        EMU_ERROR_NAME(cudaErrorInvalidDevicePointer)
        EMU_ERROR_NAME(cudaErrorInvalidResourceHandle)
        EMU_ERROR_NAME(cudaErrorNoDevice)
        EMU_ERROR_NAME(cudaErrorInvalidDevice)
        EMU_ERROR_NAME(cudaErrorIllegalAddress)
        EMU_ERROR_NAME(cudaErrorLaunchFailure)
        EMU_ERROR_NAME(cudaErrorInsufficientDriver)
        EMU_ERROR_NAME(cudaErrorNotSupported)
        EMU_ERROR_NAME(cudaErrorStreamCaptureUnsupported)
        EMU_ERROR_NAME(cudaErrorStreamCaptureInvalidated)
    }
#undef EMU_ERROR_NAME
    return "cudaErrorUnknown";
}
const char *cudaGetErrorString(cudaError_t e)
{
    return e == cudaSuccess ? "no error"
                            : "error found by the CUDA host emulation (its message is above)";
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    if (capturing)
        return refuse_in_capture("cudaMalloc");
    size_t total = RED_ZONE + (bytes + 255) / 256 * 256 + RED_ZONE; /* a multiple of 256 */
    char *base = (char *)aligned_alloc(256, total);
    if (!base)
        return fail(cudaErrorMemoryAllocation);
    poison((unsigned char *)base, 0, total);
    *p = base + RED_ZONE;
    allocations[(uintptr_t)*p] = bytes;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p)
{
    if (capturing)
        return refuse_in_capture("cudaFree");
    if (!p)
        return cudaSuccess;
    auto it = allocations.find((uintptr_t)p);
    if (it == allocations.end()) {
        fprintf(stderr, "cuda emulator: cudaFree(%p) of memory cudaMalloc did not return\n", p);
        return fail(cudaErrorInvalidDevicePointer);
    }
    allocations.erase(it);
    free((char *)p - RED_ZONE);
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
    if (capturing)
        return refuse_in_capture("cudaMemcpy");
    if (bytes)
        memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream)
{
    if (emu::capture(stream, [=]() {
            memmove(dst, src, bytes);
            return cudaSuccess;
        }))
        return cudaSuccess;
    if (capturing)
        return refuse_in_capture("cudaMemcpyAsync on another stream");
    if (bytes)
        memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int value, size_t bytes)
{
    if (capturing)
        return refuse_in_capture("cudaMemset");
    if (bytes)
        memset(p, value, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream)
{
    if (emu::capture(stream, [=]() {
            memset(p, value, bytes);
            return cudaSuccess;
        }))
        return cudaSuccess;
    if (capturing)
        return refuse_in_capture("cudaMemsetAsync on another stream");
    if (bytes)
        memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream)
{
    return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags)
{
    *stream = new emu_stream{flags, nullptr, false};
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t stream)
{
    delete stream;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t)
{
    if (capturing)
        return refuse_in_capture("cudaStreamSynchronize");
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
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t stream)
{
    if (!emu::capture(stream, [=]() {
            ev->ms = now_ms();
            return cudaSuccess;
        }))
        ev->ms = now_ms();
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t)
{
    if (capturing)
        return refuse_in_capture("cudaEventSynchronize");
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

cudaError_t cudaDriverGetVersion(int *version)
{
    *version = CUDART_VERSION;
    return cudaSuccess;
}
cudaError_t cudaRuntimeGetVersion(int *version)
{
    *version = CUDART_VERSION;
    return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device)
{
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, device);
    if (e != cudaSuccess)
        return e;
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
        *value = p.maxThreadsPerBlock;
        break;
    case cudaDevAttrMaxSharedMemoryPerBlock:
        *value = (int)p.sharedMemPerBlock;
        break;
    case cudaDevAttrWarpSize:
        *value = p.warpSize;
        break;
    case cudaDevAttrMultiProcessorCount:
        *value = p.multiProcessorCount;
        break;
    case cudaDevAttrComputeCapabilityMajor:
        *value = p.major;
        break;
    case cudaDevAttrComputeCapabilityMinor:
        *value = p.minor;
        break;
    default:
        return fail(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

/* --- graphs by stream capture -------------------------------------------------------------- */
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode)
{
    if (!stream || capturing)
        return fail(stream ? cudaErrorInvalidValue : cudaErrorStreamCaptureUnsupported);
    stream->capture = new emu_graph;
    stream->invalidated = false;
    capturing = stream;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph)
{
    *graph = nullptr;
    if (!stream || stream != capturing)
        return fail(cudaErrorInvalidValue);
    capturing = nullptr;
    if (stream->invalidated) {
        delete stream->capture;
        stream->capture = nullptr;
        return fail(cudaErrorStreamCaptureInvalidated);
    }
    *graph = stream->capture;
    stream->capture = nullptr;
    return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status)
{
    *status = stream && stream == capturing
                  ? (stream->invalidated ? cudaStreamCaptureStatusInvalidated
                                         : cudaStreamCaptureStatusActive)
                  : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long)
{
    if (!graph)
        return fail(cudaErrorInvalidValue);
    *exec = new emu_graph_exec{graph->nodes};
    return cudaSuccess;
}
/* The captured work in order; stops at the first error, which the launch reports. */
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t)
{
    if (!exec)
        return fail(cudaErrorInvalidValue);
    if (capturing)
        return refuse_in_capture("cudaGraphLaunch");
    for (auto &node : exec->nodes) {
        cudaError_t e = node();
        if (e != cudaSuccess)
            return fail(e);
    }
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec)
{
    delete exec;
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t graph)
{
    delete graph;
    return cudaSuccess;
}
