/* grad_buckets.c: see grad_buckets.h. */
#include "grad_buckets.h"
#include "util.h"

#include <stdlib.h>

struct grad_buckets {
    struct comm *comm;
    float *grad;
    size_t n, size; /* floats in all, per bucket (the last may hold fewer) */
    int count;
    size_t *filled; /* floats of each bucket written this step */
    char *started;
};

struct grad_buckets *grad_buckets_create(struct comm *comm, float *grad, size_t n, size_t size)
{
    if (!comm->allreduce_start || !comm->allreduce_finish)
        DDIM_FATAL("grad_buckets_create: the communicator has no non-blocking all-reduce");
    struct grad_buckets *b = util_xcalloc(1, sizeof *b);
    b->comm = comm;
    b->grad = grad;
    b->n = n;
    b->size = size && size < n ? size : (n ? n : 1);
    b->count = (int)((n + b->size - 1) / b->size);
    b->filled = util_xcalloc((size_t)(b->count ? b->count : 1), sizeof *b->filled);
    b->started = util_xcalloc((size_t)(b->count ? b->count : 1), 1);
    return b;
}

void grad_buckets_destroy(struct grad_buckets *b)
{
    if (!b)
        return;
    free(b->filled);
    free(b->started);
    free(b);
}

int grad_buckets_count(const struct grad_buckets *b)
{
    return b->count;
}

static size_t bucket_floats(const struct grad_buckets *b, int k)
{
    size_t lo = (size_t)k * b->size;
    return b->n - lo < b->size ? b->n - lo : b->size;
}

static void start(struct grad_buckets *b, int k)
{
    b->started[k] = 1;
    b->comm->allreduce_start(b->comm, b->grad + (size_t)k * b->size, bucket_floats(b, k));
}

void grad_buckets_written(void *self, size_t offset, size_t count)
{
    struct grad_buckets *b = self;
    size_t end = offset + count;
    if (end > b->n || offset > end)
        DDIM_FATAL("grad_buckets: floats [%zu, %zu) written past the gradient's %zu", offset, end,
                   b->n);
    for (size_t at = offset; at < end;) {
        int k = (int)(at / b->size);
        size_t stop = ((size_t)k + 1) * b->size < end ? ((size_t)k + 1) * b->size : end;
        b->filled[k] += stop - at;
        if (b->filled[k] > bucket_floats(b, k))
            DDIM_FATAL("grad_buckets: bucket %d written twice in one step", k);
        if (b->filled[k] == bucket_floats(b, k))
            start(b, k);
        at = stop;
    }
    if (b->comm->allreduce_progress)
        b->comm->allreduce_progress(b->comm);
}

void grad_buckets_finish(struct grad_buckets *b)
{
    for (int k = b->count - 1; k >= 0; k--) /* the backward pass fills them from the end */
        if (!b->started[k])
            start(b, k);
    b->comm->allreduce_finish(b->comm);
    for (int k = 0; k < b->count; k++) {
        b->filled[k] = 0;
        b->started[k] = 0;
    }
}
