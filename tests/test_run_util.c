/* test_run_util.c: see test_run_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "test_run_util.h"
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>

int test_make_synthetic_data(const char *prep, char *dir_template, int count, int seed, char *data,
                             size_t datalen)
{
    if (!mkdtemp(dir_template)) {
        perror("mkdtemp");
        return -1;
    }
    char cmd[4096], out[4096];
    snprintf(data, datalen, "%s/data.h5", dir_template);
    snprintf(cmd, sizeof cmd, "%s --synthetic %d --size 16 --seed %d --output %s", prep, count,
             seed, data);
    int rc = test_run_program(cmd, out, sizeof out);
    if (rc != 0) {
        fprintf(stderr, "test: '%s' exited with %d:\n%s", cmd, rc, out);
        return -1;
    }
    return 0;
}

void test_tiny_run_config(struct run_config *cfg, const char *data, const char *run_dir)
{
    run_config_defaults(cfg);
    snprintf(cfg->data_path, sizeof cfg->data_path, "%s", data);
    snprintf(cfg->run_dir, sizeof cfg->run_dir, "%s", run_dir);
    snprintf(cfg->backend, sizeof cfg->backend, "cpu");
    snprintf(cfg->resident, sizeof cfg->resident, "off");
    cfg->dataset_repetitions = 1;
    cfg->model.image_size = 16;
    cfg->model.num_levels = 2;
    cfg->model.widths[0] = 8;
    cfg->model.widths[1] = 16;
    cfg->model.block_depth = 1;
    cfg->model.embedding_dims = 8;
    cfg->batch_size = 8;
    cfg->num_epochs = 1;
    cfg->plot_diffusion_steps = 2;
    cfg->plot_rows = 1;
    cfg->plot_cols = 2;
    cfg->progress_seconds = 0;
}
