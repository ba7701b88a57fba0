/* test_kid_fixture.c: KID parity with Keras itself (label model).
 *
 * tests/data/inception_v3_seeded_notop.h5 is an InceptionV3 notop weights file in the layout
 * of Keras's real one with seeded weights; tests/data/kid_reference.h5 holds images, the
 * features the Keras example's KID encoder gives them (Keras having loaded that file) and
 * the KID its metric computes (tools/inception_reference.py, TensorFlow 2.21 on the CPU).
 * This test loads the same file with inception_load_keras_h5 and reproduces:
 *   - the resize to 75 px (TensorFlow's ResizeBilinear, half-pixel centres): the same float32
 *     formula, so within 2e-6 on values in [0, 1];
 *   - the 2048 features of every image: relative L2 error <= 2e-5 per set. Both sides run
 *     94 float32 convolutions (TensorFlow's oneDNN vs ours, different summation orders, BN
 *     folded into the kernels here): rounding of ~1e-7 relative per layer, amplified by
 *     depth; measured 1.3e-6 (docs/kid.md). A misordered layer or a wrong padding changes
 *     the features by O(1);
 *   - the KID per batch and its mean: |diff| <= 1e-4 * (1 + |kid|). Keras sums the float32
 *     kernel values ((x.y/2048 + 1)^3 ~ 10) in float32 where kid.c uses double (~1e-6
 *     relative of each mean), and the feature error above moves the kernel means by
 *     ~3 * 1e-6 relative; KID is a difference of three means of order 10: ~1e-5 absolute,
 *     measured 6e-6;
 *   - the KID arithmetic alone, from Keras's own features: 1e-4 * (1 + |kid|).
 * The weights file is Keras's own save_weights output (weight_names = [] stored as float64,
 * checked here), and the same file with layer_names split in chunks as Keras writes long
 * lists loads the same weights.
 * And the errors: a missing file, a file without Keras's layout, a layer of the wrong
 * shape (the message must name the layer). */
#include "h5_util.h"
#include "inception.h"
#include "kid.h"
#include "test_util.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S = 64, F = INCEPTION_FEATURES };

static float *read_all(hid_t f, const char *path, const char *name, size_t n)
{
    char err[512];
    float *v = test_alloc_zeros(n);
    if (h5u_read_floats(f, path, name, v, n, err, sizeof err) != 0)
        test_fail("%s", err);
    return v;
}

static double attr(hid_t f, const char *path, const char *name)
{
    double v = 0;
    size_t n = 1;
    char err[512];
    if (h5u_read_attr_doubles(f, path, "/", name, &v, &n, err, sizeof err) != 0)
        test_fail("%s", err);
    return v;
}

static void check_scalar(const char *what, double got, double want, double tol)
{
    int ok = fabs(got - want) <= tol && isfinite(got);
    printf("%s %-34s got %.8g want %.8g |diff| %.3g (tol %.3g)\n", ok ? "ok  " : "FAIL", what, got,
           want, fabs(got - want), tol);
    if (!ok)
        test_fail("%s: got %.8g, want %.8g", what, got, want);
}

/* The weights file with the kernel of the `which`-th weighted layer replaced by one of the
 * wrong shape: the loader must refuse it and name that layer. */
static void check_wrong_shape(struct backend *be, const char *weights)
{
    const char *tmp = "/tmp/ddim_test_kid_wrong_shape.h5";
    char cmd[1024], err[1024];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", weights, tmp);
    if (system(cmd) != 0) {
        test_fail("cannot copy %s", weights);
        return;
    }
    hid_t f = H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT);
    char **names = NULL, **wn = NULL;
    int n = 0, nw = 0;
    if (f < 0 || h5u_read_attr_strings(f, tmp, "/", "layer_names", &names, &n, err, sizeof err)) {
        test_fail("cannot open %s: %s", tmp, err);
        return;
    }
    const char *victim = names[30]; /* a Conv2D in mixed0 */
    h5u_read_attr_strings(f, tmp, victim, "weight_names", &wn, &nw, err, sizeof err);
    char ds[512];
    snprintf(ds, sizeof ds, "/%s/%s", victim, nw > 0 ? wn[0] : "?");
    float one = 1.0f;
    if (nw < 1 || H5Ldelete(f, ds, H5P_DEFAULT) < 0 || h5u_write_floats(f, ds, &one, 1) != 0)
        test_fail("cannot replace %s in %s", ds, tmp);
    H5Fclose(f);
    struct kid_encoder *e = kid_encoder_create(be, tmp, S, 75, 4, err, sizeof err);
    if (e || !strstr(err, victim))
        test_fail("wrong shape of layer '%s': expected an error naming it, got '%s'", victim,
                  e ? "success" : err);
    else
        printf("ok   wrong shape refused: %s\n", err);
    kid_encoder_destroy(e);
    h5u_free_strings(names, n);
    h5u_free_strings(wn, nw);
    remove(tmp);
}

