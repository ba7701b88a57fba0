/* test_cuda_emu_selftest.cu: the host emulation itself (cuda_emu.h), on small kernels whose
 * results are known: barriers and shared memory (static and dynamic), warp shuffles with
 * CUDA's lane rules, votes, atomics, 3-D indices; and the errors it must report instead of
 * hanging or computing garbage: a thread that exits before a barrier, divergent barriers,
 * a shuffle that part of the warp skips, a read of shared memory nobody wrote, a missing
 * barrier, a bad launch configuration, a host pointer passed to a kernel. Each error case
 * checks the error code and that the message names the kernel's line, and the next launch
 * works again. Compiled only by the emulator: the error kernels would hang a GPU. */
#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* --- kernels that must work ------------------------------------------------------------ */
/* out[block] = sum of x over the block's elements: a shared-memory tree, a barrier a level */
static __global__ void tree_sum_kernel(float *out, const float *x, int n)
{
    __shared__ float s[256];
    int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    s[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (t < half)
            s[t] += s[t + half];
        __syncthreads();
    }
    if (t == 0)
        out[blockIdx.x] = s[0];
}

/* the same through dynamic shared memory */
static __global__ void tree_sum_dynamic_kernel(float *out, const float *x, int n)
{
    extern __shared__ float sd[];
    int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    sd[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int half = blockDim.x / 2; half > 0; half /= 2) {
        if (t < half)
            sd[t] += sd[t + half];
        __syncthreads();
    }
    if (t == 0)
        out[blockIdx.x] = sd[0];
}

/* per thread: down 3, up 3, xor 5, from lane 7 (width w), a ballot, a double shuffle */
static __global__ void shuffle_kernel(int *out, double *dout, int w)
{
    int t = threadIdx.x, lane = t % 32, v = 100 + t;
    out[6 * t + 0] = __shfl_down_sync(0xffffffffu, v, 3, w);
    out[6 * t + 1] = __shfl_up_sync(0xffffffffu, v, 3, w);
    out[6 * t + 2] = __shfl_xor_sync(0xffffffffu, v, 5, w);
    out[6 * t + 3] = __shfl_sync(0xffffffffu, v, 7, w);
    out[6 * t + 4] = (int)__ballot_sync(0xffffffffu, lane % 3 == 0);
    out[6 * t + 5] = __all_sync(0xffffffffu, lane < 40) + 2 * __any_sync(0xffffffffu, lane == 31);
    dout[t] = __shfl_down_sync(0xffffffffu, 0.5 + t, 16);
}

/* every thread of a 3-D grid of 3-D blocks: its global linear index, and a counter */
static __global__ void index_kernel(int *out, unsigned *count)
{
    unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned per = blockDim.x * blockDim.y * blockDim.z;
    out[block * per + thread] = (int)(block * per + thread);
    atomicAdd(count, 1u);
}

/* x[i] += 1 */
static __global__ void add_one_kernel(float *x, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)
        x[i] += 1.0f;
}

/* --- kernels with errors the emulator must report ---------------------------------------- */
/* the lines of the calls that the messages must name */
static const int early_exit_line = __LINE__ + 6, divergent_line = __LINE__ + 15;
static const int partial_shuffle_line = __LINE__ + 22;
static __global__ void early_exit_kernel(float *out)
{
    if (threadIdx.x == 5)
        return;
    __syncthreads(); /* thread 5 never comes */
    out[threadIdx.x] = 1.0f;
}

static __global__ void divergent_kernel(float *out)
{
    if (threadIdx.x < 16)
        __syncthreads();
    else
        __syncthreads(); /* another barrier */
    out[threadIdx.x] = 1.0f;
}

static __global__ void partial_shuffle_kernel(float *out)
{
    float v = (float)threadIdx.x;
    if (threadIdx.x % 32 < 16)
        v = __shfl_down_sync(0xffffffffu, v, 1); /* half the warp skips it */
    out[threadIdx.x] = v;
}

/* y[i] = x[i - 1] for i <= n: an off-by-one at both ends */
static __global__ void off_by_one_kernel(float *y, const float *x, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n)
        y[i] = x[i - 1];
}

/* reads shared memory that no thread wrote */
static __global__ void uninitialized_shared_kernel(float *out)
{
    __shared__ float s[64];
    out[threadIdx.x] = s[threadIdx.x];
}

