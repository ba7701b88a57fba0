/* cuda_emu.h: a host emulation of the CUDA that kernels/cuda_*.cu use, so that the project's
 * own kernels compile with g++ and run on the CPU (tests/cuda_emu/CMakeLists.txt, test
 * test_cuda_emu). Not a simulator of a GPU: it checks what the kernels compute (indexing,
 * reductions, shared memory, barriers, warp shuffles, arithmetic), not how fast or with
 * which real concurrency (docs/gpu.md, "Without a GPU: the host emulation").
 *
 * How a kernel runs: the blocks of a grid one after another; the threads of a block as
 * cooperative fibers on one OS thread (cuda_emu.cc; the runtime API is
 * cuda_emu_runtime.cc). A thread runs until it finishes or reaches __syncthreads() or a
 * warp operation (__shfl_*_sync, __syncwarp, votes); it then waits until every thread of
 * its block (its warp's lanes in `mask`) has reached the same call, and all continue. A
 * block whose threads cannot all get there (an exit before the barrier, a barrier in a
 * branch, different barriers) is reported as an error, with the file:line of the calls,
 * instead of hanging. Static __shared__ memory is filled with 0xff bytes (NaN) before
 * every block, so a read before the block wrote it shows up.
 *
 * The triple-chevron launch `k<<<grid, block, shmem, stream>>>(args)` is not C++: the build
 * copies each .cu file with `<<<` turned into `<< ::emu::launch(` and `>>>` into `)`
 * (rewrite_launches.cmake), which this header makes a launch: `k << launch(cfg)(args)`.
 *
 * This header stands in for <cuda_runtime.h> (include/cuda_runtime.h includes it). */
#ifndef DDIM_CUDA_EMU_H
#define DDIM_CUDA_EMU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

/* --- qualifiers ------------------------------------------------------------------------ */
#define __global__
#define __device__
#define __host__
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __constant__
#define __managed__
/* In a rewritten .cu file (rewrite_launches.cmake) a `__shared__ T name[dims];` becomes a
 * reference to emu::shared_var's storage, which the emulator fills with 0xff bytes (NaN, -1)
 * before every block: a thread that reads shared memory no thread of its block wrote (a
 * missing __syncthreads) reads NaN. Dynamic `extern __shared__ T name[];` becomes a pointer
 * to emu::dynamic_shared(). What is left (a __shared__ in a header) is one static copy per
 * kernel, not poisoned. */
#define __shared__ static

#include "cuda_emu_math.h"

/* Random123 configured as nvcc configures it for device code (R123_CUDA_DEVICE, the CUDA
 * multiply-high intrinsic for 64-bit words), so src/base/rng.h runs the device variant of Philox.
 * __CUDACC__ stays defined only for this include: system headers test it too. */
#ifndef CUDART_VERSION
#define CUDART_VERSION 12000
#endif
#define __CUDACC__ 1
#define __CUDA_ARCH__ 900
#include <Random123/philox.h>
#undef __CUDA_ARCH__
#undef __CUDACC__

/* --- built-in variables and types ----------------------------------------------------- */
struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
/* the running thread's; the scheduler sets them on every switch */
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
constexpr int warpSize = 32;

/* --- runtime API types ------------------------------------------------------------------ */
enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchFailure = 719,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNotSupported = 801,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
};
typedef enum cudaError_t cudaError;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};
typedef struct emu_stream *cudaStream_t;
typedef struct emu_event *cudaEvent_t;
typedef struct emu_graph *cudaGraph_t;
typedef struct emu_graph_exec *cudaGraphExec_t;
enum cudaStreamCaptureMode {
    cudaStreamCaptureModeGlobal = 0,
    cudaStreamCaptureModeThreadLocal = 1,
    cudaStreamCaptureModeRelaxed = 2,
};
enum cudaStreamCaptureStatus {
    cudaStreamCaptureStatusNone = 0,
    cudaStreamCaptureStatusActive = 1,
    cudaStreamCaptureStatusInvalidated = 2,
};
enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrWarpSize = 10,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
};
enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};
#define cudaStreamDefault 0x0
#define cudaStreamNonBlocking 0x1
#define cudaEventDefault 0x0
#define cudaEventDisableTiming 0x2

struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem, sharedMemPerBlock;
    int regsPerBlock, warpSize, maxThreadsPerBlock, maxThreadsDim[3], maxGridSize[3];
    int multiProcessorCount, major, minor, clockRate;
    size_t sharedMemPerBlockOptin;
};
struct cudaFuncAttributes {
    size_t sharedSizeBytes, constSizeBytes, localSizeBytes;
    int maxThreadsPerBlock, numRegs, ptxVersion, binaryVersion;
};

