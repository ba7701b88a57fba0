/* cpu_timing.c: the CPU backend's timing events and memory figure (backend.h's optional
 * hooks, used by ddim-bench). Every CPU op has finished when it returns, so an event is
 * just the host's monotonic clock read when it is recorded. The memory figure is the
 * process's peak resident set (getrusage), the host-side counterpart of device memory. */
#define _POSIX_C_SOURCE 200809L /* getrusage */
#include "cpu_ops.h"
#include "util.h"

#include <stdlib.h>
#include <sys/resource.h>

void *cpu_event_create(struct backend *be)
{
    return util_xcalloc(1, sizeof(double));
}

void cpu_event_record(struct backend *be, void *ev)
{
    *(double *)ev = util_now();
}

float cpu_event_elapsed_ms(struct backend *be, void *start, void *end)
{
    return (float)((*(const double *)end - *(const double *)start) * 1e3);
}

void cpu_event_destroy(struct backend *be, void *ev)
{
    free(ev);
}

size_t cpu_memory_peak_bytes(struct backend *be)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss <= 0)
        return 0;
    return (size_t)ru.ru_maxrss * 1024; /* Linux reports kilobytes */
}
