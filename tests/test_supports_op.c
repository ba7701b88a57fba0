/* test_supports_op.c: a shape a backend cannot run is refused when a network meets the
 * backend, naming the op and the shape, not by a fatal error in the middle of a run
 * (backend.h's supports_op, graph_check_backend). On the CPU backend: conv2d_backward of a
 * stride-2 'valid' convolution (inference-only shapes have no backward) is refused for
 * training and taken for inference. Built a second time as test_supports_op_emu on the host
 * emulation of the CUDA backend (tests/cuda_emu), whose sinusoidal embedding takes at most
 * 1024 dims: trainer_create with model.embedding_dims 2048 (within the key's bounds) is
 * refused there with the op and the shape, while the CPU backend takes it. */
#include "backend.h"
#include "comm.h"
#include "config.h"
#include "graph.h"
#include "test_util.h"
#include "trainer.h"
#ifdef DDIM_CUDA_EMU
#include "cuda_emu_backend.h"
#endif

#include <stdio.h>
#include <string.h>

/* err must hold every one of the words (NULL-terminated) */
static void expect_words(const char *what, const char *err, const char *const *words)
{
    for (const char *const *w = words; *w; w++)
        if (!strstr(err, *w)) {
            test_fail("%s: the message lacks '%s': %s", what, *w, err);
            return;
        }
    printf("ok   %s: %s\n", what, err);
}

static void check_cpu_conv(struct backend *be)
{
    struct conv_shape s = {2, 9, 9, 3, 4, 0, 3, 3, 2, 1}; /* 3x3, stride 2, 'valid' */
    struct op_shape os = {.conv = &s};
    char err[512] = "";
    if (!backend_supports(be, BACKEND_OP_conv2d_forward, &os, err, sizeof err))
        test_fail("conv2d_forward refused at stride 2: %s", err);
    if (backend_supports(be, BACKEND_OP_conv2d_backward, &os, err, sizeof err))
        test_fail("conv2d_backward taken at stride 2, 'valid': it has no such backward");
    else
        expect_words("backend_supports(conv2d_backward, stride 2)", err,
                     (const char *const[]){"cpu backend", "conv2d_backward",
                                           "n=2 h=9 w=9 cin=3 cout=4 kernel 3x3 stride 2 valid",
                                           "stride 1", NULL});

    /* the same convolution in a trainable network: refused for training, taken otherwise */
    struct graph g;
    memset(&g, 0, sizeof g);
    g.trainable = 1;
    g.input = graph_tensor(&g, 9, 9, 3, 0);
    g.output = graph_add_conv(&g, "stem", g.input, 4, 3, 3, 2, 1);
    if (graph_check_backend(be, &g, 2, 0, err, sizeof err) != 0)
        test_fail("graph_check_backend (inference) refused: %s", err);
    if (graph_check_backend(be, &g, 2, 1, err, sizeof err) == 0)
        test_fail("graph_check_backend (training) took a convolution without a backward");
    else
        expect_words("graph_check_backend (training)", err,
                     (const char *const[]){"conv2d_backward", "kernel 3x3 stride 2 valid", NULL});
    graph_free(&g);
}

/* A trainer of a small U-Net with `dims` embedding dimensions on be: NULL with err when
 * refused. */
static struct trainer *trainer_with_embedding(struct backend *be, struct comm *comm, int dims,
                                              char *err, size_t errlen)
{
    struct unet_config u = config_default_model();
    u.image_size = 8;
    u.num_levels = 2;
    u.widths[0] = 4, u.widths[1] = 8;
    u.block_depth = 1;
    u.embedding_dims = dims;
    struct diffusion_config dc = config_default_diffusion();
    return trainer_create(be, comm, &u, &dc, 2, 2, 0, err, errlen);
}

int main(void)
{
    char err[1024] = "";
    struct comm *comm = comm_single();
    struct backend *cpu = cpu_backend_create();
    check_cpu_conv(cpu);
    struct trainer *t = trainer_with_embedding(cpu, comm, 2048, err, sizeof err);
    if (!t)
        test_fail("the cpu backend refused a 2048-dim embedding: %s", err);
    else
        printf("ok   the cpu backend takes a 2048-dim embedding\n");
    trainer_destroy(t);
    cpu->destroy(cpu);
#ifdef DDIM_CUDA_EMU
    struct backend *be = backend_cuda_emu_create_with_conv(err, sizeof err);
    if (!be) {
        printf("SKIP: %s\n", err);
        comm->destroy(comm);
        return TEST_SKIP;
    }
    t = trainer_with_embedding(be, comm, 2048, err, sizeof err);
    if (t) {
        test_fail("the %s backend took a 2048-dim embedding at trainer_create: it would fail in "
                  "the first step",
                  be->name);
        trainer_destroy(t);
    } else {
        expect_words(
            "trainer_create, embedding_dims 2048", err,
            (const char *const[]){be->name, "sinusoidal_embedding", "dims=2048", "1024", NULL});
    }
    t = trainer_with_embedding(be, comm, 32, err, sizeof err);
    if (!t)
        test_fail("the %s backend refused a 32-dim embedding: %s", be->name, err);
    trainer_destroy(t);
    be->destroy(be);
    comm->destroy(comm);
    return test_finish("test_supports_op_emu");
#else
    comm->destroy(comm);
    return test_finish("test_supports_op");
#endif
}