/* --- the emulator's kernel interface ------------------------------------------------------ */
namespace emu
{

/* One launch's configuration, and where it was launched (for the emulator's messages). */
struct config {
    const void *kernel; /* set by the launch */
    dim3 grid, block;
    size_t shmem;
    cudaStream_t stream;
    const char *file;
    int line;
};

/* Runs the grid: thread_fn(arg) once per thread, indices set. 0, or the error (printed). */
cudaError_t run_grid(const config &cfg, void (*thread_fn)(void *), void *arg);
/* A kernel argument that is a pointer must be device memory (cudaMalloc) or NULL. */
cudaError_t check_kernel_pointer(const config &cfg, int index, const void *p);
/* After a launch: every device allocation's red zones intact, or the error (printed). */
cudaError_t check_red_zones(const config &cfg);
void set_launch_error(cudaError_t e);
/* While `stream` is captured into a CUDA graph, its work is recorded, not run: true when
 * `work` was recorded (cuda_emu_runtime.cc). */
bool capture(cudaStream_t stream, std::function<cudaError_t()> work);
/* How many kernel launches, async copies, fills and event records ran at once (outside a
 * capture and a graph launch) so far: a replayed step must add none. */
long eager_work_count();
const char *base_name(const char *path); /* for messages */
void *dynamic_shared();
void register_shared(void *p, size_t bytes); /* poisoned now and before every block */

/* The storage of a rewritten __shared__ declaration: one per type and ID (__COUNTER__ of
 * its file). Kernels of other files may share it: only one kernel runs at a time. */
template <class T, int ID> T &shared_var()
{
    static T storage;
    static const bool registered = (register_shared(&storage, sizeof storage), true);
    (void)registered;
    return storage;
}

/* The launch's arguments, evaluated before the launch as CUDA does. */
template <class... A> struct pending {
    config cfg;
    std::tuple<std::decay_t<A>...> args;
};

struct launch_cfg : config {
    template <class... A> pending<A...> operator()(A &&...a) const
    {
        return pending<A...>{*this, std::tuple<std::decay_t<A>...>(std::forward<A>(a)...)};
    }
};

/* <<<grid, block, shmem, stream>>>: the call site is recorded through the defaults */
inline launch_cfg launch(dim3 grid, dim3 block, size_t shmem = 0, cudaStream_t stream = nullptr,
                         const char *file = __builtin_FILE(), int line = __builtin_LINE())
{
    launch_cfg c;
    c.kernel = nullptr;
    c.grid = grid, c.block = block, c.shmem = shmem, c.stream = stream, c.file = file;
    c.line = line;
    return c;
}

template <class... P> struct kernel_call {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> params; /* converted once, copied into each thread */
    static void run_thread(void *self)
    {
        auto *k = static_cast<kernel_call *>(self);
        std::tuple<std::decay_t<P>...> mine = k->params; /* by value, as each CUDA thread */
        std::apply(k->kernel, mine);
    }
};

template <class T> cudaError_t check_param(const config &cfg, int index, const T &v)
{
    if constexpr (std::is_pointer_v<T>)
        return check_kernel_pointer(cfg, index, (const void *)v);
    return cudaSuccess;
}

/* kernel << launch(cfg)(args): the rewritten triple-chevron launch. Errors are reported as
 * the runtime reports them: through cudaGetLastError(). */
template <class... P, class... A> void operator<<(void (*kernel)(P...), pending<A...> &&p)
{
    static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong argument count");
    kernel_call<P...> call{kernel, std::make_from_tuple<std::tuple<std::decay_t<P>...>>(p.args)};
    p.cfg.kernel = (const void *)kernel;
    cudaError_t e = cudaSuccess;
    int index = 0;
    std::apply(
        [&](const auto &...v) {
            ((e = e != cudaSuccess ? e : check_param(p.cfg, index++, v)), ...);
        },
        call.params);
    if (e == cudaSuccess) {
        config cfg = p.cfg;
        auto work = [call, cfg]() mutable {
            cudaError_t r = run_grid(cfg, &kernel_call<P...>::run_thread, &call);
            return r != cudaSuccess ? r : check_red_zones(cfg);
        };
        if (!capture(cfg.stream, work))
            e = work();
    }
    set_launch_error(e);
}

/* block and warp synchronization (cuda_emu.cc); file:line name the call in messages */
void syncthreads(const char *file, int line);
enum warp_op { WARP_SYNC, WARP_SHFL, WARP_SHFL_UP, WARP_SHFL_DOWN, WARP_SHFL_XOR, WARP_BALLOT };
/* All lanes of `mask` exchange `bits`; returns this lane's result (see cuda_emu.cc). */
uint64_t warp_exchange(warp_op op, unsigned mask, uint64_t bits, int param, int width,
                       const char *file, int line);

template <class T>
T shfl(warp_op op, unsigned mask, T v, int param, int width, const char *file, int line)
{
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a wide type");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    bits = warp_exchange(op, mask, bits, param, width, file, line);
    memcpy(&v, &bits, sizeof v);
    return v;
}

} // namespace emu

