/* cuda_timing.cu: the CUDA backend's timing events, memory figure and graphs (backend.h's
 * optional hooks, used by ddim-bench and the trainer's captured step).
 *
 * Events are cudaEvents recorded on the backend's stream, so the time between two is the
 * GPU time of the ops queued between them, and recording needs no host synchronization.
 *
 * Memory: the backend counts its own device allocations (cuda_alloc/cuda_free report
 * each one here) and keeps the running total and its peak, plus the reduction scratch
 * made at creation. Other files of the backend that call cudaMalloc themselves report
 * through cuda_mem_note_alloc/free too, or their buffers are not counted. This is the
 * counterpart of PyTorch's max_memory_allocated: the buffers, not the CUDA context, the
 * libraries' code or a caching allocator's reserve. */
#include "cuda_common.h"

#include <stdlib.h>

struct cuda_mem_block {
    void *p;
    size_t bytes;
};

struct cuda_mem_track {
    struct cuda_mem_block *live; /* (count) allocations not yet freed */
    int count, cap;
    size_t in_use, peak; /* bytes */
};

static struct cuda_mem_track *track_of(struct cuda_ctx *ctx)
{
    if (!ctx->mem)
        ctx->mem = (struct cuda_mem_track *)util_xcalloc(1, sizeof *ctx->mem);
    return ctx->mem;
}

void cuda_mem_note_alloc(struct cuda_ctx *ctx, void *p, size_t bytes)
{
    struct cuda_mem_track *t = track_of(ctx);
    if (t->count == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->live = (struct cuda_mem_block *)realloc(t->live, (size_t)t->cap * sizeof *t->live);
        if (!t->live)
            DDIM_FATAL("cuda backend: out of host memory tracking allocations");
    }
    t->live[t->count].p = p;
    t->live[t->count].bytes = bytes;
    t->count++;
    t->in_use += bytes;
    if (t->in_use > t->peak)
        t->peak = t->in_use;
}

void cuda_mem_note_free(struct cuda_ctx *ctx, void *p)
{
    struct cuda_mem_track *t = track_of(ctx);
    /* newest first: buffers are mostly freed in reverse order of allocation */
    for (int i = t->count - 1; i >= 0; i--) {
        if (t->live[i].p != p)
            continue;
        t->in_use -= t->live[i].bytes;
        t->live[i] = t->live[t->count - 1];
        t->count--;
        return;
    }
}

void cuda_mem_track_destroy(struct cuda_ctx *ctx)
{
    if (!ctx->mem)
        return;
    free(ctx->mem->live);
    free(ctx->mem);
    ctx->mem = NULL;
}

size_t cuda_memory_peak_bytes(struct backend *be)
{
    struct cuda_ctx *ctx = cuda_ctx_of(be);
    return track_of(ctx)->peak + ctx->scratch_doubles * sizeof(double);
}

void *cuda_event_create(struct backend *be)
{
    cudaEvent_t ev = NULL;
    CUDA_CHECK(cudaEventCreate(&ev));
    return (void *)ev;
}

void cuda_event_record(struct backend *be, void *ev)
{
    CUDA_CHECK(cudaEventRecord((cudaEvent_t)ev, cuda_stream(be)));
}

float cuda_event_elapsed_ms(struct backend *be, void *start, void *end)
{
    float ms = 0.0f;
    CUDA_CHECK(cudaEventSynchronize((cudaEvent_t)end));
    CUDA_CHECK(cudaEventElapsedTime(&ms, (cudaEvent_t)start, (cudaEvent_t)end));
    return ms;
}

void cuda_event_destroy(struct backend *be, void *ev)
{
    if (ev)
        CUDA_CHECK(cudaEventDestroy((cudaEvent_t)ev));
}

/* Graphs: stream capture of ctx->stream in the thread-local mode: a call of this thread
 * which would synchronize or allocate inside the captured work is refused instead of run;
 * other threads (the NCCL communicator's watchdog polling its event, NCCL's own proxy
 * threads) may go on with theirs, which the global mode would refuse, spoiling the capture.
 * Inside one of this backend's ops such a refusal dies through CUDA_CHECK, naming the call (a
 * clear error, never a wrong result); the ops promise none in their steady state
 * (cuda_common.h), and the trainer captures only after an eager warm-up step has made the
 * conv plans and buffers. A capture spoiled by a call that is not ours (a library's) is
 * reported by end. */
static void cuda_graph_capture_begin(struct backend *be)
{
    CUDA_CHECK(cudaStreamBeginCapture(cuda_stream(be), cudaStreamCaptureModeThreadLocal));
}

struct cuda_graph {
    cudaGraphExec_t exec;
    unsigned long epoch; /* ctx->graph_epoch at capture */
};

static void *cuda_graph_capture_end(struct backend *be, char *err, size_t errlen)
{
    cudaGraph_t graph = NULL;
    cudaGraphExec_t exec = NULL;
    cudaError_t e = cudaStreamEndCapture(cuda_stream(be), &graph);
    if (e == cudaSuccess)
        e = cudaGraphInstantiate(&exec, graph, 0);
    if (graph)
        CUDA_CHECK(cudaGraphDestroy(graph));
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* the sticky-free error of the capture: reported here */
        util_error(err, errlen, "CUDA graph capture failed: %s (%s)", cudaGetErrorName(e),
                   cudaGetErrorString(e));
        return NULL;
    }
    struct cuda_graph *g = (struct cuda_graph *)util_xcalloc(1, sizeof *g);
    g->exec = exec;
    g->epoch = cuda_ctx_of(be)->graph_epoch;
    return g;
}

static int cuda_graph_launch(struct backend *be, void *graph)
{
    struct cuda_graph *g = (struct cuda_graph *)graph;
    if (g->epoch != cuda_ctx_of(be)->graph_epoch)
        return 0;
    CUDA_CHECK(cudaGraphLaunch(g->exec, cuda_stream(be)));
    return 1;
}

static void cuda_graph_destroy(struct backend *be, void *graph)
{
    struct cuda_graph *g = (struct cuda_graph *)graph;
    if (!g)
        return;
    CUDA_CHECK(cudaGraphExecDestroy(g->exec));
    free(g);
}

void cuda_graph_fill_table(struct backend *be)
{
#if !(defined(DDIM_DEBUG_SYNC) && DDIM_DEBUG_SYNC) /* it waits after every launch: no capture */
    be->graph_capture_begin = cuda_graph_capture_begin;
    be->graph_capture_end = cuda_graph_capture_end;
    be->graph_launch = cuda_graph_launch;
    be->graph_destroy = cuda_graph_destroy;
#else
    (void)be;
#endif
}
