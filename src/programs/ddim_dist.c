/* ddim_dist.c: the ddim-dist program: reads the configuration, picks the backend and the
 * communicator, and runs the training loop (train_loop.c). */
#include "config.h"
#include "launch.h"
#include "train_loop.h"
#include "util.h"

#include <getopt.h>
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
            "  --list-keys        print the keys below as a markdown table (docs/config.md)\n"
            "  -h, --help         this text\n"
            "\n"
            "example:\n"
            "  ddim-prep --synthetic 1000 --output data/synthetic.h5\n"
            "  ddim-dist --config configs/quickstart.yaml --set train.num_epochs=1\n"
            "\n"
            "keys (KEY = default; what it sets; what it accepts):\n");
    config_write_keys(out, 0);
}

struct dist_args {
    struct run_config *cfg;
    int print_only, list_keys;
    char err[2048];
};

/* One option with its value, in the order given (--set after --config applies on top of
 * it), for util_getopt_each: 0, or -1 after a message. */
static int parse_option(void *ctx, const char *name, const char *value)
{
    struct dist_args *a = ctx;
    struct run_config *cfg = a->cfg;
    int rc = 0;
    if (!strcmp(name, "--print-config")) {
        a->print_only = 1;
    } else if (!strcmp(name, "--list-keys")) {
        a->list_keys = 1;
    } else if (!strcmp(name, "--config")) {
        rc = config_load_yaml(cfg, value, a->err, sizeof a->err);
    } else if (!strcmp(name, "--set")) {
        rc = config_set(cfg, value, a->err, sizeof a->err);
    } else if (strlen(value) == 0 || strlen(value) >= sizeof cfg->run_dir) { /* --run-dir */
        rc = util_error(a->err, sizeof a->err, "--run-dir: expected a path of 1..%zu characters",
                        sizeof cfg->run_dir - 1);
    } else { /* taken verbatim, not parsed as YAML */
        snprintf(cfg->run_dir, sizeof cfg->run_dir, "%s", value);
    }
    if (rc != 0)
        fprintf(stderr, "ddim-dist: %s\n", a->err);
    return rc;
}

int main(int argc, char **argv)
{
    util_prefer_passive_openmp(argv);
    struct run_config cfg;
    config_defaults(&cfg);
    struct dist_args a = {.cfg = &cfg};
    static const struct option options[] = {{"config", required_argument, NULL, 0},
                                            {"set", required_argument, NULL, 0},
                                            {"run-dir", required_argument, NULL, 0},
                                            {"print-config", no_argument, NULL, 0},
                                            {"list-keys", no_argument, NULL, 0},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int rc = util_getopt_each("ddim-dist", argc, argv, options, parse_option, &a);
    if (rc < 0)
        return 2;
    if (rc == 1)
        usage(stdout);
    if (a.list_keys)
        config_write_keys(stdout, 1);
    if (rc == 1 || a.list_keys)
        return 0;
    if (config_check(&cfg, a.err, sizeof a.err) != 0) {
        fprintf(stderr, "ddim-dist: invalid configuration: %s\n", a.err);
        return 2;
    }
    if (a.print_only) {
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
    rc = train_loop_run(&cfg, be, comm);
    launch_finish(comm, be, mpi);
    return rc;
}
