/* test_run_guard.c: the run guard's parts on their own (labels unit, faults): the divergence
 * guard's decisions, which setting changes a resume accepts, the run directory's lock
 * against another process and after a dead one; then a whole run whose checkpoint was
 * poisoned with NaN: it must stop at the first step, exit 1, name the step, leave the
 * checkpoint as it was and say so in metrics.jsonl.
 *
 * usage: test_run_guard PATH/TO/ddim-prep */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "h5_util.h"
#include "run_guard.h"
#include "test_run_util.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_divergence(void)
{
    struct divergence d;
    run_guard_divergence_init(&d, 20);
    int bad = 0;
    for (long s = 1; s <= 60 && !bad; s++) /* a falling loss with noise: never diverged */
        bad = run_guard_divergence_feed(&d, s, 0.8 / (1 + 0.05 * s) * (s % 3 ? 1.3 : 0.8), 2.0);
    if (bad)
        test_fail("divergence: a falling loss was judged diverged at step %ld: %s", d.step, d.why);
    if (run_guard_divergence_feed(&d, 61, 15 * 0.3, 1.0))
        test_fail("divergence: a spike below the factor stopped the run: %s", d.why);
    if (!run_guard_divergence_feed(&d, 62, 1e6, 1.0) || d.step != 62 ||
        !strstr(d.why, "more than 20 times"))
        test_fail("divergence: 1e6 at step 62 not caught (step %ld, \"%s\")", d.step, d.why);
    if (!run_guard_divergence_feed(&d, 63, 0.1, 1.0) || d.step != 62)
        test_fail("divergence: the first diverged step was not kept");
    /* from the second step: 0.8, then 33 (seen with a learning rate of 10) */
    run_guard_divergence_init(&d, 20);
    run_guard_divergence_feed(&d, 1, 0.8, 3.0);
    if (!run_guard_divergence_feed(&d, 2, 33, 100) || d.step != 2)
        test_fail("divergence: 0.8 then 33 not caught at step 2 (step %ld)", d.step);
    /* factor 0: only non-finite losses */
    run_guard_divergence_init(&d, 0);
    run_guard_divergence_feed(&d, 1, 0.8, 3.0);
    if (run_guard_divergence_feed(&d, 2, 1e30, 1e30))
        test_fail("divergence: factor 0 still judged a finite loss");
    if (!run_guard_divergence_feed(&d, 3, 0.5, INFINITY) || d.step != 3 ||
        !strstr(d.why, "image loss"))
        test_fail("divergence: an infinite image loss not caught (\"%s\")", d.why);
    run_guard_divergence_init(&d, 0);
    if (!run_guard_divergence_feed(&d, 1, NAN, 1.0) || !strstr(d.why, "noise loss became nan"))
        test_fail("divergence: NaN at the first step not caught (\"%s\")", d.why);
    printf("ok   divergence guard: spikes, factor, non-finite losses\n");
}

static void test_resume_config(void)
{
    struct run_config old, now;
    config_defaults(&old);
    char *yaml = NULL, json[8192], summary[4096], err[4096];
    size_t len = 0;
    FILE *f = open_memstream(&yaml, &len);
    config_write_yaml(&old, f);
    fclose(f);
    now = old;
    now.diffusion.learning_rate = 0.002f;
    now.num_epochs = 50;
    int rc = run_guard_check_resume_config(&now, "ck.h5", yaml, 40, json, sizeof json, summary,
                                           sizeof summary, err, sizeof err);
    if (rc != -1 || !strstr(err, "train.learning_rate 0.001 -> 0.002") ||
        strstr(err, "num_epochs") || !strstr(err, "--set train.resume=force"))
        test_fail("resume: a new learning rate not refused as it should be: rc %d \"%s\"", rc, err);
    now.resume = RESUME_FORCE;
    rc = run_guard_check_resume_config(&now, "ck.h5", yaml, 40, json, sizeof json, summary,
                                       sizeof summary, err, sizeof err);
    if (rc != 0 || !strstr(json, "\"type\":\"config_change\",\"step\":40,\"forced\":true") ||
        !strstr(json, "{\"key\":\"train.learning_rate\",\"old\":\"0.001\",\"new\":\"0.002\","
                      "\"exact_resume\":false}") ||
        strstr(json, "train.resume"))
        test_fail("resume: forced change not recorded: rc %d %s", rc, json);
    now = old;
    now.num_epochs = 50;
    now.progress_seconds = 1;
    snprintf(now.run_dir, sizeof now.run_dir, "moved/\"x\"");
    rc = run_guard_check_resume_config(&now, "ck.h5", yaml, 40, json, sizeof json, summary,
                                       sizeof summary, err, sizeof err);
    if (rc != 0 || !strstr(json, "\"forced\":false") || !strstr(json, "{\"key\":\"run.dir\"") ||
        !strstr(summary, "train.num_epochs 1 -> 50"))
        test_fail("resume: harmless changes not accepted and recorded: rc %d %s", rc, json);
    rc = run_guard_check_resume_config(&old, "ck.h5", yaml, 40, json, sizeof json, summary,
                                       sizeof summary, err, sizeof err);
    if (rc != 0 || json[0] || summary[0])
        test_fail("resume: no change, yet a record: %s", json);
    static const char *harmful[] = {"train.seed",   "train.batch_size",
                                    "model.widths", "diffusion.min_signal_rate",
                                    "data.path",    "train.loss"};
    for (size_t i = 0; i < sizeof harmful / sizeof harmful[0]; i++)
        if (run_guard_change_is_harmless(harmful[i]))
            test_fail("resume: a change of %s counted as harmless", harmful[i]);
    free(yaml);
    printf("ok   resume settings: refused, forced and harmless changes\n");
}

