/* test_sample_modes.c: ddim-sample's sampling modes on a tiny run trained for one epoch
 * (CPU): eta 0 is the deterministic sampler bit for bit; eta > 0 reproduces with its seed
 * and changes with another (same initial noises); --noise of what --save-noise wrote draws
 * the same images bit for bit; the interpolation's ends are the two noises' images; a
 * sweep's rows are the grids of their step counts; the trajectory's PNG and GIF have a
 * frame per step (Heun: one more) and its final images are the grid's; the Heun sampler
 * reports 2K + 1 evaluations and converges faster than DDIM (in process: its error against
 * a many-step reference falls faster with the number of steps); bad noise files and option
 * clashes fail with clear messages.
 *
 * usage: test_sample_modes PATH/TO/ddim-prep PATH/TO/ddim-sample */
#define _POSIX_C_SOURCE 200809L
#include "config.h"
#include "h5_util.h"
#include "image_grid.h"
#include "image_io.h"
#include "infer_model.h"
#include "sample_io.h"
#include "sampler.h"
#include "test_run_util.h"
#include "test_util.h"
#include "train_loop.h"
#include "trainer.h"
#include "util.h"

#include <gif_lib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *sample_bin;
static char dir[] = "/tmp/ddim_sample_modes_XXXXXX";
static char ck[1200];
static char out[16384]; /* the last run's stderr and stdout */