/* The fixture is Keras's own file: its layers without weights hold weight_names = [] as
 * tf_keras's save_weights leaves it, a float64 array of length 0 (what a reader of strings
 * only refused), so the loads above went through that encoding. */
static void check_keras_layout(const char *weights)
{
    char err[1024], **names = NULL;
    int n = 0, empty_float = 0;
    hid_t f = h5u_open_read(weights, err, sizeof err);
    if (f < 0 ||
        h5u_read_attr_strings(f, weights, "/", "layer_names", &names, &n, err, sizeof err) != 0) {
        test_fail("%s", err);
        return;
    }
    for (int i = 0; i < n; i++) {
        hid_t a = H5Aopen_by_name(f, names[i], "weight_names", H5P_DEFAULT, H5P_DEFAULT);
        hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
        empty_float += H5Tget_class(t) == H5T_FLOAT && H5Sget_simple_extent_npoints(sp) == 0;
        H5Sclose(sp);
        H5Tclose(t);
        H5Aclose(a);
    }
    H5Fclose(f);
    h5u_free_strings(names, n);
    if (empty_float != 123)
        test_fail("%s: %d layers with a float64 [] weight_names, Keras's save_weights leaves 123",
                  weights, empty_float);
    else
        printf("ok   %d layers hold weight_names = [] as float64, as Keras wrote them\n",
               empty_float);
}

/* Keras splits a name list too long for one object header into layer_names0, 1, ...: the
 * fixture with its layer_names so split loads the same weights (the same features). */
static void check_chunked_names(struct backend *be, const char *weights, const float *image,
                                const float *want)
{
    const char *tmp = "/tmp/ddim_test_kid_chunked_names.h5";
    char cmd[1024], err[1024], **names = NULL;
    int n = 0;
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", weights, tmp);
    hid_t f = system(cmd) == 0 ? H5Fopen(tmp, H5F_ACC_RDWR, H5P_DEFAULT) : -1;
    if (f < 0 || h5u_read_attr_strings(f, tmp, "/", "layer_names", &names, &n, err, sizeof err)) {
        test_fail("cannot copy and open %s", tmp);
        return;
    }
    H5Adelete(f, "layer_names");
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    for (int k = 0; k < 2; k++) {
        hsize_t m = k ? (hsize_t)(n - n / 2) : (hsize_t)(n / 2);
        char attr[32];
        snprintf(attr, sizeof attr, "layer_names%d", k);
        hid_t sp = H5Screate_simple(1, &m, NULL);
        hid_t a = H5Acreate2(f, attr, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, names + (k ? n / 2 : 0));
        H5Aclose(a);
        H5Sclose(sp);
    }
    H5Tclose(t);
    H5Fclose(f);
    h5u_free_strings(names, n);
    struct kid_encoder *e = kid_encoder_create(be, tmp, S, 75, 4, err, sizeof err);
    if (!e) {
        test_fail("layer_names in two chunks: %s", err);
    } else {
        float *got = test_alloc_zeros(F);
        kid_encode(e, image, 1, got);
        test_close("layer_names in two chunks: features", got, want, F, 1e-5f, 1e-5f);
        free(got);
    }
    kid_encoder_destroy(e);
    remove(tmp);
}