/* reads a neighbour's shared value without the barrier between */
static __global__ void missing_barrier_kernel(float *out)
{
    __shared__ float s[64];
    s[threadIdx.x] = (float)threadIdx.x;
    out[threadIdx.x] = s[(threadIdx.x + 1) % 64] + s[(threadIdx.x + 63) % 64];
}

/* --- helpers ------------------------------------------------------------------------------ */
static char captured[4096];
static int saved_stderr = -1;

/* stderr into a file until capture_end(), which reads it into `captured` */
static void capture_begin(void)
{
    fflush(stderr);
    saved_stderr = dup(2);
    FILE *f = tmpfile();
    dup2(fileno(f), 2);
    fclose(f); /* fd 2 keeps the file open */
}

static void capture_end(void)
{
    fflush(stderr);
    lseek(2, 0, SEEK_SET);
    ssize_t n = read(2, captured, sizeof captured - 1);
    captured[n > 0 ? n : 0] = '\0';
    dup2(saved_stderr, 2);
    close(saved_stderr);
    fputs(captured, stderr); /* shown in the test's log too */
}

static float *device_floats(size_t n)
{
    void *p = NULL;
    CHECK(cudaMalloc(&p, n * sizeof(float)) == cudaSuccess, "cudaMalloc");
    return (float *)p;
}

static void test_sums(void)
{
    const int n = 1000, blocks = 4;
    float xh[1000], outh[4], want[4] = {0, 0, 0, 0};
    for (int i = 0; i < n; i++) {
        xh[i] = (float)(i % 17) - 8.0f;
        want[i / 256] += xh[i];
    }
    float *x = device_floats(n), *out = device_floats(blocks);
    cudaMemcpy(x, xh, sizeof xh, cudaMemcpyHostToDevice);
    for (int dynamic = 0; dynamic < 2; dynamic++) {
        if (dynamic)
            tree_sum_dynamic_kernel<<<blocks, 256, 256 * sizeof(float)>>>(out, x, n);
        else
            tree_sum_kernel<<<blocks, 256>>>(out, x, n);
        CHECK(cudaGetLastError() == cudaSuccess, "tree sum launch");
        cudaMemcpy(outh, out, sizeof outh, cudaMemcpyDeviceToHost);
        for (int b = 0; b < blocks; b++)
            CHECK(outh[b] == want[b], "tree sum (dynamic %d) block %d: %g, want %g", dynamic, b,
                  outh[b], want[b]);
    }
    cudaFree(x);
    cudaFree(out);
}

static int expected_shuffle(int op, int t, int w)
{
    int lane = t % 32, warp0 = t - lane, base = lane / w * w, src = lane;
    if (op == 0 && lane + 3 < base + w)
        src = lane + 3;
    if (op == 1 && lane - 3 >= base)
        src = lane - 3;
    if (op == 2 && (lane ^ 5) < base + w)
        src = lane ^ 5;
    if (op == 3)
        src = base + 7 % w;
    return 100 + warp0 + src;
}

static void test_shuffles(void)
{
    const int threads = 64;
    int *out = NULL, outh[6 * 64];
    double *dout = NULL, douth[64];
    cudaMalloc((void **)&out, sizeof outh);
    cudaMalloc((void **)&dout, sizeof douth);
    int widths[] = {32, 8, 4};
    for (int wi = 0; wi < 3; wi++) {
        int w = widths[wi];
        shuffle_kernel<<<1, threads>>>(out, dout, w);
        CHECK(cudaGetLastError() == cudaSuccess, "shuffle launch");
        cudaMemcpy(outh, out, sizeof outh, cudaMemcpyDeviceToHost);
        cudaMemcpy(douth, dout, sizeof douth, cudaMemcpyDeviceToHost);
        unsigned ballot = 0;
        for (int l = 0; l < 32; l++)
            ballot |= (l % 3 == 0 ? 1u : 0u) << l;
        for (int t = 0; t < threads; t++) {
            for (int op = 0; op < 4; op++)
                CHECK(outh[6 * t + op] == expected_shuffle(op, t, w),
                      "shuffle op %d width %d thread %d: %d, want %d", op, w, t, outh[6 * t + op],
                      expected_shuffle(op, t, w));
            CHECK((unsigned)outh[6 * t + 4] == ballot, "ballot thread %d: 0x%x", t,
                  (unsigned)outh[6 * t + 4]);
            CHECK(outh[6 * t + 5] == 3, "all/any thread %d: %d", t, outh[6 * t + 5]);
            double want = 0.5 + (t % 32 < 16 ? t + 16 : t);
            CHECK(douth[t] == want, "double shuffle thread %d: %g, want %g", t, douth[t], want);
        }
    }
    cudaFree(out);
    cudaFree(dout);
}