#define __syncthreads() ::emu::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...)                                                                            \
    ((void)::emu::warp_exchange(::emu::WARP_SYNC, emu_mask_or_all(__VA_ARGS__), 0, 0, 32,          \
                                __FILE__, __LINE__))
static inline unsigned emu_mask_or_all(unsigned mask = 0xffffffffu)
{
    return mask;
}
/* __shfl_*_sync(mask, var, lane/delta/laneMask[, width]) */
#define EMU_SHFL(op, mask, v, param, ...)                                                          \
    ::emu::shfl(op, mask, v, param, emu_width_or_warp(__VA_ARGS__), __FILE__, __LINE__)
static inline int emu_width_or_warp(int width = 32)
{
    return width;
}
#define __shfl_sync(mask, v, ...) EMU_SHFL(::emu::WARP_SHFL, mask, v, __VA_ARGS__)
#define __shfl_up_sync(mask, v, ...) EMU_SHFL(::emu::WARP_SHFL_UP, mask, v, __VA_ARGS__)
#define __shfl_down_sync(mask, v, ...) EMU_SHFL(::emu::WARP_SHFL_DOWN, mask, v, __VA_ARGS__)
#define __shfl_xor_sync(mask, v, ...) EMU_SHFL(::emu::WARP_SHFL_XOR, mask, v, __VA_ARGS__)
#define __ballot_sync(mask, pred)                                                                  \
    ((unsigned)::emu::warp_exchange(::emu::WARP_BALLOT, mask, (pred) ? 1u : 0u, 0, 32, __FILE__,   \
                                    __LINE__))
#define __any_sync(mask, pred) (__ballot_sync(mask, pred) != 0u)
#define __all_sync(mask, pred) (__ballot_sync(mask, pred) == (unsigned)(mask))

/* --- atomics: fibers on one OS thread switch only at barriers, so these are atomic ---- */
template <class T> static inline T atomicAdd(T *p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
template <class T> static inline T atomicSub(T *p, T v)
{
    T old = *p;
    *p = old - v;
    return old;
}
template <class T> static inline T atomicExch(T *p, T v)
{
    T old = *p;
    *p = v;
    return old;
}
template <class T> static inline T atomicMax(T *p, T v)
{
    T old = *p;
    *p = old > v ? old : v;
    return old;
}
template <class T> static inline T atomicMin(T *p, T v)
{
    T old = *p;
    *p = old < v ? old : v;
    return old;
}
template <class T> static inline T atomicCAS(T *p, T compare, T v)
{
    T old = *p;
    if (old == compare)
        *p = v;
    return old;
}
template <class T> static inline T atomicAnd(T *p, T v)
{
    T old = *p;
    *p = old & v;
    return old;
}
template <class T> static inline T atomicOr(T *p, T v)
{
    T old = *p;
    *p = old | v;
    return old;
}
static inline void __threadfence() {}
static inline void __threadfence_block() {}

/* --- runtime API (cuda_emu.cc): one emulated device, host memory, synchronous work ---- */
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDevice(int *device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void *p, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamCreate(cudaStream_t *stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t ev, unsigned flags = 0);
cudaError_t cudaEventCreate(cudaEvent_t *ev);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *ev, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t ev, cudaStream_t stream = nullptr);
cudaError_t cudaEventSynchronize(cudaEvent_t ev);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t ev);
cudaError_t cudaDriverGetVersion(int *version);
cudaError_t cudaRuntimeGetVersion(int *version);
cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device);
/* graphs by stream capture: the captured launches, copies and fills, replayed in order */
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                 unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

/* A kernel may use more than 48 KiB of dynamic shared memory (up to an H100's 227 KiB)
 * only after this call. */
namespace emu
{
cudaError_t set_shared_limit(const void *kernel, int bytes);
}
template <class F> cudaError_t cudaFuncSetAttribute(F *kernel, cudaFuncAttribute attr, int value)
{
    return attr == cudaFuncAttributeMaxDynamicSharedMemorySize
               ? emu::set_shared_limit((const void *)kernel, value)
               : cudaSuccess;
}

/* Any kernel exists for the emulated device. */
template <class F> cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *attr, F *)
{
    memset(attr, 0, sizeof *attr);
    attr->maxThreadsPerBlock = 1024;
    attr->ptxVersion = attr->binaryVersion = 90;
    return cudaSuccess;
}

#endif
