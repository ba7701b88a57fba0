/* test_checkpoint.c: checkpoints and resuming (test layer 4). A tiny run of 3 epochs goes
 * once uninterrupted and once stopped twice by train.max_steps inside epochs (steps 11 and
 * 17 of 8-step epochs) and resumed: the final checkpoints' weights, EMA weights, Adam
 * moments and step counts must be bit-identical, and the resumed run's metrics log must
 * hold every step once. Then the faults: a truncated checkpoint and one written for another
 * model shape give errors naming the file (and the attribute), train.resume=never refuses
 * an existing checkpoint, and none of these touches the checkpoint.
 *
 * usage: test_checkpoint PATH/TO/ddim-prep */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"
#include "config.h"
#include "h5_util.h"
#include "test_run_util.h"
#include "test_util.h"
#include "train_loop.h"
#include "unet.h"
#include "weights_h5.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct backend *be;
static struct comm *comm;

static double attr(const char *path, const char *name)
{
    char err[512];
    double v = -1;
    size_t n = 1;
    hid_t f = h5u_open_read(path, err, sizeof err);
    if (f < 0 || h5u_read_attr_doubles(f, path, "/", name, &v, &n, err, sizeof err) != 0)
        test_fail("%s", err);
    if (f >= 0)
        H5Fclose(f);
    return v;
}

/* The two checkpoints' weights, EMA weights and Adam moments must be bit-identical. */
static void compare_checkpoints(const char *a, const char *b, const struct unet_config *model)
{
    char err[512];
    struct unet *net = unet_create(model, err, sizeof err);
    const struct param_table *p = unet_params(net);
    static const char *groups[] = {"/weights", "/ema_weights", "/optimizer/m", "/optimizer/v"};
    float *va = malloc(p->total * sizeof(float)), *vb = malloc(p->total * sizeof(float));
    hid_t fa = h5u_open_read(a, err, sizeof err), fb = h5u_open_read(b, err, sizeof err);
    for (int g = 0; g < 4 && fa >= 0 && fb >= 0; g++) {
        int trainable_only = g >= 2;
        size_t n = trainable_only ? p->trainable : p->total;
        if (weights_read_h5(fa, a, groups[g], p, va, trainable_only, err, sizeof err) != 0 ||
            weights_read_h5(fb, b, groups[g], p, vb, trainable_only, err, sizeof err) != 0) {
            test_fail("%s", err);
            continue;
        }
        size_t diff = 0;
        while (diff < n && memcmp(&va[diff], &vb[diff], sizeof(float)) == 0)
            diff++;
        if (diff < n)
            test_fail("%s: element %zu differs: %.9g uninterrupted, %.9g resumed", groups[g], diff,
                      va[diff], vb[diff]);
        else
            printf("ok   %s: %zu values bit-identical\n", groups[g], n);
    }
    if (fa < 0 || fb < 0)
        test_fail("%s", err);
    if (fa >= 0)
        H5Fclose(fa);
    if (fb >= 0)
        H5Fclose(fb);
    const char *names[] = {"optimizer_step", "global_step", "epoch", "step_in_epoch"};
    for (int i = 0; i < 4; i++)
        if (attr(a, names[i]) != attr(b, names[i]))
            test_fail("attribute %s: %g uninterrupted, %g resumed", names[i], attr(a, names[i]),
                      attr(b, names[i]));
    free(va);
    free(vb);
    unet_destroy(net);
}