static void test_indices(void)
{
    dim3 grid(3, 2, 2), block(4, 3, 5);
    int total = 3 * 2 * 2 * 4 * 3 * 5;
    int *out = NULL, *outh = (int *)malloc(total * sizeof(int));
    unsigned *count = NULL, counth = 0;
    cudaMalloc((void **)&out, total * sizeof(int));
    cudaMalloc((void **)&count, sizeof(unsigned));
    cudaMemset(out, 0xff, total * sizeof(int));
    cudaMemset(count, 0, sizeof(unsigned));
    index_kernel<<<grid, block>>>(out, count);
    CHECK(cudaGetLastError() == cudaSuccess, "index launch");
    cudaMemcpy(outh, out, total * sizeof(int), cudaMemcpyDeviceToHost);
    cudaMemcpy(&counth, count, sizeof counth, cudaMemcpyDeviceToHost);
    for (int i = 0; i < total; i++)
        CHECK(outh[i] == i, "3-D index %d: %d", i, outh[i]);
    CHECK(counth == (unsigned)total, "atomicAdd count %u, want %d", counth, total);
    cudaFree(out);
    cudaFree(count);
    free(outh);
}

/* The launch fails with `want`, the message contains the two strings (s1 with `line`
 * appended if it is not 0). */
static void expect_error(const char *what, cudaError_t want, const char *s1, int line,
                         const char *s2)
{
    char where[128];
    snprintf(where, sizeof where, line ? "%s%d" : "%s", s1, line);
    s1 = where;
    cudaError_t e = cudaGetLastError();
    capture_end();
    CHECK(e == want, "%s: error %d %s, want %d", what, (int)e, cudaGetErrorName(e), (int)want);
    CHECK(strstr(captured, s1) && strstr(captured, s2), "%s: message lacks '%s' / '%s'", what, s1,
          s2);
    test_sums(); /* and the emulator works again */
}

static void test_errors(void)
{
    float *out = device_floats(64);
    capture_begin();
    early_exit_kernel<<<2, 64>>>(out);
    expect_error("exit before a barrier", cudaErrorLaunchFailure, "selftest.cu:", early_exit_line,
                 "reached by 63 of 64 threads; 1 exited");
    capture_begin();
    divergent_kernel<<<1, 64>>>(out);
    expect_error("divergent barriers", cudaErrorLaunchFailure, "selftest.cu:", divergent_line,
                 "divergent barriers");
    capture_begin();
    partial_shuffle_kernel<<<1, 64>>>(out);
    expect_error("part of a warp shuffles", cudaErrorLaunchFailure,
                 "selftest.cu:", partial_shuffle_line, "lanes 0x0000ffff only");
    capture_begin();
    tree_sum_kernel<<<1, 2048>>>(out, out, 1);
    expect_error("2048 threads", cudaErrorInvalidConfiguration, "invalid configuration", 0,
                 "block (2048,1,1)");
    float host[64];
    capture_begin();
    tree_sum_kernel<<<1, 64>>>(out, host, 64);
    expect_error("host pointer", cudaErrorIllegalAddress, "argument 2", 0, "not device memory");

    float *x = device_floats(1000), *y = device_floats(1000);
    cudaMemset(x, 0, 1000 * sizeof(float));
    capture_begin();
    off_by_one_kernel<<<4, 256>>>(y, x, 1000);
    expect_error("write past the end", cudaErrorIllegalAddress,
                 "wrote outside the 4000-byte device allocation", 0, "at byte offset 4000");
    float first;
    cudaMemcpy(&first, y, sizeof first, cudaMemcpyDeviceToHost);
    CHECK(isnan(first), "a read before the allocation's start gives NaN, not %g", first);
    cudaFree(x);
    cudaFree(y);

    float outh[64];
    uninitialized_shared_kernel<<<1, 64>>>(out);
    CHECK(cudaGetLastError() == cudaSuccess, "uninitialized shared launch");
    cudaMemcpy(outh, out, sizeof outh, cudaMemcpyDeviceToHost);
    int nans = 0;
    for (int t = 0; t < 64; t++)
        nans += isnan(outh[t]) != 0;
    CHECK(nans == 64, "unwritten shared memory: %d of 64 reads NaN", nans);
    missing_barrier_kernel<<<1, 64>>>(out);
    cudaMemcpy(outh, out, sizeof outh, cudaMemcpyDeviceToHost);
    nans = 0;
    for (int t = 0; t < 64; t++)
        nans += isnan(outh[t]) != 0;
    /* in either order, every thread but the last one started reads an unwritten neighbour */
    CHECK(nans == 63, "missing barrier: %d of 64 threads read NaN, want 63", nans);
    cudaFree(out);
}

