/* test_run_util.c: see test_run_util.h. */
#define _POSIX_C_SOURCE 200809L
#include "test_run_util.h"
#include "test_util.h"
#include "train_loop.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    config_defaults(cfg);
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

int test_run_captured(struct backend *be, struct comm *comm, const struct run_config *cfg,
                      const char *log_path, char *out, size_t len)
{
    fflush(stderr);
    int saved = dup(2), fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
    int rc = train_loop_run(cfg, be, comm);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(log_path, "r");
    size_t n = f ? fread(out, 1, len - 1, f) : 0;
    out[n] = 0;
    if (f)
        fclose(f);
    fprintf(stderr, "%s", out);
    return rc;
}

char *test_slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    rewind(f);
    char *buf = malloc((size_t)*size + 1);
    if (fread(buf, 1, (size_t)*size, f) != (size_t)*size)
        *size = -1;
    buf[*size > 0 ? *size : 0] = '\0';
    fclose(f);
    return buf;
}

void test_check_untouched(const char *path, const char *bytes, long size, const char *what)
{
    long now_size;
    char *now = test_slurp(path, &now_size);
    if (!now || now_size != size || memcmp(now, bytes, (size_t)size) != 0)
        test_fail("%s: %s was changed", what, path);
    else
        printf("ok   %s: %s left as it was\n", what, path);
    free(now);
}

int test_train_cpu(const char *who, const struct run_config *cfg)
{
    struct backend *be = cpu_backend_create();
    struct comm *comm = comm_single();
    int rc = train_loop_run(cfg, be, comm);
    comm->destroy(comm); /* reverse order of creation */
    be->destroy(be);
    if (rc != 0)
        fprintf(stderr, "%s: the training run failed\n", who);
    return rc != 0 ? -1 : 0;
}

int test_tiny_run_setup(const char *who, int argc, char **argv, char *dir_template,
                        struct run_config *cfg)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PATH/TO/ddim-prep PATH/TO/PROGRAM\n", who);
        return -1;
    }
    char data[512], run_dir[600];
    if (test_make_synthetic_data(argv[1], dir_template, 80, 5, data, sizeof data) != 0)
        return -1;
    snprintf(run_dir, sizeof run_dir, "%s/run", dir_template);
    test_tiny_run_config(cfg, data, run_dir);
    return 0;
}