static int count_lines(const char *path, const char *type)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, type) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* (c) and (d): runs on a copy of a good checkpoint that must refuse and leave it alone. */
static void check_refusals(const struct run_config *good, const char *ckpt, const char *dir)
{
    char path[CONFIG_PATH_MAX + 64], log[CONFIG_PATH_MAX + 64], out[16384], cmd[4096];
    long size;
    snprintf(log, sizeof log, "%s/stderr.txt", dir);

    /* another model shape */
    struct run_config other = *good;
    other.model.widths[1] = 24;
    if (test_run_captured(be, comm, &other, log, out, sizeof out) == 0)
        test_fail("a run with model.widths [8,24] started from a checkpoint for [8,16]");
    else if (!strstr(out, ckpt) || !strstr(out, "model.widths [8,16], the config has [8,24]") ||
             !strstr(out, "'widths'"))
        test_fail("other shape: the message does not name the file, the key and both values");
    else
        printf("ok   another model shape refused\n");

    /* train.resume=never */
    struct run_config never = *good;
    never.resume = RESUME_NEVER;
    char *bytes = test_slurp(ckpt, &size);
    if (test_run_captured(be, comm, &never, log, out, sizeof out) == 0)
        test_fail("train.resume=never started although %s exists", ckpt);
    else if (!strstr(out, ckpt) || !strstr(out, "train.resume is never") ||
             !strstr(out, "another run.dir"))
        test_fail("train.resume=never: unclear message");
    else
        printf("ok   train.resume=never refused\n");
    test_check_untouched(ckpt, bytes, size, "other shape and resume=never");
    free(bytes);

    /* a truncated checkpoint (a copy in another run directory) */
    struct run_config cut = *good;
    snprintf(cut.run_dir, sizeof cut.run_dir, "%s/run_cut", dir);
    snprintf(path, sizeof path, "%s/checkpoint.h5", cut.run_dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && head -c %ld %s > %s", cut.run_dir, size / 2, ckpt,
             path);
    if (system(cmd) != 0)
        test_fail("'%s' failed", cmd);
    bytes = test_slurp(path, &size);
    if (test_run_captured(be, comm, &cut, log, out, sizeof out) == 0)
        test_fail("a run started from the truncated %s", path);
    else if (!strstr(out, path) || !strstr(out, "cannot resume"))
        test_fail("truncated checkpoint: the message does not name %s", path);
    else
        printf("ok   truncated checkpoint refused\n");
    test_check_untouched(path, bytes, size, "truncated checkpoint");
    free(bytes);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_checkpoint PATH/TO/ddim-prep\n");
        return 2;
    }
    char dir[] = "/tmp/ddim_checkpoint_XXXXXX", cmd[2048], data[512];
    if (test_make_synthetic_data(argv[1], dir, 80, 5, data, sizeof data) != 0)
        return 1;
    struct run_config cfg;
    test_tiny_run_config(&cfg, data, dir); /* each part below sets its own run.dir */
    cfg.num_epochs = 3;                    /* 64 training images / 8 = 8 steps per epoch */
    cfg.diffusion.learning_rate = 3e-3f;
    char err[1024];
    if (config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "test_checkpoint: %s\n", err);
        return 1;
    }
    be = cpu_backend_create();
    comm = comm_single();

    /* (a) uninterrupted */
    struct run_config a = cfg;
    snprintf(a.run_dir, sizeof a.run_dir, "%s/run_a", dir);
    if (train_loop_run(&a, be, comm) != 0)
        test_fail("the uninterrupted run failed");

    /* (b) stopped at steps 11 and 17 (inside epochs 2 and 3), resumed to the end */
    struct run_config b = cfg;
    snprintf(b.run_dir, sizeof b.run_dir, "%s/run_b", dir);
    char ckpt_a[CONFIG_PATH_MAX + 32], ckpt_b[CONFIG_PATH_MAX + 32], path[CONFIG_PATH_MAX + 32];
    snprintf(ckpt_a, sizeof ckpt_a, "%s/checkpoint.h5", a.run_dir);
    snprintf(ckpt_b, sizeof ckpt_b, "%s/checkpoint.h5", b.run_dir);
    long stops[] = {11, 17, 0};
    for (int i = 0; i < 3; i++) {
        b.max_steps = stops[i];
        if (train_loop_run(&b, be, comm) != 0)
            test_fail("run b, part %d (max_steps %ld) failed", i + 1, stops[i]);
        if (stops[i] && (attr(ckpt_b, "global_step") != stops[i] ||
                         attr(ckpt_b, "step_in_epoch") != stops[i] % 8 ||
                         attr(ckpt_b, "epoch") != stops[i] / 8))
            test_fail("%s after max_steps %ld: global_step %g, epoch %g, step_in_epoch %g", ckpt_b,
                      stops[i], attr(ckpt_b, "global_step"), attr(ckpt_b, "epoch"),
                      attr(ckpt_b, "step_in_epoch"));
    }
    compare_checkpoints(ckpt_a, ckpt_b, &cfg.model);
    snprintf(path, sizeof path, "%s/metrics.jsonl", b.run_dir);
    int steps = count_lines(path, "\"type\":\"step\"");
    if (steps != 24)
        test_fail("%s: %d step lines, expected 24 (each step once)", path, steps);
    else
        printf("ok   %s: 24 step lines across the three parts\n", path);

    /* a finished run started again does nothing and keeps its checkpoint */
    long size;
    char *bytes = test_slurp(ckpt_b, &size);
    if (train_loop_run(&b, be, comm) != 0)
        test_fail("starting a finished run again failed");
    test_check_untouched(ckpt_b, bytes, size, "finished run started again");
    free(bytes);

    check_refusals(&b, ckpt_b, dir);

    comm->destroy(comm); /* reverse order of creation */
    be->destroy(be);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (test_failures() == 0 && system(cmd) != 0)
        fprintf(stderr, "test_checkpoint: could not remove %s\n", dir);
    return test_finish("test_checkpoint");
}
