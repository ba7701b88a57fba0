/* ddim_gif.c: ddim-gif, a run's per-epoch sample grids (RUN/samples/epoch_NNNN.png, the same
 * initial noises every epoch) as one animated GIF: the batch evolving over training, as
 * the Keras example's article shows it. Exit codes: 0 done, 1 runtime error, 2 usage. */
#define _POSIX_C_SOURCE 200809L
#include "gif_write.h"
#include "image_io.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ddim-gif RUN_DIR [--output FILE.gif] [--delay CS]\n"
            "\n"
            "Assembles a training run's sample grids, RUN_DIR/samples/epoch_NNNN.png in epoch\n"
            "order, into one animated GIF that loops forever.\n"
            "\n"
            "  --output FILE  the GIF to write (default RUN_DIR/samples/evolution.gif)\n"
            "  --delay CS     how long each epoch is shown, in hundredths of a second\n"
            "                 (default 20)\n"
            "  -h, --help     this text\n"
            "\n"
            "Frames with more than 256 colours are reduced to 256 per frame (giflib's median\n"
            "cut), as every GIF must be.\n"
            "\n"
            "example:\n"
            "  ddim-gif runs/quickstart --output evolution.gif\n");
}

struct epoch_file {
    long epoch;
    char name[256];
};

static int compare_epochs(const void *a, const void *b)
{
    long x = ((const struct epoch_file *)a)->epoch, y = ((const struct epoch_file *)b)->epoch;
    return x < y ? -1 : x > y;
}

/* The epoch_N.png files of dir sorted by N (numerically: epoch 10000 follows 9999). */
static struct epoch_file *list_epochs(const char *dir, long *count, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        util_error(err, errlen, "%s: cannot open the folder (%s)", dir, strerror(errno));
        return NULL;
    }
    long n = 0, cap = 64;
    struct epoch_file *list = util_xmalloc((size_t)cap * sizeof *list);
    for (struct dirent *e; (e = readdir(d));) {
        long epoch;
        int used = 0;
        if (sscanf(e->d_name, "epoch_%ld.png%n", &epoch, &used) != 1 ||
            used != (int)strlen(e->d_name) || strlen(e->d_name) >= sizeof list->name)
            continue;
        if (n == cap) {
            cap *= 2;
            struct epoch_file *grown = realloc(list, (size_t)cap * sizeof *list);
            if (!grown)
                DDIM_FATAL("out of memory listing %s", dir);
            list = grown;
        }
        list[n].epoch = epoch;
        snprintf(list[n].name, sizeof list[n].name, "%s", e->d_name);
        n++;
    }
    closedir(d);
    if (n == 0) {
        free(list);
        util_error(err, errlen, "%s: no epoch_NNNN.png sample grids (a run writes one per epoch)",
                   dir);
        return NULL;
    }
    qsort(list, (size_t)n, sizeof *list, compare_epochs);
    *count = n;
    return list;
}

/* Writes the frames; 0 or -1 with a message. */
static int assemble(const char *dir, const struct epoch_file *files, long n, const char *out,
                    int delay, char *err, size_t errlen)
{
    struct gif_writer *g = NULL;
    int width = 0, height = 0, rc = 0;
    char path[4400];
    for (long i = 0; rc == 0 && i < n; i++) {
        struct image_u8 img;
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        if (image_load(path, &img, err, errlen) != 0) {
            rc = -1;
            break;
        }
        if (!g) {
            width = img.width;
            height = img.height;
            g = gif_writer_open(out, width, height, delay, err, errlen);
            rc = g ? 0 : -1;
        } else if (img.width != width || img.height != height) {
            rc = util_error(err, errlen, "%s: %d x %d pixels, but the first grid is %d x %d", path,
                            img.width, img.height, width, height);
        }
        if (rc == 0)
            rc = gif_writer_add(g, img.pixels, err, errlen);
        image_free(&img);
    }
    if (g && gif_writer_close(g, rc == 0, err, errlen) != 0)
        rc = -1;
    return rc;
}

int main(int argc, char **argv)
{
    const char *run = NULL, *out = NULL;
    int delay = 20, c;
    static const struct option options[] = {{"output", required_argument, NULL, 'o'},
                                            {"delay", required_argument, NULL, 'd'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        char *end = NULL;
        long v;
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'o':
            out = optarg;
            break;
        case 'd':
            v = strtol(optarg, &end, 10);
            if (end == optarg || *end || v < 1 || v > 65535) {
                fprintf(stderr,
                        "ddim-gif: --delay: expected 1..65535 (hundredths of a second), "
                        "got '%s'\n",
                        optarg);
                return 2;
            }
            delay = (int)v;
            break;
        default:
            util_getopt_refused("ddim-gif", c, argv);
            return 2;
        }
    }
    if (optind < argc)
        run = argv[optind++]; /* the one operand */
    if (util_getopt_no_operands("ddim-gif", argc, argv) != 0)
        return 2;
    if (!run) {
        fprintf(stderr, "ddim-gif: give the run folder (see ddim-gif --help)\n");
        return 2;
    }
    char dir[4096], default_out[4200], err[8192];
    snprintf(dir, sizeof dir, "%s/samples", run);
    snprintf(default_out, sizeof default_out, "%s/evolution.gif", dir);
    out = out ? out : default_out;
    long n = 0;
    struct epoch_file *files = list_epochs(dir, &n, err, sizeof err);
    int rc = files ? assemble(dir, files, n, out, delay, err, sizeof err) : -1;
    free(files);
    if (rc != 0) {
        fprintf(stderr, "ddim-gif: %s\n", err);
        return 1;
    }
    fprintf(stderr, "ddim-gif: wrote %s (%ld epochs, %d/100 s each)\n", out, n, delay);
    return 0;
}
