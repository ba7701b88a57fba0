/* grad_buckets.h: the gradient's all-reduce hidden behind the backward pass.
 *
 * The flat gradient (params.h: trainable weights in the network's order) is cut into
 * buckets of a fixed number of floats. The backward pass writes the gradients from the
 * network's end to its start, so the buckets fill from the last one: grad_buckets_written
 * (a struct grad_listener of graph.h) counts each bucket's floats as their op is enqueued,
 * and starts a bucket's all-reduce (comm->allreduce_start) as soon as it is full, while the
 * rest of the backward pass runs; grad_buckets_finish starts what is left and completes
 * them all. A bucket as large as the gradient is one all-reduce after the backward pass.
 * The transports make the result independent of the cut (comm.h): MPI for any number of
 * ranks, NCCL for two. */
#ifndef DDIM_GRAD_BUCKETS_H
#define DDIM_GRAD_BUCKETS_H

#include "comm.h"

#include <stddef.h>

struct grad_buckets;

/* Buckets of `size` floats (0 or more than n: one bucket) over grad (n floats, backend
 * memory), all-reduced over comm, which must have allreduce_start and _finish. */
struct grad_buckets *grad_buckets_create(struct comm *comm, float *grad, size_t n, size_t size);
void grad_buckets_destroy(struct grad_buckets *b);
int grad_buckets_count(const struct grad_buckets *b);

/* The listener's call (self: the buckets): floats [offset, offset + count) are final. */
void grad_buckets_written(void *self, size_t offset, size_t count);

/* After the backward pass: every bucket started, then completed; ready for the next step. */
void grad_buckets_finish(struct grad_buckets *b);

#endif
