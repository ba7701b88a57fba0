/* kid_eval.c: the validation KID during training (kid_eval.h). */
#include "kid_eval.h"
#include "h5_util.h"
#include "inception.h"
#include "kid.h"
#include "trainer_state.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct kid_eval {
    struct trainer *t;
    struct kid_encoder *enc;
    int every, steps;
    uint64_t seed;
    float *noise, *generated; /* (batch, S, S, 3) backend memory */
    float *gathered;          /* (2, global_batch, 2048) backend memory */
    float *host_local;        /* (2, batch, 2048) */
    float *host_all;          /* (2, global_batch, 2048) */
    double sum, seconds;
    long count;
    double best; /* the KID of best.h5; +inf before the first */
};

int kid_eval_create(struct kid_eval **out, const struct run_config *cfg, struct trainer *t,
                    char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->kid_every == 0)
        return 0;
    if (!cfg->inception_weights[0]) {
        if (t->comm->rank == 0)
            util_log("ddim-dist: warning: KID is off: eval.inception_weights is not set (Keras's "
                     "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5, see "
                     "docs/kid.md; eval.kid_every: 0 silences this)\n");
        return 0;
    }
    if (t->global_batch < 2)
        return util_error(err, errlen, "KID needs train.batch_size >= 2, got %d", t->global_batch);
    struct kid_eval *k = util_xcalloc(1, sizeof *k);
    char why[1024];
    k->enc = kid_encoder_create(t->be, cfg->inception_weights, cfg->model.image_size,
                                cfg->kid_image_size, t->batch, why, sizeof why);
    if (!k->enc) {
        free(k);
        return util_error(err, errlen, "eval.inception_weights: %s", why);
    }
    struct backend *be = t->be;
    k->t = t;
    k->best = INFINITY;
    k->every = cfg->kid_every;
    k->steps = cfg->kid_diffusion_steps;
    k->seed = cfg->diffusion.seed;
    size_t images = (size_t)t->batch * t->per_image;
    k->noise = be->alloc(be, images * sizeof(float));
    k->generated = be->alloc(be, images * sizeof(float));
    k->gathered = be->alloc(be, 2 * (size_t)t->global_batch * INCEPTION_FEATURES * sizeof(float));
    k->host_local = util_xcalloc(2 * (size_t)t->batch * INCEPTION_FEATURES, sizeof(float));
    k->host_all = util_xcalloc(2 * (size_t)t->global_batch * INCEPTION_FEATURES, sizeof(float));
    *out = k;
    return 0;
}

void kid_eval_destroy(struct kid_eval *k)
{
    if (!k)
        return;
    struct backend *be = k->t->be;
    be->free(be, k->noise);
    be->free(be, k->generated);
    be->free(be, k->gathered);
    free(k->host_local);
    free(k->host_all);
    kid_encoder_destroy(k->enc);
    free(k);
}

int kid_eval_due(const struct kid_eval *k, int epoch)
{
    return k && (epoch + 1) % k->every == 0;
}

void kid_eval_batch(struct kid_eval *k, int epoch, long batch)
{
    struct trainer *t = k->t;
    struct backend *be = t->be;
    size_t nf = (size_t)INCEPTION_FEATURES, G = (size_t)t->global_batch;
    double start = util_now();
    /* the generated share: noise keyed by the global image index of this epoch's batch */
    be->fill_normal(be, k->noise, t->batch, t->per_image, k->seed, (uint32_t)epoch, RNG_KID_NOISE,
                    (uint32_t)(batch * t->global_batch + t->first_example), NULL);
    trainer_sample(t, k->noise, t->batch, k->steps, NULL, k->generated);
    kid_encode(k->enc, t->images, t->batch, k->host_local);
    kid_encode(k->enc, k->generated, t->batch, k->host_local + (size_t)t->batch * nf);
    /* gather: each rank writes its rows into zeros, one sum over ranks */
    be->fill(be, k->gathered, 0.0f, 2 * G * nf);
    for (int s = 0; s < 2; s++)
        be->upload(be, k->gathered + (s * G + (size_t)t->first_example) * nf,
                   k->host_local + (size_t)s * t->batch * nf,
                   (size_t)t->batch * nf * sizeof(float));
    if (t->comm->world > 1)
        t->comm->allreduce_sum(t->comm, k->gathered, 2 * G * nf);
    be->download(be, k->host_all, k->gathered, 2 * G * nf * sizeof(float));
    double sums[3];
    kid_kernel_sums(k->host_all, k->host_all + G * nf, (int)G, (int)nf, sums);
    k->sum += kid_from_sums(sums, (int)G);
    k->count++;
    k->seconds += util_now() - start;
}

double kid_eval_result(struct kid_eval *k, double *seconds)
{
    double r = k && k->count ? k->sum / k->count : NAN;
    if (seconds)
        *seconds = k ? k->seconds : 0.0;
    if (k) {
        k->sum = 0;
        k->count = 0;
        k->seconds = 0;
    }
    return r;
}

void kid_eval_save_best(struct kid_eval *k, double kid, const char *run_dir,
                        const struct trainer *t, int epoch_done, long global_step,
                        long step_in_epoch, const char *config_yaml)
{
    if (!k || !(kid < k->best))
        return;
    char path[CONFIG_PATH_MAX + 32], err[1536];
    snprintf(path, sizeof path, "%s/best.h5", run_dir);
    struct checkpoint_info pos = {epoch_done, global_step, step_in_epoch};
    if (trainer_checkpoint_write(t, path, &pos, config_yaml, err, sizeof err) != 0) {
        fprintf(stderr, "ddim-dist: warning: best.h5 not written: %s\n", err);
        return;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t a =
        f >= 0 ? H5Acreate2(f, "val_kid", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int ok = a >= 0 && H5Awrite(a, H5T_NATIVE_DOUBLE, &kid) >= 0;
    if (a >= 0)
        H5Aclose(a);
    H5_CHECK(H5Sclose(space));
    if (f >= 0)
        H5Fclose(f);
    if (!ok)
        fprintf(stderr, "ddim-dist: warning: cannot store val_kid in %s\n", path);
    k->best = kid;
    util_log("ddim-dist: best.h5: val_kid %.4f at step %ld\n", kid, global_step);
}

void kid_eval_read_best(struct kid_eval *k, const char *run_dir)
{
    if (!k)
        return;
    char path[CONFIG_PATH_MAX + 32], err[512];
    snprintf(path, sizeof path, "%s/best.h5", run_dir);
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return; /* no best model yet */
    fclose(probe);
    hid_t f = h5u_open_read(path, err, sizeof err);
    double v = INFINITY;
    size_t n = 1;
    if (f >= 0 && h5u_read_attr_doubles(f, path, "/", "val_kid", &v, &n, err, sizeof err) == 0)
        k->best = v;
    if (f >= 0)
        H5Fclose(f);
}
