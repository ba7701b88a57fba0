/* ddim_dist.c: the ddim-dist program: reads the configuration, picks the backend and the
 * communicator, and runs the training loop (train_loop.c). */
#include "config.h"
#include "launch.h"
#include "train_loop.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ddim-dist [--config FILE.yaml] [--set section.key=value]... [options]\n"
            "\n"
            "Trains the Keras DDIM example's diffusion model (flowers, 64x64 by default) on an\n"
            "HDF5 dataset made by ddim-prep. Everything a run writes goes under run.dir:\n"
            "config.yaml, metrics.jsonl, loss.png, samples/epoch_NNNN.png, and TensorBoard's\n"
            "event files (run.tensorboard: on; watch the runs with tensorboard --logdir runs/).\n"
            "\n"
            "options:\n"
            "  --config FILE      YAML configuration (configs/flowers64.yaml is the example's\n"
            "                     run, configs/quickstart.yaml a small CPU run); keys not given\n"
            "                     keep the example's values\n"
            "  --set KEY=VALUE    override one key, e.g. --set train.batch_size=32 or\n"
            "                     --set model.widths=[16,32]; may be repeated; applied after\n"
            "                     --config, in order\n"
            "  --run-dir DIR      where the run writes (run.dir), taken verbatim\n"
            "  --print-config     print the resolved configuration and exit\n"
            "  -h, --help         this text\n"
            "\n"
            "example:\n"
            "  ddim-prep --synthetic 1000 --output data/synthetic.h5\n"
            "  ddim-dist --config configs/quickstart.yaml --set train.num_epochs=1\n");
}

int main(int argc, char **argv)
{
    util_prefer_passive_openmp(argv);
    struct run_config cfg;
    run_config_defaults(&cfg);
    char err[2048];
    int print_only = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--print-config")) {
            print_only = 1;
            continue;
        }
        if (strcmp(a, "--config") && strcmp(a, "--set") && strcmp(a, "--run-dir")) {
            fprintf(stderr, "ddim-dist: unknown option '%s' (see ddim-dist --help)\n", a);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ddim-dist: %s needs a value (see ddim-dist --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        int rc;
        if (!strcmp(a, "--config")) {
            rc = config_load_yaml(&cfg, v, err, sizeof err);
        } else if (!strcmp(a, "--set")) {
            rc = config_set(&cfg, v, err, sizeof err);
        } else if (strlen(v) == 0 || strlen(v) >= sizeof cfg.run_dir) {
            rc = util_error(err, sizeof err, "--run-dir: expected a path of 1..%zu characters",
                            sizeof cfg.run_dir - 1);
        } else { /* taken verbatim, not parsed as YAML */
            snprintf(cfg.run_dir, sizeof cfg.run_dir, "%s", v);
            rc = 0;
        }
        if (rc != 0) {
            fprintf(stderr, "ddim-dist: %s\n", err);
            return 2;
        }
    }
    if (run_config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "ddim-dist: invalid configuration: %s\n", err);
        return 2;
    }
    if (print_only) {
        config_write_yaml(&cfg, stdout);
        return 0;
    }
    struct comm *mpi = comm_mpi_create(&argc, &argv);
    if (mpi->rank == 0) {
        config_write_yaml(&cfg, stdout);
        fflush(stdout);
    }
    struct backend *be = launch_pick_backend(cfg.backend, mpi, "ddim-dist");
    struct comm *comm = launch_comm_for_backend(mpi, be);
    comm_set_timeout(comm, cfg.collective_timeout_s);
    int rc = train_loop_run(&cfg, be, comm);
    launch_finish(comm, be, mpi);
    return rc;
}