static void check_errors(struct backend *be, const char *weights)
{
    char err[1024];
    struct kid_encoder *e =
        kid_encoder_create(be, "/nonexistent/inception.h5", S, 75, 4, err, sizeof err);
    if (e || !strstr(err, "/nonexistent/inception.h5"))
        test_fail("missing weights file: expected an error naming it, got '%s'", e ? "" : err);
    kid_encoder_destroy(e);
    e = kid_encoder_create(be, "tests/data/keras_small.h5", S, 75, 4, err, sizeof err);
    if (e || !strstr(err, "layer_names"))
        test_fail("a file without layer_names: expected an error naming it, got '%s'",
                  e ? "" : err);
    kid_encoder_destroy(e);
    check_wrong_shape(be, weights);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s WEIGHTS.h5 KID_REFERENCE.h5\n", argv[0]);
        return 2;
    }
    char err[1024];
    hid_t f = h5u_open_read(argv[2], err, sizeof err);
    if (f < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int batch = (int)attr(f, argv[2], "batch_size");
    size_t sh[H5U_MAX_DIMS];
    int nd = 0;
    if (h5u_shape(f, argv[2], "real", &nd, sh, err, sizeof err) != 0 || nd != 4 || sh[1] != S) {
        fprintf(stderr, "%s: dataset 'real' missing or not (N, 64, 64, 3)\n", argv[2]);
        return 1;
    }
    int n = (int)sh[0], nb = n / batch;
    size_t per = (size_t)S * S * 3;
    float *real = read_all(f, argv[2], "real", n * per);
    float *gen = read_all(f, argv[2], "generated", n * per);
    float *want_fr = read_all(f, argv[2], "features_real", (size_t)n * F);
    float *want_fg = read_all(f, argv[2], "features_generated", (size_t)n * F);
    float *want_resized = read_all(f, argv[2], "resized_real", 2 * 75 * 75 * 3);
    float *want_batches = read_all(f, argv[2], "kid_batches", (size_t)nb);
    double want_kid = attr(f, argv[2], "kid");
    H5Fclose(f);

    struct backend *be = cpu_backend_create();
    float *resized = test_alloc_zeros(2 * 75 * 75 * 3);
    be->resize_bilinear_forward(be, resized, real, 2, S, S, 3, 75, 75);
    test_close("resize 64->75 vs tf", resized, want_resized, 2 * 75 * 75 * 3, 2e-6f, 0.0f);

    /* KID arithmetic alone, from Keras's features */
    double mean_ref = 0;
    for (int b = 0; b < nb; b++) {
        double sums[3];
        kid_kernel_sums(want_fr + (size_t)b * batch * F, want_fg + (size_t)b * batch * F, batch, F,
                        sums);
        double k = kid_from_sums(sums, batch);
        mean_ref += k / nb;
        check_scalar("kid of keras features, batch", k, want_batches[b],
                     1e-4 * (1 + fabs(want_batches[b])));
    }
    check_scalar("kid of keras features", mean_ref, want_kid, 1e-4 * (1 + fabs(want_kid)));

    struct kid_encoder *e = kid_encoder_create(be, argv[1], S, 75, batch, err, sizeof err);
    if (!e) {
        test_fail("%s", err);
        return test_finish("test_kid_fixture");
    }
    float *fr = test_alloc_zeros((size_t)n * F), *fg = test_alloc_zeros((size_t)n * F);
    double kid = 0;
    for (int b = 0; b < nb; b++) {
        size_t off = (size_t)b * batch;
        kid_encode(e, real + off * per, batch, fr + off * F);
        kid_encode(e, gen + off * per, batch, fg + off * F);
        double sums[3];
        kid_kernel_sums(fr + off * F, fg + off * F, batch, F, sums);
        double k = kid_from_sums(sums, batch);
        kid += k / nb;
        check_scalar("kid, batch", k, want_batches[b], 1e-4 * (1 + fabs(want_batches[b])));
    }
    test_rel_l2("features of the real images", fr, want_fr, (size_t)n * F, 2e-5);
    test_rel_l2("features of the generated images", fg, want_fg, (size_t)n * F, 2e-5);
    check_scalar("kid (mean over batches)", kid, want_kid, 1e-4 * (1 + fabs(want_kid)));
    /* a short batch is padded: the features of its images do not change */
    float *f3 = test_alloc_zeros((size_t)3 * F);
    kid_encode(e, real, 3, f3);
    test_close("features of a short batch", f3, fr, (size_t)3 * F, 1e-5f, 1e-5f);
    kid_encoder_destroy(e);
    check_keras_layout(argv[1]);
    check_chunked_names(be, argv[1], real, fr);
    check_errors(be, argv[1]);
    be->destroy(be);
    free(real), free(gen), free(want_fr), free(want_fg), free(want_resized), free(want_batches);
    free(resized), free(fr), free(fg), free(f3);
    return test_finish("test_kid_fixture");
}