/* Runs ddim-sample --checkpoint CK --backend cpu ARGS (printf-style); its exit code. */
static int sample(const char *fmt, ...)
{
    char args[4096], cmd[8192], log[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(log, sizeof log, "%s/out.txt", dir);
    snprintf(cmd, sizeof cmd, "cd %s && %s --checkpoint %s --backend cpu %s > %s 2>&1", dir,
             sample_bin, ck, args, log);
    int st = system(cmd);
    FILE *f = fopen(log, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f)
        fclose(f);
    printf("$ ddim-sample %s\n%s", args, out);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void expect(int ok, const char *what)
{
    if (ok)
        printf("ok   %s\n", what);
    else
        test_fail("%s", what);
}

/* Dataset `name` (N, 16, 16, 3) of DIR/file as floats (malloc'd; NULL on error), *n = N. */
static float *read_set(const char *file, const char *name, int *n)
{
    char path[256], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    hid_t f = h5u_open_read(path, err, sizeof err);
    int nd = 0;
    size_t shape[H5U_MAX_DIMS];
    float *v = NULL;
    if (f >= 0 && h5u_shape(f, path, name, &nd, shape, err, sizeof err) == 0 && nd == 4 &&
        shape[1] == 16 && shape[2] == 16 && shape[3] == 3) {
        size_t count = shape[0] * 16 * 16 * 3;
        v = malloc(count * sizeof(float));
        *n = (int)shape[0];
        if (h5u_read_floats(f, path, name, v, count, err, sizeof err) != 0) {
            free(v);
            v = NULL;
        }
    }
    if (f >= 0)
        H5Fclose(f);
    if (!v)
        test_fail("%s: no %s of shape (N, 16, 16, 3): %s", path, name, err);
    return v;
}

enum { PER = 16 * 16 * 3 };

/* Whether images a_first.. of file a equal images b_first.. of file b, count of them. */
static int same(const char *a, int a_first, const char *b, int b_first, int count)
{
    int na = 0, nb = 0;
    float *va = read_set(a, "/images", &na), *vb = read_set(b, "/images", &nb);
    int ok = va && vb && a_first + count <= na && b_first + count <= nb &&
             !memcmp(va + (size_t)a_first * PER, vb + (size_t)b_first * PER,
                     (size_t)count * PER * sizeof(float));
    free(va);
    free(vb);
    return ok;
}

static void check_png(const char *file, int rows, int cols)
{
    struct image_u8 img = {0};
    char path[256], err[512];
    int w, h;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    image_grid_dims(rows, cols, 16, &w, &h);
    if (image_load(path, &img, err, sizeof err) != 0)
        test_fail("%s", err);
    else
        expect(img.width == w && img.height == h, "the PNG holds the grid the mode lays out");
    image_free(&img);
}

/* The number of frames of a GIF (DGifSlurp), checking each frame's size; -1 on error. */
static int gif_frames(const char *file, int rows, int cols)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int code = 0, w, h;
    image_grid_dims(rows, cols, 16, &w, &h);
    GifFileType *g = DGifOpenFileName(path, &code);
    if (!g || DGifSlurp(g) != GIF_OK) {
        test_fail("%s: giflib cannot read it (%s)", path, GifErrorString(g ? g->Error : code));
        if (g)
            DGifCloseFile(g, &code);
        return -1;
    }
    int frames = g->ImageCount;
    for (int i = 0; i < frames; i++)
        if (g->SavedImages[i].ImageDesc.Width != w || g->SavedImages[i].ImageDesc.Height != h)
            frames = -1;
    if (g->SWidth != w || g->SHeight != h)
        frames = -1;
    DGifCloseFile(g, &code);
    return frames;
}

/* ||a - b|| / ||b|| */
static double rel_error(const float *a, const float *b, size_t n)
{
    double d = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(d / fmax(r, 1e-30));
}

/* In process: eta 0 is trainer_sample bit for bit. The predicted images of DDIM and Heun with K =
 * 16, 32, 64 steps against Heun with 256 steps. DDIM is Euler's method on the ODE (error ~ 1/K),
 * Heun second order
 * (~ 1/K^2). Seen (trained 1 epoch): DDIM 0.7, Heun 1.65 (orders below 1 and 2: the
 * schedule's signal rate 0.02 at time 1 makes the first steps stiff). */
static void test_in_process(void)
{
    char err[2048];
    struct infer_model ew;
    if (infer_model_load(ck, 1, &ew, err, sizeof err) != 0) {
        test_fail("%s", err);
        return;
    }
    struct backend *be = cpu_backend_create();
    struct comm *comm = comm_single();
    struct trainer *t =
        trainer_create(be, comm, &ew.cfg.model, &ew.cfg.diffusion, 1, 1, 0, err, sizeof err);
    if (!t)
        DDIM_FATAL("%s", err);
    be->upload(be, t->ema_w, ew.ew.w, unet_params(ew.net)->total * sizeof(float));
    trainer_set_normalizer(t, ew.ew.norm, ew.ew.norm + 3);
    int n = 2;
    size_t count = (size_t)n * t->per_image;
    float *noise = be->alloc(be, count * sizeof(float));
    be->fill_normal(be, noise, n, t->per_image, 7, 0, RNG_SAMPLE_NOISE, 0, NULL);
    float *ref = malloc(count * sizeof(float)), *got = malloc(count * sizeof(float));
    float *dev = be->alloc(be, count * sizeof(float));
    struct sample_options heun = {.kind = SAMPLER_HEUN}, ddim = {.kind = SAMPLER_DDIM};
    /* eta 0 against the sampler the training run draws its grids with (no options) */
    struct sample_options eta = {.kind = SAMPLER_DDIM, .eta = 0.0f, .seed = 3};
    trainer_sample(t, noise, n, 5, NULL, dev);
    be->download(be, ref, dev, count * sizeof(float));
    trainer_sample_ex(t, noise, n, 5, &eta, NULL, dev);
    be->download(be, got, dev, count * sizeof(float));
    expect(!memcmp(ref, got, count * sizeof(float)),
           "eta 0 (in process): trainer_sample's images, bit for bit");
    /* the inference model alone (no trainer), as ddim-sample runs it */
    struct infer_net net;
    char why[512];
    if (infer_model_upload(&ew, be, comm, &net, why, sizeof why) != 0)
        test_fail("infer_model_upload: %s", why);
    sampler_run(&net, noise, n, 5, NULL, NULL, dev);
    sampler_run(&net, noise, n, 5, NULL, NULL, dev); /* again, on its kept buffers */
    be->download(be, got, dev, count * sizeof(float));
    infer_net_release(&net);
    expect(!memcmp(ref, got, count * sizeof(float)),
           "the inference model (no trainer): trainer_sample's images, bit for bit");
    eta.eta = 0.5f;
    trainer_sample_ex(t, noise, n, 5, &eta, NULL, dev);
    be->download(be, got, dev, count * sizeof(float));
    expect(memcmp(ref, got, count * sizeof(float)) != 0, "eta 0.5 (in process): other images");
    int evaluations = trainer_sample_ex(t, noise, n, 256, &heun, dev, NULL);
    be->download(be, ref, dev, count * sizeof(float));
    expect(evaluations == 513, "Heun with 256 steps: 513 network evaluations");
    double e[2][3];
    for (int k = 0; k < 3; k++)
        for (int s = 0; s < 2; s++) {
            int steps = 16 << k;
            trainer_sample_ex(t, noise, n, steps, s ? &heun : &ddim, dev, NULL);
            be->download(be, got, dev, count * sizeof(float));
            e[s][k] = rel_error(got, ref, count);
            printf("     %s %2d steps: relative error %.3e\n", s ? "heun" : "ddim", steps, e[s][k]);
        }
    /* orders: log2 of the error's fall per doubling of the steps */
    double order_ddim = log2(e[0][0] / e[0][2]) / 2, order_heun = log2(e[1][0] / e[1][2]) / 2;
    printf("     observed order: ddim %.2f, heun %.2f\n", order_ddim, order_heun);
    expect(order_heun > order_ddim + 0.5 && order_heun > 1.4 && e[1][2] < 0.5 * e[0][2],
           "Heun converges faster than DDIM (second order against first)");
    free(ref);
    free(got);
    be->free(be, noise);
    be->free(be, dev);
    trainer_destroy(t);
    be->destroy(be);
    comm->destroy(comm);
    infer_model_free(&ew);
}

static void test_eta_and_noise(void)
{
    const char *common = "--num-images 3 --steps 4";
    expect(sample("%s --seed 1 --images-h5 det.h5 --save-noise noise.h5", common) == 0 &&
               sample("%s --seed 1 --eta 0 --images-h5 eta0.h5", common) == 0 &&
               same("det.h5", 0, "eta0.h5", 0, 3),
           "--eta 0: the deterministic sampler, bit for bit");
    expect(sample("--noise noise.h5 --steps 4 --seed 99 --images-h5 again.h5") == 0 &&
               same("det.h5", 0, "again.h5", 0, 3),
           "--noise of the --save-noise file (another --seed): the same images, bit for bit");
    int n = 0;
    float *a = read_set("noise.h5", "/noise", &n);
    expect(a && n == 3, "--save-noise: float32 /noise of shape (3, 16, 16, 3)");
    free(a);
    expect(sample("--noise noise.h5 --steps 4 --eta 1 --seed 5 --images-h5 s5.h5") == 0 &&
               sample("--noise noise.h5 --steps 4 --eta 1 --seed 5 --images-h5 s5b.h5") == 0 &&
               same("s5.h5", 0, "s5b.h5", 0, 3),
           "--eta 1: the same seed, the same images");
    expect(sample("--noise noise.h5 --steps 4 --eta 1 --seed 6 --images-h5 s6.h5") == 0 &&
               !same("s5.h5", 0, "s6.h5", 0, 1) && !same("s5.h5", 0, "det.h5", 0, 1),
           "--eta 1: the same initial noises with another seed (or eta 0) give other images");
    expect(sample("--noise noise.h5 --steps 4 --eta 1 --seed 5 --num-images 1 "
                  "--images-h5 s5one.h5") == 0 &&
               same("s5.h5", 0, "s5one.h5", 0, 1),
           "--eta 1: an image does not depend on how many are drawn with it");
}

static void test_modes(void)
{
    expect(sample("--interpolate 5 --seed 3 --steps 4 --output i.png --gif i.gif "
                  "--images-h5 i.h5") == 0 &&
               sample("--num-images 2 --seed 3 --steps 4 --images-h5 ends.h5") == 0 &&
               same("i.h5", 0, "ends.h5", 0, 1) && same("i.h5", 4, "ends.h5", 1, 1) &&
               !same("i.h5", 2, "ends.h5", 0, 1) && !same("i.h5", 2, "ends.h5", 1, 1),
           "--interpolate: the ends are the two noises' images, the middle neither");
    check_png("i.png", 1, 5);
    expect(gif_frames("i.gif", 1, 1) == 5, "--interpolate --gif: one frame per image");

    expect(sample("--sweep 1,3 --num-images 3 --seed 2 --output sw.png --images-h5 sw.h5") == 0 &&
               sample("--num-images 3 --seed 2 --steps 3 --images-h5 sw3.h5") == 0 &&
               same("sw.h5", 3, "sw3.h5", 0, 3) && !same("sw.h5", 0, "sw3.h5", 0, 1),
           "--sweep 1,3: row 2 is the 3-step grid of the same noises, row 1 differs");
    check_png("sw.png", 2, 3);

    expect(sample("--trajectory --num-images 2 --steps 4 --seed 2 --output t.png --gif t.gif "
                  "--images-h5 t.h5") == 0 &&
               sample("--num-images 2 --steps 4 --seed 2 --images-h5 t4.h5") == 0 &&
               same("t.h5", 0, "t4.h5", 0, 2),
           "--trajectory: its final images are the grid's");
    check_png("t.png", 4, 4);
    expect(gif_frames("t.gif", 2, 2) == 4, "--trajectory --gif: a frame per step");
    expect(sample("--trajectory --sampler heun --num-images 1 --steps 3 --gif th.gif") == 0 &&
               strstr(out, "7 network evaluations") && gif_frames("th.gif", 2, 1) == 4,
           "--sampler heun: 2K + 1 evaluations reported, K + 1 trajectory frames");
}

/* Writes /noise of the given shape and type into DIR/file: zeros, or a NaN at element 5 of
 * noise 1. */
static void write_noise(const char *file, int n, int size, hid_t type, int nan)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {(hsize_t)n, (hsize_t)size, (hsize_t)size, 3};
    hid_t sp = H5Screate_simple(4, dims, NULL);
    hid_t d = H5Dcreate2(f, "noise", type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double *zeros = calloc((size_t)n * size * size * 3, sizeof(double));
    if (nan)
        zeros[(size_t)size * size * 3 + 5] = NAN;
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
    free(zeros);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
}

static void test_errors(void)
{
    write_noise("n8.h5", 2, 8, H5T_IEEE_F32LE, 0);
    expect(sample("--noise n8.h5 --output x.png") == 1 && strstr(out, "n8.h5") &&
               strstr(out, "/noise") && strstr(out, "(2, 8, 8, 3)") &&
               strstr(out, "(N, 16, 16, 3)"),
           "--noise of another size: names the file, the dataset, its and the expected shape");
    write_noise("n64.h5", 2, 16, H5T_IEEE_F64LE, 0);
    expect(sample("--noise n64.h5 --output x.png") == 1 && strstr(out, "not float32"),
           "--noise stored as float64: 'not float32'");
    write_noise("nan.h5", 2, 16, H5T_IEEE_F32LE, 1);
    expect(sample("--noise nan.h5 --output x.png") == 1 && strstr(out, "nan.h5") &&
               strstr(out, "at noise 1, element 5"),
           "--noise holding a NaN: names the noise and element");
    expect(sample("--noise det.h5 --output x.png") == 1 && strstr(out, "no dataset '/noise'"),
           "--noise without /noise: says so");
    expect(sample("--noise noise.h5 --num-images 5 --output x.png") == 2 &&
               strstr(out, "holds 3 initial noises; 5 are needed"),
           "--noise with too few noises: says how many it holds");
    expect(sample("--eta 1.5 --output x.png") == 2 && strstr(out, "[0, 1]"), "--eta 1.5: range");
    expect(sample("--sampler heun --eta 0.5 --output x.png") == 2 && strstr(out, "deterministic"),
           "--sampler heun with --eta: refused");
    expect(sample("--sampler euler --output x.png") == 2 && strstr(out, "ddim or heun"),
           "--sampler euler: names the choices");
    expect(sample("--gif x.gif") == 2 && strstr(out, "--trajectory or --interpolate"),
           "--gif of a grid: refused");
    expect(sample("--sweep 1,2 --trajectory --output x.png") == 2 && strstr(out, "give one"),
           "two modes: refused");
    expect(sample("--sweep 1,,2 --output x.png") == 2 && strstr(out, "--sweep"),
           "--sweep 1,,2: refused");
    expect(sample("--trajectory --num-images 65 --output x.png") == 2 && strstr(out, "at most"),
           "--trajectory of too many images: refused");
    expect(sample("--trajectory --num-images 64 --steps 100 --output x.png") == 2 &&
               strstr(out, "(100 + 1) x 64"),
           "--trajectory of too many frames: refused");
    expect(sample("--help") == 0 && strstr(out, "--sweep") && strstr(out, "--sampler") &&
               strstr(out, "--save-noise"),
           "--help explains the new options");
}

int main(int argc, char **argv)
{
    struct run_config cfg;
    if (test_tiny_run_setup("test_sample_modes", argc, argv, dir, &cfg) != 0)
        return 1;
    sample_bin = argv[2];
    char cmd[2048];
    /* The example's highest embedding frequency (1000) makes an untrained network's noise
     * prediction oscillate in time with a period of 1/1000 in the noise variance: no
     * sampler reaches its asymptotic order below thousands of steps. A smooth embedding
     * lets the convergence test see the orders at 16 to 64 steps. */
    cfg.model.embedding_max_frequency = 2.0f;
    if (test_train_cpu("test_sample_modes", &cfg) != 0)
        return 1;
    snprintf(ck, sizeof ck, "%s/checkpoint.h5", cfg.run_dir);
    test_in_process();
    test_eta_and_noise();
    test_modes();
    test_errors();
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (test_failures() == 0 && system(cmd) != 0)
        fprintf(stderr, "test_sample_modes: could not remove %s\n", dir);
    return test_finish("test_sample_modes");
}
