/* cuda_timing.cu: the CUDA backend's timing events and memory figure (backend.h's optional
 * hooks, used by ddim-bench).
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
