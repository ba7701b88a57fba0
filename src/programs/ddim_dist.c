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
            "config.yaml, metrics.jsonl, loss.png and samples/epoch_NNNN.png.\n"
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

int main(int argc, char **argv)
{
    util_prefer_passive_openmp(argv);
    struct run_config cfg;
    config_defaults(&cfg);
    char err[2048];
    int print_only = 0, c, rc;
    enum { OPT_CONFIG = 1, OPT_SET, OPT_RUN_DIR, OPT_PRINT_CONFIG, OPT_LIST_KEYS };
    static const struct option options[] = {{"config", required_argument, NULL, OPT_CONFIG},
                                            {"set", required_argument, NULL, OPT_SET},
                                            {"run-dir", required_argument, NULL, OPT_RUN_DIR},
                                            {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
                                            {"list-keys", no_argument, NULL, OPT_LIST_KEYS},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case OPT_LIST_KEYS:
            config_write_keys(stdout, 1);
            return 0;
        case OPT_PRINT_CONFIG:
            print_only = 1;
            continue;
        case OPT_CONFIG:
            rc = config_load_yaml(&cfg, optarg, err, sizeof err);
            break;
        case OPT_SET:
            rc = config_set(&cfg, optarg, err, sizeof err);
            break;
        case OPT_RUN_DIR:
            if (strlen(optarg) == 0 || strlen(optarg) >= sizeof cfg.run_dir) {
                rc = util_error(err, sizeof err, "--run-dir: expected a path of 1..%zu characters",
                                sizeof cfg.run_dir - 1);
            } else { /* taken verbatim, not parsed as YAML */
                snprintf(cfg.run_dir, sizeof cfg.run_dir, "%s", optarg);
                rc = 0;
            }
            break;
        default: /* '?' or ':' */
            util_getopt_refused("ddim-dist", c, argv);
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "ddim-dist: %s\n", err);
            return 2;
        }
    }
    if (util_getopt_no_operands("ddim-dist", argc, argv) != 0)
        return 2;
    if (config_check(&cfg, err, sizeof err) != 0) {
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
    rc = train_loop_run(&cfg, be, comm);
    launch_finish(comm, be, mpi);
    return rc;
}
