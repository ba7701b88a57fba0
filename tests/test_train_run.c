/* test_train_run.c: a short real training run end to end on generated data: ddim-prep
 * --synthetic makes the dataset, train_loop_run trains a tiny U-Net for a few epochs, and
 * the run directory must hold what a user looks at: a falling noise loss in a metrics log
 * that parses, a sample grid PNG per epoch and a loss plot that decode, and a config.yaml
 * that loads back to the configuration that ran. The run goes twice, images read from the
 * file each step (data.resident=off) and gathered from the resident splits (on): the
 * losses of every step and epoch and the sample grids must be identical.
 *
 * usage: test_train_run PATH/TO/ddim-prep */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "image_io.h"
#include "test_run_util.h"
#include "test_util.h"
#include "train_loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads the per-step noise losses and the epoch lines of metrics.jsonl. */
static int read_metrics(const char *path, double *steps, int max_steps, int *n_steps, int *n_epochs)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[1024];
    *n_steps = *n_epochs = 0;
    while (fgets(line, sizeof line, f)) {
        const char *nl = strstr(line, "\"n_loss\":");
        if (line[0] != '{' || !strchr(line, '}') || !nl) {
            test_fail("%s: not a JSON metrics line: %s", path, line);
            continue;
        }
        double v = strtod(nl + 9, NULL);
        if (strstr(line, "\"type\":\"step\"") && *n_steps < max_steps)
            steps[(*n_steps)++] = v;
        else if (strstr(line, "\"type\":\"epoch\"")) {
            (*n_epochs)++;
            if (!strstr(line, "\"val_n_loss\":"))
                test_fail("%s: epoch line without val_n_loss: %s", path, line);
        }
    }
    fclose(f);
    return 0;
}

/* Line i of the metrics log, cut before its timing field (images_per_s, seconds). */
static int metrics_line(FILE *f, char *line, size_t len)
{
    if (!fgets(line, (int)len, f))
        return 0;
    char *timing = strstr(line, ",\"images_per_s\"");
    if (!timing)
        timing = strstr(line, ",\"seconds\"");
    if (timing)
        *timing = 0;
    return 1;
}

/* The two runs' metrics (every step's and epoch's losses) and sample grids must match. */
static void compare_runs(const char *dir_a, const char *dir_b, int epochs)
{
    char pa[CONFIG_PATH_MAX + 64], pb[CONFIG_PATH_MAX + 64], la[1024], lb[1024];
    snprintf(pa, sizeof pa, "%s/metrics.jsonl", dir_a);
    snprintf(pb, sizeof pb, "%s/metrics.jsonl", dir_b);
    FILE *fa = fopen(pa, "r"), *fb = fopen(pb, "r");
    int lines = 0, ok = fa && fb;
    while (ok) {
        int ga = metrics_line(fa, la, sizeof la), gb = metrics_line(fb, lb, sizeof lb);
        if (!ga && !gb)
            break;
        if (ga != gb || strcmp(la, lb) != 0) {
            test_fail("resident vs streamed: line %d differs:\n  %s\n  %s", lines + 1,
                      ga ? la : "(end)", gb ? lb : "(end)");
            ok = 0;
        }
        lines++;
    }
    if (!fa || !fb)
        test_fail("cannot open %s or %s", pa, pb);
    else if (ok)
        printf("ok   resident and streamed runs: %d metrics lines identical\n", lines);
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    for (int e = 1; e <= epochs; e++) {
        snprintf(pa, sizeof pa, "%s/samples/epoch_%04d.png", dir_a, e);
        snprintf(pb, sizeof pb, "%s/samples/epoch_%04d.png", dir_b, e);
        struct image_u8 a, b;
        char err[512];
        if (image_load(pa, &a, err, sizeof err) != 0) {
            test_fail("%s", err);
            continue;
        }
        if (image_load(pb, &b, err, sizeof err) != 0) {
            test_fail("%s", err);
            image_free(&a);
            continue;
        }
        if (a.width != b.width || a.height != b.height ||
            memcmp(a.pixels, b.pixels, (size_t)a.width * a.height * 3) != 0)
            test_fail("resident vs streamed: sample grids of epoch %d differ", e);
        image_free(&a);
        image_free(&b);
    }
}

