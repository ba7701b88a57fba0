/* main_train.c: the ddim-dist program. For now (the foundation milestone) it builds the
 * Keras example's U-Net and runs training steps on a generated batch of smooth random
 * images, printing the losses: enough to see the whole step run end to end on either
 * backend. The dataset, config file and training loop come with the next milestone. */
#include "trainer.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ddim-dist [options]\n"
            "\n"
            "Runs training steps of the Keras DDIM example's model on a generated batch and\n"
            "prints the noise and image losses of each step.\n"
            "\n"
            "options:\n"
            "  --steps N          training steps to run (default 1)\n"
            "  --batch N          images per step (default 64)\n"
            "  --image-size N     image side in pixels (default 64)\n"
            "  --widths A,B,...   channels per U-Net level (default 32,64,96,128)\n"
            "  --block-depth N    residual blocks per level (default 2)\n"
            "  --seed N           random seed (default 42)\n"
            "  --backend NAME     cpu or cuda (default cpu)\n"
            "  -h, --help         this text\n");
}

static int parse_int(const char *opt, const char *s, int lo, int hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "ddim-dist: %s expects an integer in [%d, %d], got '%s'\n", opt, lo, hi,
                s);
        exit(2);
    }
    return (int)v;
}

static void parse_widths(const char *s, struct unet_config *cfg)
{
    cfg->num_levels = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || cfg->num_levels == UNET_MAX_LEVELS || (*end != ',' && *end != '\0')) {
            fprintf(stderr,
                    "ddim-dist: --widths expects up to %d comma-separated integers, got '%s'\n",
                    UNET_MAX_LEVELS, s);
            exit(2);
        }
        cfg->widths[cfg->num_levels++] = (int)v;
        p = *end ? end + 1 : end;
    }
}

/* Smooth, image-like values in [0, 1]: a few low-frequency waves per channel. */
static void generate_images(float *x, int n, int size)
{
    for (int i = 0; i < n; i++)
        for (int y = 0; y < size; y++)
            for (int xx = 0; xx < size; xx++)
                for (int c = 0; c < 3; c++) {
                    float u = (float)xx / size, v = (float)y / size;
                    float val = 0.5f + 0.25f * sinf(6.0f * u + 1.7f * i + c) *
                                           cosf(4.0f * v - 0.9f * i + 2.0f * c);
                    x[(((size_t)i * size + y) * size + xx) * 3 + c] = val;
                }
}

int main(int argc, char **argv)
{
    struct unet_config ucfg = unet_config_default();
    struct diffusion_config dc = diffusion_config_default();
    int steps = 1, batch = 64;
    const char *backend_name = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "ddim-dist: unknown option or missing value: '%s' (see --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--steps"))
            steps = parse_int(a, v, 1, 1000000);
        else if (!strcmp(a, "--batch"))
            batch = parse_int(a, v, 1, 65536);
        else if (!strcmp(a, "--image-size"))
            ucfg.image_size = parse_int(a, v, 1, 4096);
        else if (!strcmp(a, "--widths"))
            parse_widths(v, &ucfg);
        else if (!strcmp(a, "--block-depth"))
            ucfg.block_depth = parse_int(a, v, 0, 1000);
        else if (!strcmp(a, "--seed"))
            dc.seed = (uint64_t)parse_int(a, v, 0, 2147483647);
        else if (!strcmp(a, "--backend"))
            backend_name = v;
        else {
            fprintf(stderr, "ddim-dist: unknown option '%s' (see --help)\n", a);
            return 2;
        }
    }
    char err[1024];
    if (unet_config_check(&ucfg, err, sizeof err) != 0) {
        fprintf(stderr, "ddim-dist: invalid model configuration: %s\n", err);
        return 2;
    }
    struct backend *be = NULL;
    if (!strcmp(backend_name, "cpu"))
        be = backend_cpu_create();
    else if (!strcmp(backend_name, "cuda"))
        be = backend_cuda_create(0, err, sizeof err);
    else {
        fprintf(stderr, "ddim-dist: --backend expects cpu or cuda, got '%s'\n", backend_name);
        return 2;
    }
    if (!be) {
        fprintf(stderr, "ddim-dist: cannot use the cuda backend: %s\n", err);
        return 1;
    }
    struct comm *comm = comm_single();
    struct trainer *t = trainer_create(be, comm, &ucfg, &dc, batch, batch, 0, err, sizeof err);
    if (!t) {
        fprintf(stderr, "ddim-dist: %s\n", err);
        return 1;
    }
    const struct param_table *pt = unet_params(t->net);
    util_log("ddim-dist: %s backend, image %d, batch %d, %d levels, %zu trainable weights, "
             "activations %.1f MiB\n",
             be->name, ucfg.image_size, batch, ucfg.num_levels, pt->trainable,
             unet_acts_bytes(t->acts) / 1048576.0);
    trainer_init_weights(t);
    float *host = util_xmalloc((size_t)batch * t->per_image * sizeof(float));
    generate_images(host, batch, ucfg.image_size);
    be->upload(be, t->images, host, (size_t)batch * t->per_image * sizeof(float));
    /* the normalizer's statistics of this batch, as Normalization.adapt would compute */
    double sum[3] = {0}, sq[3] = {0};
    size_t pixels = (size_t)batch * ucfg.image_size * ucfg.image_size;
    for (size_t p = 0; p < pixels; p++)
        for (int c = 0; c < 3; c++) {
            sum[c] += host[p * 3 + c];
            sq[c] += (double)host[p * 3 + c] * host[p * 3 + c];
        }
    float mean[3], var[3];
    for (int c = 0; c < 3; c++) {
        mean[c] = (float)(sum[c] / pixels);
        var[c] = (float)(sq[c] / pixels - (sum[c] / pixels) * (sum[c] / pixels));
    }
    trainer_set_normalizer(t, mean, var);
    for (int s = 0; s < steps; s++) {
        double t0 = util_now();
        trainer_draw(t, (uint32_t)s, 0);
        trainer_train_step(t);
        float losses[2];
        trainer_read_losses(t, losses);
        double dt = util_now() - t0;
        util_log("step %d/%d  noise loss %.4f  image loss %.4f  %.2f s  %.1f images/s\n", s + 1,
                 steps, losses[0], losses[1], dt, batch / dt);
    }
    free(host);
    trainer_destroy(t);
    comm->destroy(comm);
    be->destroy(be);
    return 0;
}
