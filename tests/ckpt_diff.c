/* ckpt_diff.c: compares the weights of two checkpoints written by ddim-dist (for the
 * cluster tests, tests/slurm/run_cluster_test.sh): every dataset under /weights (training
 * network, BN moving statistics included) and /ema_weights of A against the same one of
 * B, as the relative L2 error ||A - B|| / ||B|| per tensor.
 *
 *   ckpt_diff A.h5 B.h5 TOL    prints the largest error, the tensor it is in and the
 *                              optimizer steps of both; exit 0 if it is <= TOL (TOL 0:
 *                              equal bit for bit), 1 if not, 2 if a file or tensor cannot
 *                              be read or the two differ in their tensors or steps. */
#include "h5_util.h"
#include "util.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct diff_state {
    hid_t a, b;
    const char *path_a, *path_b;
    char group[32];
    double worst;
    char worst_name[320];
    int tensors, errors, unequal_bits;
};

/* One tensor of group `group` in both files. */
static void diff_tensor(struct diff_state *d, const char *name)
{
    char full[320], err[1024];
    snprintf(full, sizeof full, "%s/%s", d->group, name);
    int nda = 0, ndb = 0;
    size_t sa[H5U_MAX_DIMS], sb[H5U_MAX_DIMS], n = 1;
    if (h5u_shape(d->a, d->path_a, full, &nda, sa, err, sizeof err) ||
        h5u_shape(d->b, d->path_b, full, &ndb, sb, err, sizeof err)) {
        fprintf(stderr, "ckpt_diff: %s\n", err);
        d->errors++;
        return;
    }
    for (int i = 0; i < nda; i++)
        n *= sa[i];
    if (nda != ndb || memcmp(sa, sb, (size_t)nda * sizeof sa[0])) {
        fprintf(stderr, "ckpt_diff: %s has another shape in %s than in %s\n", full, d->path_a,
                d->path_b);
        d->errors++;
        return;
    }
    float *x = util_xmalloc(n * sizeof *x), *y = util_xmalloc(n * sizeof *y);
    if (h5u_read_floats(d->a, d->path_a, full, x, n, err, sizeof err) ||
        h5u_read_floats(d->b, d->path_b, full, y, n, err, sizeof err)) {
        fprintf(stderr, "ckpt_diff: %s\n", err);
        d->errors++;
    } else {
        double num = 0, den = 0;
        for (size_t i = 0; i < n; i++) {
            double e = (double)x[i] - (double)y[i];
            num += e * e;
            den += (double)y[i] * y[i];
        }
        double rel = isfinite(num) ? sqrt(num) / fmax(sqrt(den), 1e-30) : INFINITY;
        d->unequal_bits += memcmp(x, y, n * sizeof *x) != 0;
        if (!(rel <= d->worst)) {
            d->worst = rel;
            snprintf(d->worst_name, sizeof d->worst_name, "%s", full);
        }
        d->tensors++;
    }
    free(x);
    free(y);
}

static herr_t diff_visit(hid_t obj, const char *name, const H5O_info_t *info, void *arg)
{
    (void)obj;
    if (info->type == H5O_TYPE_DATASET)
        diff_tensor(arg, name);
    return 0;
}

static long diff_step(hid_t f, const char *path)
{
    double v = -1;
    size_t count = 1;
    char err[512];
    if (h5u_read_attr_doubles(f, path, "/", "global_step", &v, &count, err, sizeof err))
        fprintf(stderr, "ckpt_diff: %s\n", err);
    return (long)v;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: ckpt_diff A.h5 B.h5 TOL\n");
        return 2;
    }
    char err[1024];
    double tol = atof(argv[3]);
    struct diff_state d = {.path_a = argv[1], .path_b = argv[2]};
    d.a = h5u_open_read(argv[1], err, sizeof err);
    d.b = d.a < 0 ? -1 : h5u_open_read(argv[2], err, sizeof err);
    if (d.a < 0 || d.b < 0) {
        fprintf(stderr, "ckpt_diff: %s\n", err);
        return 2;
    }
    long step_a = diff_step(d.a, argv[1]), step_b = diff_step(d.b, argv[2]);
    const char *groups[] = {"/weights", "/ema_weights"};
    for (int g = 0; g < 2; g++) {
        snprintf(d.group, sizeof d.group, "%s", groups[g]);
        hid_t grp = H5Gopen2(d.a, groups[g], H5P_DEFAULT);
        if (grp < 0 || H5Ovisit(grp, H5_INDEX_NAME, H5_ITER_NATIVE, diff_visit, &d) < 0) {
            fprintf(stderr, "ckpt_diff: %s: no readable group %s\n", argv[1], groups[g]);
            d.errors++;
        }
        if (grp >= 0)
            H5Gclose(grp);
    }
    H5Fclose(d.a);
    H5Fclose(d.b);
    printf("ckpt_diff: %d tensors, global steps %ld and %ld; largest relative L2 error %.3g (%s); "
           "%d tensor(s) not equal bit for bit\n",
           d.tensors, step_a, step_b, d.worst, d.worst > 0 ? d.worst_name : "all equal",
           d.unequal_bits);
    if (d.errors || !d.tensors || step_a != step_b || step_a < 0)
        return 2;
    return tol == 0 ? d.unequal_bits != 0 : !(d.worst <= tol);
}
