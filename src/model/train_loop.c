/* train_loop.c: see train_loop.h. */
#define _POSIX_C_SOURCE 200809L
#include "train_loop.h"
#include "dataset.h"
#include "kid_eval.h"
#include "rng.h"
#include "run_guard.h"
#include "run_log.h"
#include "train_loop_internal.h"
#include "trainer.h"
#include "trainer_state.h"
#include "util.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* With several ranks they agree on stopping every this many global steps (an all_ok, a
 * host all-reduce of one int; every step with one rank): the same step on every rank. */
enum { STOP_CHECK_STEPS = 8 };

void train_epoch_order(long *order, long n, int reps, uint64_t seed, int epoch)
{
    long total = n * reps;
    for (long i = 0; i < total; i++)
        order[i] = i % n;
    /* Fisher-Yates from the end, one Philox word per swap */
    for (long i = total - 1; i > 0; i--) {
        uint32_t r = rng_u32(seed, RNG_SHUFFLE, (uint32_t)epoch, (uint32_t)(i >> 32), (uint32_t)i);
        long j = (long)(r % (uint32_t)(i + 1));
        long tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

static void format_duration(char *out, size_t len, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(out, len, "?");
    else if (s < 60)
        snprintf(out, len, "%.0fs", s);
    else if (s < 3600)
        snprintf(out, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(out, len, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

/* Resident data: `order` (n entries) as int32 in backend memory, once per epoch and split;
 * load_batch then reads its indices there. Nothing to do when the data is not resident. */
static void upload_order(struct loop *L, const long *order, long n)
{
    if (!L->resident)
        return;
    for (long i = 0; i < n; i++)
        L->host_order[i] = (int32_t)order[i]; /* < count[split] <= INT32_MAX (setup) */
    L->be->upload(L->be, L->dev_order, L->host_order, (size_t)n * sizeof(int32_t));
}

/* This rank's share of global batch `b` of `order` into the trainer's images: gathered on
 * the backend from the resident split (order as uploaded by upload_order), or read from the
 * file and uploaded. */
static void load_batch(struct loop *L, enum dataset_split split, const long *order, long b)
{
    struct trainer *t = L->t;
    long first = b * t->global_batch + t->first_example;
    if (L->resident) {
        t->be->gather_images(t->be, t->images, L->dev_images[split], L->dev_order + first, NULL,
                             t->batch, t->per_image);
        return;
    }
    char err[512];
    const long *idx = order + first;
    /* fatal: the other ranks are about to wait for this one in a collective */
    if (dataset_read(&L->ds, split, idx, t->batch, L->host_images, err, sizeof err) != 0)
        DDIM_FATAL("%s", err);
    t->be->upload(t->be, t->images, L->host_images,
                  (size_t)t->batch * t->per_image * sizeof(float));
}

/* Keeps validation step k's losses, summed over ranks, in slot k of the loss history
 * (device side); a training step keeps its own (trainer_set_loss_history). */
static void record_losses(struct loop *L, long k)
{
    struct trainer *t = L->t;
    if (L->comm->world > 1)
        L->comm->allreduce_sum(L->comm, t->losses, 2);
    t->be->copy(t->be, L->loss_hist + 2 * k, t->losses, 2 * sizeof(float));
}

/* Host copy of history slots [from, to), as means over ranks (equal shares). Non-finite
 * losses are the divergence guard's to judge (run_epoch): the ranks read their histories
 * at different times, but every rank reads them all before the loop ends, so all judge
 * the same. */
static const float *read_losses(struct loop *L, long from, long to)
{
    size_t n = 2 * (size_t)(to - from);
    L->be->download(L->be, L->host_hist, L->loss_hist + 2 * from, n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        L->host_hist[i] /= (float)L->comm->world;
    return L->host_hist;
}

/* The example's test_step over the validation split (repeated like the training split),
 * with the EMA network; returns mean noise and image loss. */
static void validate(struct loop *L, int epoch, double out[2], int kid_on)
{
    long n = L->ds.count[SPLIT_VALIDATION];
    int reps = L->cfg->dataset_repetitions;
    long *order = util_xmalloc((size_t)(n * reps) * sizeof(long));
    train_epoch_order(order, n, reps, L->cfg->diffusion.seed ^ 0x5A5Aull, epoch);
    upload_order(L, order, n * reps);
    double sum[2] = {0, 0};
    for (long b = 0; b < L->val_steps; b++) {
        load_batch(L, SPLIT_VALIDATION, order, b);
        if (kid_on) /* the example's KID of each validation batch against generated images */
            kid_eval_batch(L->kid, epoch, b);
        trainer_draw(L->t, (uint32_t)(epoch * L->val_steps + b), 1);
        trainer_eval_losses(L->t);
        record_losses(L, b);
    }
    const float *losses = L->val_steps ? read_losses(L, 0, L->val_steps) : NULL;
    for (long b = 0; b < L->val_steps; b++) {
        sum[0] += losses[2 * b];
        sum[1] += losses[2 * b + 1];
    }
    free(order);
    out[0] = L->val_steps ? sum[0] / L->val_steps : NAN;
    out[1] = L->val_steps ? sum[1] / L->val_steps : NAN;
}

/* Rank 0: the epoch's sample grid, from the same initial noise every epoch so that grids
 * can be compared. */
static void write_samples(struct loop *L, int epoch)
{
    const struct run_config *cfg = L->cfg;
    struct trainer *t = L->t;
    struct backend *be = L->be;
    int n = cfg->plot_rows * cfg->plot_cols;
    size_t count = (size_t)n * t->per_image;
    float *noise = be->alloc(be, count * sizeof(float));
    float *images = be->alloc(be, count * sizeof(float));
    be->fill_normal(be, noise, n, t->per_image, cfg->diffusion.seed, 0, RNG_SAMPLE_NOISE, 0, NULL);
    trainer_sample(t, noise, n, cfg->plot_diffusion_steps, NULL, images);
    float *host = util_xmalloc(count * sizeof(float));
    be->download(be, host, images, count * sizeof(float));
    char err[512];
    if (run_log_grid(&L->log, epoch, L->global_step, host, cfg->plot_rows, cfg->plot_cols,
                     cfg->model.image_size, err, sizeof err) != 0)
        fprintf(stderr, "ddim-dist: warning: %s\n", err);
    free(host);
    be->free(be, noise);
    be->free(be, images);
}

/* data.resident: reads both splits whole and uploads them once as uint8, and makes room for
 * the longer of the two orders as int32. */
static int setup_resident(struct loop *L, char *err, size_t errlen)
{
    struct backend *be = L->be;
    size_t per = L->t->per_image;
    long longest = 0;
    for (int split = 0; split < 2; split++) {
        long count = L->ds.count[split];
        if (count > INT32_MAX)
            return util_error(err, errlen,
                              "%s: the %s split holds %ld images, more than data.resident's int32 "
                              "indices reach (%d): set data.resident=off",
                              L->cfg->data_path, split == SPLIT_TRAIN ? "training" : "validation",
                              count, INT32_MAX);
        size_t bytes = (size_t)count * per;
        uint8_t *host = util_xmalloc(bytes ? bytes : 1);
        if (dataset_read_all(&L->ds, (enum dataset_split)split, host, err, errlen) != 0) {
            free(host);
            return -1;
        }
        L->dev_images[split] = be->alloc(be, bytes);
        be->upload(be, L->dev_images[split], host, bytes);
        free(host);
        L->resident_bytes += bytes;
        if (count * L->cfg->dataset_repetitions > longest)
            longest = count * L->cfg->dataset_repetitions;
    }
    L->dev_order = be->alloc(be, (size_t)longest * sizeof(int32_t));
    L->host_order = util_xmalloc((size_t)longest * sizeof(int32_t));
    L->resident_bytes += (size_t)longest * sizeof(int32_t);
    return 0;
}

/* The dataset opened and checked against the configuration, and the steps planned: per
 * epoch, of validation, in all. */
static int open_data(struct loop *L, char *err, size_t errlen)
{
    const struct run_config *cfg = L->cfg;
    const struct comm *comm = L->comm;
    if (dataset_open(&L->ds, cfg->data_path, err, errlen) != 0)
        return -1;
    if (L->ds.image_size != cfg->model.image_size)
        return util_error(err, errlen,
                          "%s holds %dx%d images but model.image_size is %d: set "
                          "model.image_size=%d or prepare the data with ddim-prep --size %d",
                          cfg->data_path, L->ds.image_size, L->ds.image_size, cfg->model.image_size,
                          L->ds.image_size, cfg->model.image_size);
    int B = cfg->batch_size;
    if (B % comm->world != 0)
        return util_error(err, errlen,
                          "train.batch_size %d does not divide among %d ranks: use a multiple "
                          "of %d",
                          B, comm->world, comm->world);
    long n_train = L->ds.count[SPLIT_TRAIN] * cfg->dataset_repetitions;
    L->steps_per_epoch = n_train / B;
    L->val_steps = L->ds.count[SPLIT_VALIDATION] * cfg->dataset_repetitions / B;
    if (L->steps_per_epoch < 1)
        return util_error(err, errlen,
                          "%s has %ld training images x %d repetitions, fewer than one batch of "
                          "%d",
                          cfg->data_path, L->ds.count[SPLIT_TRAIN], cfg->dataset_repetitions, B);
    L->total_steps = L->steps_per_epoch * cfg->num_epochs;
    if (cfg->max_steps > 0 && cfg->max_steps < L->total_steps)
        L->total_steps = cfg->max_steps;
    return 0;
}

static int setup(struct loop *L, char *err, size_t errlen)
{
    const struct run_config *cfg = L->cfg;
    struct comm *comm = L->comm;
    if (open_data(L, err, errlen) != 0)
        return -1;
    int B = cfg->batch_size;
    long n_train = L->ds.count[SPLIT_TRAIN] * cfg->dataset_repetitions;
    int b = B / comm->world;
    L->t = trainer_create(L->be, comm, &cfg->model, &cfg->diffusion, b, B, comm->rank * b, err,
                          errlen);
    if (!L->t)
        return -1;
    trainer_init_weights(L->t);
    trainer_set_buckets(L->t, cfg->allreduce_bucket_mib);
    if (!trainer_set_graph(L->t, strcmp(cfg->cuda_graph, "off") != 0) &&
        !strcmp(cfg->cuda_graph, "on"))
        util_log("ddim: run.cuda_graph is on, but the %s backend with %d rank(s) has no CUDA "
                 "graph of the step (the CUDA backend has, with NCCL for several ranks): op by "
                 "op\n",
                 L->be->name, comm->world);
    /* rank 0's normalizer statistics (from the dataset's attributes) for every rank */
    float stats[6];
    for (int c = 0; c < 3; c++) {
        stats[c] = (float)L->ds.mean[c];
        stats[3 + c] = (float)L->ds.variance[c];
    }
    L->t->be->upload(L->t->be, L->t->norm, stats, sizeof stats);
    comm->broadcast(comm, L->t->norm, sizeof stats);
    L->resident = !strcmp(cfg->resident, "on") ||
                  (!strcmp(cfg->resident, "auto") && !strcmp(L->be->name, "cuda"));
    if (L->resident && setup_resident(L, err, errlen) != 0)
        return -1;
    L->last_kid = NAN;
    if (kid_eval_create(&L->kid, cfg, L->t, err, errlen) != 0)
        return -1;
    if (!L->resident)
        L->host_images = util_xmalloc((size_t)b * L->t->per_image * sizeof(float));
    L->order = util_xmalloc((size_t)n_train * sizeof(long));
    long slots = L->steps_per_epoch > L->val_steps ? L->steps_per_epoch : L->val_steps;
    L->loss_hist = L->be->alloc(L->be, 2 * (size_t)slots * sizeof(float));
    trainer_set_loss_history(L->t, L->loss_hist);
    if (L->resident) /* each step gathers its images itself, from the counters */
        trainer_set_data(L->t, L->dev_images[SPLIT_TRAIN], L->dev_order);
    L->host_hist = util_xmalloc(2 * (size_t)slots * sizeof(float));
    if (L->val_steps == 0)
        util_log("ddim-dist: note: the validation split (%ld images x %d repetitions) is "
                 "smaller than one batch of %d: no validation losses (n/a; null in "
                 "metrics.jsonl)\n",
                 L->ds.count[SPLIT_VALIDATION], cfg->dataset_repetitions, B);
    if (comm->rank != 0)
        return 0;
    /* before anything under run.dir is read or written: one job per run directory */
    if (run_lock_take(&L->lock, cfg->run_dir, err, errlen) != 0)
        return -1;
    size_t len = 0;
    FILE *yaml = open_memstream(&L->config_yaml, &len);
    if (yaml) {
        config_write_yaml(cfg, yaml);
        fclose(yaml);
    }
    struct train_resume *r = &L->resume;
    if (train_resume_read(r, cfg, L->t, L->steps_per_epoch, err, errlen) != 0)
        return -1;
    if (r->resuming)
        kid_eval_read_best(L->kid, cfg->run_dir);
    if (run_log_open(&L->log, cfg, r->resuming ? r->at.global_step : -1, err, errlen) != 0)
        return -1;
    if (r->config_change[0])
        run_log_line(&L->log, r->config_change);
    return 0;
}

/* Epoch `epoch` from its step `first` (> 0 when resuming inside it). */
/* The steps logged..done of this epoch read back (the only wait for the device), added to
 * the epoch's sums, fed to the divergence guard and logged; then the progress line. */
static void report_progress(struct loop *L, int epoch, long b, long logged, long done,
                            double sum[2], double last_print, double t_start)
{
    const struct trainer *t = L->t;
    const float *losses = read_losses(L, logged, done);
    double window_rate = t->global_batch * (done - logged) / (util_now() - last_print);
    for (long k = logged; k < done; k++) {
        const float *l = losses + 2 * (k - logged);
        sum[0] += l[0];
        sum[1] += l[1];
        long step = L->global_step - done + k + 1;
        run_guard_divergence_feed(&L->div, step, l[0], l[1]);
        if (L->comm->rank == 0)
            run_log_step(&L->log, epoch + 1, step, l[0], l[1], window_rate);
    }
    double rate = (L->global_step - L->start_step) / (util_now() - t_start);
    char eta[32];
    format_duration(eta, sizeof eta, (L->total_steps - L->global_step) / rate);
    util_log("epoch %d/%d  step %ld/%ld  n_loss %.4f  i_loss %.4f  %.1f img/s  ETA %s\n", epoch + 1,
             L->cfg->num_epochs, b + 1, L->steps_per_epoch, sum[0] / done, sum[1] / done,
             rate * t->global_batch, eta);
}

/* Rank 0, at an epoch's end: sample grid, metrics line and the epoch's summary. */
static void report_epoch(struct loop *L, int epoch, const double sum[2], long done,
                         const double val[2], int kid_on, double kid_seconds, double epoch_start)
{
    write_samples(L, epoch + 1);
    run_log_epoch(&L->log, epoch + 1, L->global_step, sum[0] / done, sum[1] / done, val[0], val[1],
                  L->last_kid, util_now() - epoch_start);
    char vn[32] = "n/a", vi[32] = "n/a"; /* n/a: the validation split holds no batch */
    if (L->val_steps > 0) {
        snprintf(vn, sizeof vn, "%.4f", val[0]);
        snprintf(vi, sizeof vi, "%.4f", val[1]);
    }
    char kid[48] = "";
    if (kid_on)
        snprintf(kid, sizeof kid, "  val_kid %.4f (%.1fs)", L->last_kid, kid_seconds);
    util_log("epoch %d/%d done in %.1fs: n_loss %.4f  i_loss %.4f  val_n_loss %s  "
             "val_i_loss %s%s\n",
             epoch + 1, L->cfg->num_epochs, util_now() - epoch_start, sum[0] / done, sum[1] / done,
             vn, vi, kid);
}

static int run_epoch(struct loop *L, int epoch, long first, double *t_start)
{
    const struct run_config *cfg = L->cfg;
    struct trainer *t = L->t;
    double epoch_start = util_now(), last_print = epoch_start;
    double sum[2] = {0, 0};
    long done = 0, logged = 0; /* steps run this epoch; steps read back and logged */
    train_epoch_order(L->order, L->ds.count[SPLIT_TRAIN], cfg->dataset_repetitions,
                      cfg->diffusion.seed, epoch);
    upload_order(L, L->order, L->ds.count[SPLIT_TRAIN] * cfg->dataset_repetitions);
    /* the step's counters: its random streams, its place in the order, its loss slot */
    trainer_set_position(t, (uint32_t)L->global_step, first * t->global_batch + t->first_example,
                         0);
    for (long b = first; b < L->steps_per_epoch && L->global_step < L->total_steps; b++) {
        if (!L->resident) /* resident: the step gathers them itself */
            load_batch(L, SPLIT_TRAIN, L->order, b);
        trainer_train_step(t);
        L->global_step++;
        done++;
        double now = util_now();
        /* a stop request (a signal, or a diverged loss seen here), agreed by all ranks at
         * the same step */
        int want = run_guard_stop_signal() != 0 || L->div.step != 0;
        int stop = (L->comm->world == 1 || L->global_step % STOP_CHECK_STEPS == 0) &&
                   !L->comm->all_ok(L->comm, !want);
        if (stop || now - last_print >= cfg->progress_seconds || L->global_step == L->total_steps ||
            b == L->steps_per_epoch - 1) {
            report_progress(L, epoch, b, logged, done, sum, last_print, *t_start);
            logged = done;
            last_print = util_now();
        }
        if (stop || (L->comm->world == 1 && L->div.step != 0)) {
            L->stopped = 1;
            break;
        }
    }
    /* every rank has read every loss by now (a stop, the epoch's end and the last step all
     * print), so all agree whether the run diverged */
    if (L->div.step != 0 || (L->stopped && L->global_step % L->steps_per_epoch != 0))
        return 0; /* the epoch goes on when the run is resumed */
    double val[2], kid_seconds = 0;
    int kid_on = kid_eval_due(L->kid, epoch);
    validate(L, epoch, val, kid_on);
    L->last_kid = kid_on ? kid_eval_result(L->kid, &kid_seconds) : NAN;
    if (L->val_steps > 0 && !(isfinite(val[0]) && isfinite(val[1]))) {
        L->div.step = L->global_step;
        snprintf(L->div.why, sizeof L->div.why, "the validation losses of epoch %d became %g, %g",
                 epoch + 1, val[0], val[1]);
        return 0;
    }
    if (L->comm->rank == 0)
        report_epoch(L, epoch, sum, done, val, kid_on, kid_seconds, epoch_start);
    return 0;
}

/* How the run ended, in the log, in metrics.jsonl and in the exit status (returned). */
static int report_end(struct loop *L, double t_start)
{
    const struct run_config *cfg = L->cfg;
    struct comm *comm = L->comm;
    char disk[CONFIG_PATH_MAX + 128], line[2048];
    run_guard_ckpt_describe(&L->resume.ckpt, L->resume.ckpt_path, disk, sizeof disk);
    int failed = comm->rank == 0 && L->resume.ckpt.failures > 0; /* the last checkpoint failed */
    if (L->div.step != 0) {
        if (comm->rank == 0)
            run_guard_divergence_report(&L->div, disk, &L->log);
        return 1;
    }
    if (L->stopped) {
        int sig = run_guard_stop_signal();
        snprintf(line, sizeof line,
                 "{\"type\":\"stop\",\"reason\":\"signal\",\"signal\":\"%s\",\"step\":%ld,"
                 "\"checkpoint\":%s}",
                 run_guard_signal_name(sig), L->global_step, failed ? "false" : "true");
        if (comm->rank == 0)
            run_log_line(&L->log, line);
        if (failed) {
            fprintf(stderr,
                    "ddim-dist: error: stopped by %s at step %ld, but its checkpoint could not "
                    "be written: %s; %s\n",
                    run_guard_signal_name(sig), L->global_step, L->resume.ckpt.error, disk);
            return 1;
        }
        util_log("ddim-dist: stopped by signal at step %ld; checkpoint written; start again "
                 "with the same run.dir to resume (%s)\n",
                 L->global_step, run_guard_signal_name(sig));
        return 0;
    }
    if (failed) {
        fprintf(stderr,
                "ddim-dist: error: finished %ld steps, but the last checkpoint (step %ld) could "
                "not be written: %s; %s\n",
                L->global_step - L->start_step, L->global_step, L->resume.ckpt.error, disk);
        return 1;
    }
    double total = util_now() - t_start;
    util_log("ddim-dist: finished %ld steps in %.1fs; outputs in %s\n",
             L->global_step - L->start_step, total, cfg->run_dir);
    if (comm->world > 1 && comm->seconds > 0)
        util_log("ddim-dist: rank 0 spent %.2fs (%.1f%%) in %ld collective calls\n", comm->seconds,
                 100.0 * comm->seconds / total, comm->calls);
    else if (comm->world > 1) /* NCCL collectives are asynchronous: not timed here */
        util_log("ddim-dist: %ld collective calls (asynchronous; ddim-bench times the "
                 "gradient all-reduce)\n",
                 comm->calls);
    return 0;
}

int train_loop_run(const struct run_config *cfg, struct backend *be, struct comm *comm)
{
    struct loop L;
    memset(&L, 0, sizeof L);
    L.cfg = cfg;
    L.be = be;
    L.comm = comm;
    L.lock.fd = -1;
    train_resume_init(&L.resume, cfg);
    run_guard_divergence_init(&L.div, cfg->divergence_factor);
    char err[2048];
    int rc = 0;
    /* SIGUSR1 (Slurm's warning before the time limit), SIGTERM, SIGINT and SIGHUP: stop at
     * the next agreed step, write the checkpoint, exit 0 (run_guard.h) */
    run_guard_signals_install();
    int ok = setup(&L, err, sizeof err) == 0;
    if (!ok)
        fprintf(stderr, "ddim-dist: error (rank %d): %s\n", comm->rank, err);
    if (!comm->all_ok(comm, ok)) {
        if (ok)
            fprintf(stderr,
                    "ddim-dist: rank %d: stopping: another rank could not start (see its "
                    "error above)\n",
                    comm->rank);
        rc = 1;
    } else {
        L.global_step = L.start_step = train_resume_share(&L.resume, L.t);
        char where[128];
        if (L.resident)
            snprintf(where, sizeof where, "resident in backend memory (%.1f MiB per rank)",
                     L.resident_bytes / 1048576.0);
        else
            snprintf(where, sizeof where, "read from the file each step");
        util_log("ddim-dist: %ld training and %ld validation images (%d repetitions), "
                 "%ld steps per epoch, %ld steps in all, %d rank(s), %s backend, images %s\n",
                 L.ds.count[SPLIT_TRAIN], L.ds.count[SPLIT_VALIDATION], cfg->dataset_repetitions,
                 L.steps_per_epoch, L.total_steps, comm->world, be->name, where);
        double t_start = util_now();
        if (L.global_step >= L.total_steps)
            util_log("ddim-dist: nothing to do: the checkpoint is at step %ld, where this run "
                     "ends (raise train.num_epochs or train.max_steps to go on)\n",
                     L.global_step);
        /* a checkpoint after every epoch, and wherever the loop ends (max_steps, a signal),
         * never after a divergence. One that cannot be written leaves the last good one, and
         * the run goes on (rank 0 cannot stop alone); if the last one failed, the run
         * fails. */
        for (int e = (int)(L.global_step / L.steps_per_epoch);
             e < cfg->num_epochs && L.global_step < L.total_steps && !L.stopped && !L.div.step;
             e++) {
            long first = e == L.resume.at.epoch ? L.resume.at.step_in_epoch : 0;
            run_epoch(&L, e, first, &t_start);
            if (comm->rank == 0 && L.div.step == 0) {
                train_resume_save(&L.resume, L.t, L.global_step, L.steps_per_epoch, L.config_yaml,
                                  &L.log);
                long spe = L.steps_per_epoch;
                kid_eval_save_best(L.kid, L.last_kid, cfg->run_dir, L.t, (int)(L.global_step / spe),
                                   L.global_step, L.global_step % spe, L.config_yaml);
            }
        }
        rc = report_end(&L, t_start);
    }
    if (comm->rank == 0 && run_log_close(&L.log) != 0)
        rc = 1;
    kid_eval_destroy(L.kid);
    run_lock_release(&L.lock);
    trainer_destroy(L.t);
    free(L.host_images);
    free(L.host_hist);
    if (L.loss_hist)
        be->free(be, L.loss_hist);
    for (int split = 0; split < 2; split++)
        if (L.dev_images[split])
            be->free(be, L.dev_images[split]);
    if (L.dev_order)
        be->free(be, L.dev_order);
    free(L.host_order);
    free(L.order);
    dataset_close(&L.ds);
    free(L.config_yaml);
    return rc;
}
