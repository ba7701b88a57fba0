/* test_mpi_step.c: data parallelism does not change the training (label mpi).
 *
 * Run under mpirun with N ranks: the ranks train a small U-Net together for a few steps,
 * each on its share of an 8-image global batch (synchronized BatchNorm, summed gradients,
 * noises keyed by global position). Rank 0 then trains the same model alone on the whole
 * batch and compares the losses of every step and the final weights, BN moving statistics,
 * EMA weights and Adam moments. Only float32 summation order differs between the two. */
#include "comm.h"
#include "config.h"
#include "test_util.h"
#include "trainer.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GLOBAL_BATCH = 8, STEPS = 5 };

/* Losses: the mean over ranks of each rank's mean is the global mean (equal shares).
 * Weights: rel-L2 per tensor; a few ulps of reordering per step, through 5 Adam steps. */
static const double TOL_LOSS = 1e-5;
static const double TOL_WEIGHTS = 1e-5;

/* A smooth image that depends only on the global example index. */
static void make_image(float *x, int size, int index)
{
    for (int y = 0; y < size; y++)
        for (int xx = 0; xx < size; xx++)
            for (int c = 0; c < 3; c++)
                x[((size_t)y * size + xx) * 3 + c] =
                    0.5f + 0.4f * sinf(0.7f * xx + 1.3f * index + c) * cosf(0.5f * y - 0.6f * c);
}

static struct unet_config small_model(void)
{
    struct unet_config u = config_default_model();
    u.image_size = 8;
    u.num_levels = 2;
    u.widths[0] = 4;
    u.widths[1] = 6;
    u.block_depth = 2;
    u.embedding_dims = 4;
    return u;
}

/* Trains STEPS steps on examples [first, first+batch) of the global batch; losses[s] are the
 * global mean losses of step s. */
static struct trainer *train(struct backend *be, struct comm *comm, int batch, int first,
                             float losses[STEPS][2])
{
    struct unet_config u = small_model();
    struct diffusion_config dc = config_default_diffusion();
    dc.seed = 7;
    char err[512];
    struct trainer *t =
        trainer_create(be, comm, &u, &dc, batch, GLOBAL_BATCH, first, err, sizeof err);
    if (!t)
        DDIM_FATAL("trainer_create: %s", err);
    trainer_init_weights(t);
    const float mean[3] = {0.5f, 0.45f, 0.4f}, var[3] = {0.08f, 0.07f, 0.09f};
    trainer_set_normalizer(t, mean, var);
    float *host = util_xmalloc((size_t)batch * t->per_image * sizeof(float));
    for (int i = 0; i < batch; i++)
        make_image(host + (size_t)i * t->per_image, u.image_size, first + i);
    be->upload(be, t->images, host, (size_t)batch * t->per_image * sizeof(float));
    free(host);
    for (int s = 0; s < STEPS; s++) {
        trainer_train_step(t); /* draws stream step s: the counters start at 0 */
        comm->allreduce_sum(comm, t->losses, 2);
        trainer_read_losses(t, losses[s]);
        losses[s][0] /= (float)comm->world;
        losses[s][1] /= (float)comm->world;
    }
    return t;
}

static void compare_buffers(const char *name, struct trainer *a, struct trainer *b, const float *pa,
                            const float *pb, int trainable_only)
{
    const struct param_table *pt = unet_params(a->net);
    size_t n = trainable_only ? pt->trainable : pt->total;
    float *ha = util_xmalloc(n * sizeof(float)), *hb = util_xmalloc(n * sizeof(float));
    a->be->download(a->be, ha, pa, n * sizeof(float));
    b->be->download(b->be, hb, pb, n * sizeof(float));
    for (int i = 0; i < pt->count; i++) {
        const struct param *p = &pt->items[i];
        if (p->offset + p->count > n)
            continue;
        char label[160];
        snprintf(label, sizeof label, "%s %s", name, p->name);
        test_rel_l2(label, ha + p->offset, hb + p->offset, p->count, TOL_WEIGHTS);
    }
    free(ha);
    free(hb);
}

int main(int argc, char **argv)
{
    struct comm *comm = comm_mpi_create(&argc, &argv);
    if (GLOBAL_BATCH % comm->world != 0) {
        if (comm->rank == 0)
            fprintf(stderr, "test_mpi_step: %d ranks do not divide the batch of %d\n", comm->world,
                    GLOBAL_BATCH);
        comm->destroy(comm);
        return 1;
    }
    struct backend *be = cpu_backend_create();
    int batch = GLOBAL_BATCH / comm->world;
    float dist[STEPS][2];
    struct trainer *t = train(be, comm, batch, comm->rank * batch, dist);
    int rc = 0;
    if (comm->rank == 0) {
        struct comm *alone = comm_single();
        float ref[STEPS][2];
        struct trainer *r = train(be, alone, GLOBAL_BATCH, 0, ref);
        printf("%d ranks against 1 rank, global batch %d, %d steps\n", comm->world, GLOBAL_BATCH,
               STEPS);
        for (int s = 0; s < STEPS; s++) {
            char label[64];
            snprintf(label, sizeof label, "step %d losses", s + 1);
            test_rel_l2(label, dist[s], ref[s], 2, TOL_LOSS);
        }
        compare_buffers("weights", t, r, t->w, r->w, 0);
        compare_buffers("ema", t, r, t->ema_w, r->ema_w, 0);
        compare_buffers("adam_m", t, r, t->adam_m, r->adam_m, 1);
        compare_buffers("adam_v", t, r, t->adam_v, r->adam_v, 1);
        trainer_destroy(r);
        alone->destroy(alone);
        rc = test_finish("test_mpi_step");
    }
    trainer_destroy(t);
    be->destroy(be);
    comm->destroy(comm);
    return rc;
}
