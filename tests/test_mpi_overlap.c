/* test_mpi_overlap.c: the gradient all-reduce hidden behind the backward pass gives the
 * same training, bit for bit (label mpi).
 *
 * Run under mpirun with N ranks (2, 3, 4): the ranks train a small U-Net together three
 * times from the same start: with the gradient in buckets of 2 KiB, each all-reduced as
 * soon as the backward pass has written it (run.allreduce_bucket_mib, grad_buckets.h, MPI's
 * non-blocking rank-order sum in comm_mpi_grad.c), with one bucket after the backward pass,
 * and with the blocking MPI_Allreduce the trainer used before. Buckets and one piece must
 * agree bit for bit on every rank (weights, EMA, Adam moments, losses) for any N; with 2
 * ranks they must also agree with MPI_Allreduce (a + b either way); with more, MPI's own
 * order of addition may differ, which is printed. The buckets must have been started while
 * the backward pass ran, not all at its end. */
#include "comm.h"
#include "config.h"
#include "grad_buckets.h"
#include "test_util.h"
#include "trainer.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GLOBAL_BATCH = 12, STEPS = 4 };

/* The real transport, counting its starts and how many came before each finish. */
static struct comm *real;
static long starts, started_before_finish;

static void spy_start(struct comm *c, float *buf, size_t n)
{
    starts++;
    real->allreduce_start(c, buf, n);
}

static void spy_finish(struct comm *c)
{
    started_before_finish += starts;
    starts = 0;
    real->allreduce_finish(c);
}

static struct trainer *train(struct backend *be, struct comm *comm, double mib)
{
    struct unet_config u = config_default_model(); /* 8x8, widths 4,8, depth 2 */
    u.image_size = 8, u.num_levels = 2, u.widths[0] = 4, u.widths[1] = 8, u.embedding_dims = 8;
    struct diffusion_config dc = config_default_diffusion();
    dc.seed = 11;
    int batch = GLOBAL_BATCH / comm->world;
    char err[512];
    struct trainer *t =
        trainer_create(be, comm, &u, &dc, batch, GLOBAL_BATCH, comm->rank * batch, err, sizeof err);
    if (!t)
        DDIM_FATAL("trainer_create: %s", err);
    trainer_init_weights(t);
    trainer_set_buckets(t, mib);
    const float mean[3] = {0.5f, 0.45f, 0.4f}, var[3] = {0.08f, 0.07f, 0.09f};
    trainer_set_normalizer(t, mean, var);
    be->fill_uniform(be, t->images, t->batch, t->per_image, 5, 0, RNG_SHUFFLE,
                     (uint32_t)t->first_example, NULL);
    for (int s = 0; s < STEPS; s++)
        trainer_train_step(t);
    return t;
}

/* Every buffer of the training state: the same bits (1), or not (0, with the largest
 * relative difference printed when `quiet` is 0). */
static int same_state(const char *what, struct trainer *a, struct trainer *b, int expect)
{
    const struct param_table *pt = unet_params(a->net);
    const float *pa[] = {a->w, a->ema_w, a->adam_m, a->adam_v, a->losses};
    const float *pb[] = {b->w, b->ema_w, b->adam_m, b->adam_v, b->losses};
    size_t n[] = {pt->total, pt->total, pt->trainable, pt->trainable, 2};
    const char *names[] = {"weights", "EMA weights", "Adam m", "Adam v", "losses"};
    int same = 1;
    for (int i = 0; i < 5; i++) {
        int differ = memcmp(pa[i], pb[i], n[i] * sizeof(float)) != 0; /* CPU: host memory */
        same &= !differ;
        double worst = 0;
        for (size_t k = 0; k < n[i]; k++)
            worst = fmax(worst, fabs((double)pa[i][k] - pb[i][k]) / fmax(fabs(pb[i][k]), 1e-6));
        if (differ && expect)
            test_fail("rank %d, %s: %s differ (largest relative difference %.3g)", a->comm->rank,
                      what, names[i], worst);
        else if (differ && a->comm->rank == 0)
            printf("note %s: %s differ by up to %.3g relative (MPI's order of addition)\n", what,
                   names[i], worst);
    }
    if (same && a->comm->rank == 0)
        printf("ok   %s: the same bits\n", what);
    return same;
}

int main(int argc, char **argv)
{
    real = comm_mpi_create(&argc, &argv);
    if (GLOBAL_BATCH % real->world != 0 || real->world < 2) {
        if (real->rank == 0)
            fprintf(stderr, "test_mpi_overlap: needs 2, 3, 4, 6 or 12 ranks (got %d)\n",
                    real->world);
        real->destroy(real);
        return 1;
    }
    struct backend *be = cpu_backend_create();
    struct comm spy = *real;
    spy.allreduce_start = spy_start;
    spy.allreduce_finish = spy_finish;
    struct trainer *buckets = train(be, &spy, 2.0 / 1024);
    if (grad_buckets_count(buckets->buckets) < 4)
        test_fail("2 KiB buckets: only %d bucket(s)", grad_buckets_count(buckets->buckets));
    /* all but the first bucket the backward pass fills could wait: at least one more
     * must have been started before the finish, by the listener */
    if (started_before_finish < (long)STEPS * 2)
        test_fail("buckets started during the backward pass: %ld in %d steps (want >= 2 a step)",
                  started_before_finish, STEPS);
    struct trainer *whole = train(be, real, 0);
    struct comm blocking = *real; /* no non-blocking all-reduce: MPI_Allreduce */
    blocking.allreduce_start = NULL;
    blocking.allreduce_finish = NULL;
    struct trainer *before = train(be, &blocking, 1);
    if (before->buckets)
        test_fail("a communicator without allreduce_start still got buckets");
    same_state("buckets vs one piece", buckets, whole, 1);
    same_state("buckets vs MPI_Allreduce", buckets, before, real->world == 2);
    int ok = real->all_ok(real, test_failures() == 0);
    int rc = real->rank == 0 ? test_finish("test_mpi_overlap") : !ok;
    trainer_destroy(buckets);
    trainer_destroy(whole);
    trainer_destroy(before);
    be->destroy(be);
    real->destroy(real);
    return ok ? rc : 1;
}
