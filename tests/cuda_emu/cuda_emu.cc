/* cuda_emu.cc: the host emulation's scheduler: the threads of a block as fibers, barriers,
 * warp exchanges, shared memory (the runtime API is cuda_emu_runtime.cc). See cuda_emu.h
 * for what it is for.
 *
 * Scheduling: a worker fiber runs the block's threads one after another until one of them
 * waits at a barrier; that thread keeps the fiber, and a fresh worker goes on with the next
 * thread. So a kernel without barriers runs a whole block on one fiber (cheap), and only a
 * kernel with barriers pays one fiber per thread. Released threads resume in thread order
 * (or the reverse with DDIM_CUDA_EMU_ORDER=reverse: the threads start from the last one, so
 * that a missing barrier between a write by a later thread and a read by an earlier one,
 * and its mirror image, can both be caught by one of the two orders).
 *
 * Switching: a fiber's stack is entered once through ucontext (makecontext); every switch
 * after that is _setjmp/_longjmp, which save no signal mask (swapcontext makes a system
 * call for it each time, and a barrier kernel switches a dozen times per thread). */
#undef _FORTIFY_SOURCE /* its longjmp check refuses a jump to another stack */
#include "cuda_emu.h"

#include <setjmp.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <chrono>
#include <deque>
#include <map>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <vector>

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace emu
{
namespace
{

constexpr size_t FIBER_STACK = 256 * 1024;
constexpr int MAX_THREADS = 1024;
constexpr size_t DEFAULT_DYNAMIC_SHARED = 48 * 1024; /* without cudaFuncSetAttribute */
constexpr size_t MAX_DYNAMIC_SHARED = 227 * 1024;    /* an H100's, with it */

enum thread_state { NOT_STARTED, RUNNING, AT_BARRIER, AT_WARP, DONE };

struct fiber {
    ucontext_t boot; /* enters the stack, once */
    jmp_buf resume;  /* where the fiber goes on */
    void *stack = nullptr;
    int thread = -1; /* the thread this fiber runs now */
};

struct warp {
    unsigned arrived = 0, mask = 0;
    warp_op op = WARP_SYNC;
    const char *file = nullptr;
    int line = 0;
    uint64_t value[32], result[32];
    int param[32], width[32];
};

struct block_run {
    const config *cfg;
    void (*thread_fn)(void *);
    void *arg;
    int nthreads;
    std::vector<thread_state> state;
    std::vector<fiber *> fiber_of; /* the fiber a waiting thread sleeps on */
    std::vector<int> order;        /* start order of the threads */
    int next_start = 0;            /* index into order */
    std::deque<int> ready;         /* released threads, to resume in this order */
    int at_barrier = 0;
    const char *barrier_file = nullptr;
    int barrier_line = 0;
    std::vector<warp> warps;
    bool failed = false;
};

jmp_buf scheduler_jb;
ucontext_t boot_return;
std::vector<fiber *> free_fibers; /* fibers live as long as the process */
fiber *current_fiber = nullptr;
block_run *current_block = nullptr;
int current_thread = -1;
std::vector<unsigned char> dynamic_shared_mem(MAX_DYNAMIC_SHARED);
struct shared_area {
    void *p;
    size_t bytes;
};
std::vector<shared_area> shared_areas;        /* the __shared__ variables (emu::shared_var) */
std::map<const void *, size_t> shared_limits; /* cudaFuncSetAttribute's, by kernel */

bool reverse_order()
{
    static int rev = -1;
    if (rev < 0) {
        const char *s = getenv("DDIM_CUDA_EMU_ORDER");
        rev = s && !strcmp(s, "reverse");
    }
    return rev;
}

void set_thread_indices(int t)
{
    const dim3 &b = current_block->cfg->block;
    threadIdx.x = (unsigned)t % b.x;
    threadIdx.y = (unsigned)t / b.x % b.y;
    threadIdx.z = (unsigned)t / (b.x * b.y);
    current_thread = t;
}

/* Prints the emulator's diagnosis of the running block and marks it failed. */
__attribute__((format(printf, 1, 2))) void block_error(const char *fmt, ...)
{
    block_run *b = current_block;
    fprintf(stderr,
            "cuda emulator: kernel launched at %s:%d, block (%u,%u,%u): ", base_name(b->cfg->file),
            b->cfg->line, blockIdx.x, blockIdx.y, blockIdx.z);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    b->failed = true;
}

/* Back to the scheduler; returns when the scheduler switches to this fiber again. */
void yield()
{
    if (!_setjmp(current_fiber->resume))
        _longjmp(scheduler_jb, 1);
}

void fiber_switch_to(fiber *f)
{
    current_fiber = f;
    if (!_setjmp(scheduler_jb))
        _longjmp(f->resume, 1);
}

/* A worker: runs not yet started threads until one waits (it keeps this fiber) or none
 * is left (the fiber goes back to the pool). */
void run_threads()
{
    for (;;) {
        block_run *b = current_block;
        if (b->failed || b->next_start >= b->nthreads)
            return;
        int t = b->order[b->next_start++];
        b->state[t] = RUNNING;
        current_fiber->thread = t;
        set_thread_indices(t);
        b->thread_fn(b->arg);
        current_block->state[t] = DONE;
    }
}

/* A fiber's whole life: registers where it starts, returns to fiber_boot, then each time
 * the scheduler switches to it runs threads and goes back to the pool. */
void fiber_main()
{
    if (!_setjmp(current_fiber->resume))
        swapcontext(&current_fiber->boot, &boot_return);
    for (;;) {
        run_threads();
        current_fiber->thread = -1;
        free_fibers.push_back(current_fiber);
        yield();
    }
}

/* (Re)starts f's stack at fiber_main: for a new fiber, and for one a failed block left. */
void fiber_boot(fiber *f)
{
    getcontext(&f->boot);
    f->boot.uc_stack.ss_sp = f->stack;
    f->boot.uc_stack.ss_size = FIBER_STACK;
    f->boot.uc_link = nullptr;
    makecontext(&f->boot, fiber_main, 0);
    current_fiber = f;
    swapcontext(&boot_return, &f->boot);
}

fiber *fiber_get()
{
    if (free_fibers.empty()) {
        fiber *f = new fiber;
        /* a guard page below the stack: an overflow faults instead of corrupting memory */
        char *mem = (char *)mmap(nullptr, FIBER_STACK + 4096, PROT_READ | PROT_WRITE,
                                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (mem == MAP_FAILED) {
            fprintf(stderr, "cuda emulator: cannot map a fiber stack\n");
            exit(1);
        }
        mprotect(mem, 4096, PROT_NONE);
        f->stack = mem + 4096;
        fiber_boot(f);
        return f;
    }
    fiber *f = free_fibers.back();
    free_fibers.pop_back();
    return f;
}

void start_worker()
{
    fiber_switch_to(fiber_get());
}

void resume(int t)
{
    current_block->state[t] = RUNNING;
    set_thread_indices(t);
    fiber_switch_to(current_block->fiber_of[t]);
}

/* Why the block cannot go on: threads wait where others never come. */
void report_stuck(block_run *b)
{
    int done = 0, at_warp = 0;
    for (int t = 0; t < b->nthreads; t++) {
        done += b->state[t] == DONE;
        at_warp += b->state[t] == AT_WARP;
    }
    if (b->at_barrier)
        block_error("__syncthreads() at %s:%d reached by %d of %d threads; %d exited before it "
                    "and %d wait at a warp operation (a barrier every thread must reach)",
                    base_name(b->barrier_file), b->barrier_line, b->at_barrier, b->nthreads, done,
                    at_warp);
    for (size_t w = 0; w < b->warps.size(); w++) {
        const warp &wp = b->warps[w];
        if (wp.arrived)
            block_error("warp %zu: the warp operation at %s:%d with mask 0x%08x was reached by "
                        "lanes 0x%08x only",
                        w, base_name(wp.file), wp.line, wp.mask, wp.arrived);
    }
}

/* Runs one block to its end; false if it failed. */
bool run_block(block_run *b)
{
    for (int t = 0; t < b->nthreads; t++)
        b->state[t] = NOT_STARTED;
    b->next_start = 0;
    b->ready.clear();
    b->at_barrier = 0;
    for (warp &w : b->warps)
        w.arrived = 0;
    for (const shared_area &a : shared_areas)
        memset(a.p, 0xff, a.bytes);
    memset(dynamic_shared_mem.data(), 0xff, b->cfg->shmem);
    for (;;) {
        if (b->failed)
            break;
        if (!b->ready.empty()) {
            int t = b->ready.front();
            b->ready.pop_front();
            resume(t);
        } else if (b->next_start < b->nthreads) {
            start_worker();
        } else {
            break;
        }
    }
    if (!b->failed)
        for (int t = 0; t < b->nthreads; t++)
            if (b->state[t] != DONE) {
                report_stuck(b);
                break;
            }
    if (b->failed) /* the waiting threads are abandoned: their fibers start afresh */
        for (int t = 0; t < b->nthreads; t++)
            if ((b->state[t] == AT_BARRIER || b->state[t] == AT_WARP) && b->fiber_of[t]) {
                fiber_boot(b->fiber_of[t]);
                free_fibers.push_back(b->fiber_of[t]);
                b->fiber_of[t] = nullptr;
            }
    return !b->failed;
}

/* The running thread waits here until the scheduler resumes it. */
void wait_here(thread_state why)
{
    block_run *b = current_block;
    int t = current_thread;
    b->state[t] = why;
    b->fiber_of[t] = current_fiber;
    yield();
    set_thread_indices(t); /* resumed: the scheduler set them, but be explicit */
}

/* A failed block's threads never resume: the one that found the error parks here. */
[[noreturn]] void park_failed()
{
    block_run *b = current_block;
    int t = current_thread;
    b->state[t] = AT_BARRIER;
    b->fiber_of[t] = current_fiber;
    yield();
    abort(); /* unreachable: a failed block's fibers are never resumed */
}

} // namespace

const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

cudaError_t run_grid(const config &cfg, void (*thread_fn)(void *), void *arg)
{
    const dim3 &bd = cfg.block, &gd = cfg.grid;
    unsigned long long threads = (unsigned long long)bd.x * bd.y * bd.z;
    if (!threads || threads > MAX_THREADS || bd.z > 64 || !gd.x || !gd.y || !gd.z || gd.y > 65535 ||
        gd.z > 65535 || gd.x > 0x7fffffffu) {
        fprintf(stderr,
                "cuda emulator: kernel launched at %s:%d: invalid configuration grid (%u,%u,%u) "
                "block (%u,%u,%u)\n",
                base_name(cfg.file), cfg.line, gd.x, gd.y, gd.z, bd.x, bd.y, bd.z);
        return cudaErrorInvalidConfiguration;
    }
    auto limit = shared_limits.find(cfg.kernel);
    size_t max_shared = limit != shared_limits.end() ? limit->second : DEFAULT_DYNAMIC_SHARED;
    if (cfg.shmem > max_shared) {
        fprintf(stderr,
                "cuda emulator: kernel launched at %s:%d asks %zu bytes of dynamic shared "
                "memory (at most %zu%s)\n",
                base_name(cfg.file), cfg.line, cfg.shmem, max_shared,
                max_shared == DEFAULT_DYNAMIC_SHARED ? " without cudaFuncSetAttribute" : "");
        return cudaErrorInvalidValue;
    }
    if (current_block) {
        fprintf(stderr, "cuda emulator: kernel launched at %s:%d from inside a kernel\n",
                base_name(cfg.file), cfg.line);
        return cudaErrorLaunchFailure;
    }
    block_run b;
    b.cfg = &cfg;
    b.thread_fn = thread_fn;
    b.arg = arg;
    b.nthreads = (int)threads;
    b.state.assign(threads, NOT_STARTED);
    b.fiber_of.assign(threads, nullptr);
    b.warps.resize((threads + 31) / 32);
    for (int t = 0; t < b.nthreads; t++)
        b.order.push_back(reverse_order() ? b.nthreads - 1 - t : t);
    blockDim = bd;
    gridDim = gd;
    current_block = &b;
    bool ok = true;
    for (unsigned z = 0; z < gd.z && ok; z++)
        for (unsigned y = 0; y < gd.y && ok; y++)
            for (unsigned x = 0; x < gd.x && ok; x++) {
                blockIdx = uint3{x, y, z};
                ok = run_block(&b);
            }
    current_block = nullptr;
    current_fiber = nullptr;
    return ok ? cudaSuccess : cudaErrorLaunchFailure;
}

void syncthreads(const char *file, int line)
{
    block_run *b = current_block;
    if (!b) {
        fprintf(stderr, "cuda emulator: __syncthreads() at %s:%d outside a kernel\n",
                base_name(file), line);
        exit(1);
    }
    if (b->at_barrier && (b->barrier_line != line || strcmp(b->barrier_file, file))) {
        block_error("thread %d reached __syncthreads() at %s:%d while %d threads wait at the one "
                    "at %s:%d (divergent barriers)",
                    current_thread, base_name(file), line, b->at_barrier,
                    base_name(b->barrier_file), b->barrier_line);
        park_failed();
    }
    b->barrier_file = file;
    b->barrier_line = line;
    if (++b->at_barrier == b->nthreads) { /* the last one: release all, in start order */
        b->at_barrier = 0;
        for (int k = 0; k < b->nthreads; k++)
            b->ready.push_back(b->order[k]);
    }
    wait_here(AT_BARRIER);
}

/* Lane `lane`'s source for a shuffle, or -1 when it keeps its own value. */
static int shfl_source(warp_op op, int lane, int param, int width)
{
    int base = lane / width * width;
    switch (op) {
    case WARP_SHFL:
        return base + (param % width + width) % width;
    case WARP_SHFL_UP:
        return lane - param >= base ? lane - param : -1;
    case WARP_SHFL_DOWN:
        return lane + param < base + width ? lane + param : -1;
    case WARP_SHFL_XOR: {
        int src = lane ^ param;
        return src < base + width ? src : -1; /* later groups: own value (CUDA's rule) */
    }
    default:
        return -1;
    }
}

/* The last lane arrived: every lane's result. */
static bool warp_release(warp &w)
{
    unsigned ballot = 0;
    for (int l = 0; l < 32; l++)
        if ((w.mask >> l & 1u) && w.value[l])
            ballot |= 1u << l;
    for (int l = 0; l < 32; l++) {
        if (!(w.mask >> l & 1u))
            continue;
        if (w.op == WARP_BALLOT) {
            w.result[l] = ballot;
            continue;
        }
        int src = shfl_source(w.op, l, w.param[l], w.width[l]);
        if (src >= 0 && !(w.mask >> src & 1u)) {
            block_error("lane %d of warp %d shuffles from lane %d, which is not in the mask "
                        "0x%08x (at %s:%d)",
                        l, current_thread / 32, src, w.mask, base_name(w.file), w.line);
            return false;
        }
        w.result[l] = src >= 0 ? w.value[src] : w.value[l];
    }
    return true;
}

uint64_t warp_exchange(warp_op op, unsigned mask, uint64_t bits, int param, int width,
                       const char *file, int line)
{
    block_run *b = current_block;
    if (!b) {
        fprintf(stderr, "cuda emulator: warp operation at %s:%d outside a kernel\n",
                base_name(file), line);
        exit(1);
    }
    int t = current_thread, lane = t % 32;
    warp &w = b->warps[t / 32];
    int lanes = b->nthreads - t / 32 * 32; /* lanes this warp has */
    if (!(mask >> lane & 1u)) {
        block_error("thread %d calls the warp operation at %s:%d with mask 0x%08x, which "
                    "leaves out its own lane %d",
                    t, base_name(file), line, mask, lane);
        park_failed();
    }
    if (lanes < 32 && (mask >> lanes)) {
        block_error("the warp operation at %s:%d names lanes (mask 0x%08x) that warp %d of a "
                    "%d-thread block does not have",
                    base_name(file), line, mask, t / 32, b->nthreads);
        park_failed();
    }
    if (width < 1 || width > 32 || (width & (width - 1))) {
        block_error("shuffle width %d at %s:%d is not a power of 2 up to 32", width,
                    base_name(file), line);
        park_failed();
    }
    if (w.arrived && (w.line != line || strcmp(w.file, file) || w.mask != mask || w.op != op)) {
        block_error("lane %d of warp %d reached the warp operation at %s:%d (mask 0x%08x) while "
                    "lanes 0x%08x wait at the one at %s:%d (mask 0x%08x)",
                    lane, t / 32, base_name(file), line, mask, w.arrived, base_name(w.file), w.line,
                    w.mask);
        park_failed();
    }
    w.op = op, w.mask = mask, w.file = file, w.line = line;
    w.value[lane] = bits, w.param[lane] = param, w.width[lane] = width;
    w.arrived |= 1u << lane;
    if (w.arrived == mask) { /* the last lane: results, then all continue */
        w.arrived = 0;
        if (!warp_release(w))
            park_failed();
        for (int k = 0; k < b->nthreads; k++) {
            int u = b->order[k];
            if (u / 32 == t / 32 && (mask >> (u % 32) & 1u))
                b->ready.push_back(u);
        }
    }
    wait_here(AT_WARP);
    return w.result[lane];
}

cudaError_t set_shared_limit(const void *kernel, int bytes)
{
    if (bytes < 0 || (size_t)bytes > MAX_DYNAMIC_SHARED)
        return cudaErrorInvalidValue;
    shared_limits[kernel] = (size_t)bytes;
    return cudaSuccess;
}

void register_shared(void *p, size_t bytes)
{
    shared_areas.push_back(shared_area{p, bytes});
    memset(p, 0xff, bytes);
}

void *dynamic_shared()
{
    return dynamic_shared_mem.data();
}

} // namespace emu