static void expect_all(const char *what, const float *x, int n, float want)
{
    float *h = (float *)malloc(n * sizeof(float));
    cudaMemcpy(h, x, n * sizeof(float), cudaMemcpyDeviceToHost);
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += h[i] != want;
    CHECK(bad == 0, "%s: %d of %d elements differ from %g", what, bad, n, want);
    free(h);
}

/* Stream capture: the captured work runs only when the graph is launched, in order, each
 * time; a synchronization inside the capture invalidates it. More than 48 KiB of dynamic
 * shared memory needs cudaFuncSetAttribute first. */
static void test_graph_and_limits(void)
{
    const int n = 1000;
    float *x = device_floats(n);
    cudaStream_t s;
    cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal) == cudaSuccess, "capture");
    cudaMemsetAsync(x, 0, n * sizeof(float), s);
    add_one_kernel<<<2, 128, 0, s>>>(x, n);
    add_one_kernel<<<3, 64, 0, s>>>(x, n);
    CHECK(cudaGetLastError() == cudaSuccess, "captured launches");
    CHECK(cudaStreamEndCapture(s, &graph) == cudaSuccess && graph, "end capture");
    cudaMemset(x, 0x7f, n * sizeof(float)); /* not zero: the graph's memset must run */
    CHECK(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess, "instantiate");
    for (int k = 0; k < 2; k++)
        CHECK(cudaGraphLaunch(exec, s) == cudaSuccess, "graph launch %d", k);
    expect_all("graph launched twice", x, n, 2.0f);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);

    capture_begin();
    cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal);
    add_one_kernel<<<2, 128, 0, s>>>(x, n);
    cudaError_t sync = cudaStreamSynchronize(s);
    cudaError_t end = cudaStreamEndCapture(s, &graph);
    CHECK(sync == cudaErrorStreamCaptureUnsupported && end == cudaErrorStreamCaptureInvalidated &&
              !graph,
          "synchronize in a capture: %d, end %d", (int)sync, (int)end);
    expect_error("synchronize in a capture", cudaErrorStreamCaptureUnsupported,
                 "cudaStreamSynchronize", 0, "capture is invalidated");
    expect_all("an invalidated capture runs nothing", x, n, 2.0f);

    capture_begin();
    tree_sum_dynamic_kernel<<<1, 256, 64 * 1024>>>(x, x, n);
    expect_error("64 KiB shared", cudaErrorInvalidValue, "at most 49152", 0,
                 "without cudaFuncSetAttribute");
    CHECK(cudaFuncSetAttribute(tree_sum_dynamic_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               64 * 1024) == cudaSuccess,
          "cudaFuncSetAttribute");
    tree_sum_dynamic_kernel<<<1, 256, 64 * 1024>>>(x, x, 256);
    CHECK(cudaGetLastError() == cudaSuccess, "64 KiB shared after cudaFuncSetAttribute");
    expect_all("the sum over 256 twos", x, 1, 512.0f);
    cudaStreamDestroy(s);
    cudaFree(x);
}

int main(void)
{
    test_sums();
    test_shuffles();
    test_indices();
    test_errors();
    test_graph_and_limits();
    printf("test_cuda_emu_selftest: %s (%d failed)\n", failures ? "FAIL" : "ok", failures);
    return failures ? 1 : 0;
}
