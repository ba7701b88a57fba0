/* bench_checkpoint.c: what the Fletcher32 checksums (io/h5_util.h) cost on the checkpoint of
 * the Keras example's model (the default config: 64 px, widths 32, 64, 96, 128, block depth
 * 2; 2.2 M weights, the file holds them four times). Writes and reads the checkpoint ROUNDS
 * times with checksums and without, interleaved (so that a machine busy with other work
 * weighs on both alike), and prints the median times. Run by tools/bench_checkpoint.sh.
 *
 * usage: bench_checkpoint DIR [ROUNDS]   (DIR: where the files go; the disk's fsync counts) */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "h5_util.h"
#include "trainer.h"
#include "trainer_state.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, compare);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_checkpoint DIR [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 10;
    if (rounds < 1 || rounds > 1000)
        rounds = 10;
    struct run_config cfg;
    config_defaults(&cfg); /* the example's model */
    char err[2048], path[2][1100];
    struct backend *be = cpu_backend_create();
    struct comm *comm = comm_single();
    struct trainer *t =
        trainer_create(be, comm, &cfg.model, &cfg.diffusion, 1, 1, 0, err, sizeof err);
    if (!t) {
        fprintf(stderr, "bench_checkpoint: %s\n", err);
        return 1;
    }
    trainer_init_weights(t);
    const float mean[3] = {0.4f, 0.4f, 0.3f}, var[3] = {0.08f, 0.07f, 0.09f};
    trainer_set_normalizer(t, mean, var);
    struct checkpoint_info pos = {.epoch = 1, .global_step = 511};
    double *times[2][2]; /* [checksums][write, read] */
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < 2; k++)
            times[c][k] = util_xcalloc((size_t)rounds, sizeof(double));
    for (int c = 0; c < 2; c++)
        snprintf(path[c], sizeof path[c], "%s/bench_%s.h5", argv[1], c ? "fletcher32" : "plain");
    for (int r = 0; r < rounds; r++)
        for (int c = 0; c < 2; c++) {
            h5u_set_checksums(c);
            double t0 = util_now();
            if (trainer_checkpoint_write(t, path[c], &pos, "", err, sizeof err) != 0)
                DDIM_FATAL("%s", err);
            double t1 = util_now();
            if (trainer_checkpoint_read(t, path[c], &pos, err, sizeof err) != 0)
                DDIM_FATAL("%s", err);
            times[c][0][r] = t1 - t0;
            times[c][1][r] = util_now() - t1;
        }
    printf("checkpoint of the default model (%d rounds, medians, %s):\n", rounds, argv[1]);
    for (int c = 0; c < 2; c++) {
        struct stat st;
        stat(path[c], &st);
        printf("  %-26s write %7.1f ms  read %7.1f ms  size %.2f MB\n",
               c ? "with Fletcher32 checksums" : "without checksums",
               1e3 * median(times[c][0], rounds), 1e3 * median(times[c][1], rounds),
               st.st_size / 1e6);
        remove(path[c]);
    }
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < 2; k++)
            free(times[c][k]);
    trainer_destroy(t);
    be->destroy(be);
    comm->destroy(comm);
    return 0;
}