static void check_png(const char *path, int min_w, int min_h)
{
    struct image_u8 img;
    char err[512];
    if (image_load(path, &img, err, sizeof err) != 0) {
        test_fail("%s", err);
        return;
    }
    if (img.width < min_w || img.height < min_h)
        test_fail("%s: %dx%d, expected at least %dx%d", path, img.width, img.height, min_w, min_h);
    else
        printf("ok   %s decodes (%dx%d)\n", path, img.width, img.height);
    image_free(&img);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_train_run PATH/TO/ddim-prep\n");
        return 2;
    }
    char dir[] = "/tmp/ddim_train_run_XXXXXX", data[512], run_dir[600], cmd[2048];
    if (test_make_synthetic_data(argv[1], dir, 80, 3, data, sizeof data) != 0)
        return 1;
    snprintf(run_dir, sizeof run_dir, "%s/run", dir);
    struct run_config cfg;
    test_tiny_run_config(&cfg, data, run_dir);
    cfg.dataset_repetitions = 2;
    cfg.num_epochs = 4; /* 64 train images x 2 repetitions / 8 = 16 steps per epoch */
    cfg.diffusion.learning_rate = 3e-3f;
    cfg.plot_diffusion_steps = 3;
    cfg.plot_rows = 2;
    cfg.plot_cols = 3;
    char err[1024];
    if (config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "test_train_run: %s\n", err);
        return 1;
    }
    struct backend *be = cpu_backend_create();
    struct comm *comm = comm_single();
    if (train_loop_run(&cfg, be, comm) != 0)
        test_fail("train_loop_run failed");

    char path[CONFIG_PATH_MAX + 64];
    double steps[256];
    int n_steps, n_epochs;
    snprintf(path, sizeof path, "%s/metrics.jsonl", cfg.run_dir);
    if (read_metrics(path, steps, 256, &n_steps, &n_epochs) != 0)
        test_fail("%s: missing", path);
    else if (n_steps != 64 || n_epochs != 4)
        test_fail("%s: %d step lines and %d epoch lines, expected 64 and 4", path, n_steps,
                  n_epochs);
    else {
        double first = 0, last = 0;
        for (int i = 0; i < 8; i++) {
            first += steps[i] / 8;
            last += steps[n_steps - 8 + i] / 8;
        }
        printf("noise loss: first 8 steps %.4f, last 8 steps %.4f\n", first, last);
        if (!(last < 0.9 * first))
            test_fail("the noise loss did not fall: %.4f -> %.4f", first, last);
    }
    for (int e = 1; e <= 4; e++) {
        snprintf(path, sizeof path, "%s/samples/epoch_%04d.png", cfg.run_dir, e);
        check_png(path, 3 * 16, 2 * 16);
    }
    snprintf(path, sizeof path, "%s/loss.png", cfg.run_dir);
    check_png(path, 200, 100);

    struct run_config back;
    config_defaults(&back);
    snprintf(path, sizeof path, "%s/config.yaml", cfg.run_dir);
    if (config_load_yaml(&back, path, err, sizeof err) != 0)
        test_fail("%s", err);
    else if (back.batch_size != cfg.batch_size || back.model.widths[1] != 16 ||
             strcmp(back.data_path, cfg.data_path) != 0)
        test_fail("%s does not hold the configuration that ran", path);
    else
        printf("ok   %s loads back\n", path);

    /* the same run with the splits resident in backend memory (host memory on the CPU
     * backend, each batch gathered by gather_images) */
    struct run_config res = cfg;
    snprintf(res.resident, sizeof res.resident, "on");
    snprintf(res.run_dir, sizeof res.run_dir, "%s/run_resident", dir);
    if (train_loop_run(&res, be, comm) != 0)
        test_fail("train_loop_run with data.resident=on failed");
    else
        compare_runs(cfg.run_dir, res.run_dir, cfg.num_epochs);

    comm->destroy(comm); /* reverse order of creation */
    be->destroy(be);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (test_failures() == 0 && system(cmd) != 0)
        fprintf(stderr, "test_train_run: could not remove %s\n", dir);
    return test_finish("test_train_run");
}