static void test_lock(const char *dir)
{
    char err[2048], me[256] = "?";
    gethostname(me, sizeof me - 1);
    struct run_lock a;
    if (run_lock_take(&a, dir, err, sizeof err) != 0) {
        test_fail("lock: cannot take a fresh lock: %s", err);
        return;
    }
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) { /* another process: refused, naming this one */
        struct run_lock b;
        char want[400];
        snprintf(want, sizeof want, "in use by another ddim-dist: PID %ld on host %s",
                 (long)getppid(), me);
        int refused = run_lock_take(&b, dir, err, sizeof err) != 0 && strstr(err, want);
        if (!refused)
            fprintf(stderr, "lock: not refused as expected: \"%s\"\n", err);
        _exit(refused ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        test_fail("lock: a second process was not refused");
    run_lock_release(&a);
    /* a lock file left by a process that died: taken over */
    char path[1200];
    snprintf(path, sizeof path, "%s/lock", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "pid 999999999 host %s\n", me);
    fclose(f);
    if (run_lock_take(&a, dir, err, sizeof err) != 0)
        test_fail("lock: a stale lock was not taken over: %s", err);
    long size;
    char *text = test_slurp(path, &size), want[400];
    snprintf(want, sizeof want, "pid %ld host %s\n", (long)getpid(), me);
    if (!text || strcmp(text, want) != 0)
        test_fail("lock: the file holds \"%s\", expected \"%s\"", text ? text : "", want);
    free(text);
    run_lock_release(&a);
    printf("ok   run.dir lock: refused to another process, stale lock taken over\n");
}

/* NaN in the output layer's bias of the training network: every loss after it is NaN. */
static int poison_checkpoint(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        return -1;
    hid_t d = H5Dopen2(f, "/weights/head/bias", H5P_DEFAULT);
    float nan3[3] = {NAN, NAN, NAN};
    int rc = d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, nan3) >= 0;
    if (d >= 0)
        H5Dclose(d);
    H5Fclose(f);
    return rc ? 0 : -1;
}

static void test_nan_run(const char *prep, struct backend *be, struct comm *comm)
{
    char dir[] = "/tmp/test_run_guard_XXXXXX", data[600], run[700], ckpt[800], log[800];
    if (test_make_synthetic_data(prep, dir, 80, 5, data, sizeof data) != 0) {
        test_fail("nan run: no data");
        return;
    }
    snprintf(run, sizeof run, "%s/run", dir);
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.h5", run);
    snprintf(log, sizeof log, "%s/log", dir);
    test_lock(run);
    struct run_config cfg;
    test_tiny_run_config(&cfg, data, run);
    static char out[1 << 16];
    if (test_run_captured(be, comm, &cfg, log, out, sizeof out) != 0 || poison_checkpoint(ckpt)) {
        test_fail("nan run: the first epoch or the poisoning failed");
        return;
    }
    long size;
    char *bytes = test_slurp(ckpt, &size);
    cfg.num_epochs = 3;
    int rc = test_run_captured(be, comm, &cfg, log, out, sizeof out);
    if (rc != 1 || !strstr(out, "the training diverged at step 9: the noise loss became nan") ||
        !strstr(out, "Stopped without writing a checkpoint: the checkpoint on disk"))
        test_fail("nan run: rc %d, expected 1 and the step named", rc);
    test_check_untouched(ckpt, bytes, size, "nan run");
    free(bytes);
    char metrics[800];
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", run);
    char *text = test_slurp(metrics, &size);
    if (!text || !strstr(text, "{\"type\":\"step\",\"epoch\":2,\"step\":9,\"n_loss\":null") ||
        !strstr(text, "{\"type\":\"stop\",\"reason\":\"diverged\",\"step\":9,"))
        test_fail("nan run: metrics.jsonl does not tell what happened:\n%s", text ? text : "");
    else
        printf("ok   nan run: stopped at step 9, exit 1, checkpoint kept, metrics tell it\n");
    free(text);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_run_guard PATH/TO/ddim-prep\n");
        return 2;
    }
    test_divergence();
    test_resume_config();
    struct backend *be = cpu_backend_create();
    struct comm *comm = comm_single();
    test_nan_run(argv[1], be, comm);
    be->destroy(be);
    comm->destroy(comm);
    return test_finish("test_run_guard");
}
