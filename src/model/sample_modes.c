/* sample_modes.c: see sample_modes.h. Initial noises live on the host (drawn from the
 * Philox stream of --seed, or read from --noise) and are sampled SAMPLE_CHUNK images at a
 * time; image i's result depends only on its noise, its index (eta's stream) and the
 * settings, never on the chunking. */
#include "sample_modes.h"
#include "gif_write.h"
#include "image_grid.h"
#include "launch.h"
#include "sample_io.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SAMPLE_CHUNK = 64, GIF_DELAY_CS = 10, PROGRESS_SECONDS = 5 };

struct session {
    struct backend *be;
    struct comm *comm;
    struct infer_net net; /* the EMA network and normalizer on the backend */
    size_t per;           /* S*S*3 */
    int size;             /* S */
    int own_be;           /* whether session_close destroys be */
    float *dev_in;        /* (SAMPLE_CHUNK, S, S, 3) initial noises */
    float *dev_out;       /* (SAMPLE_CHUNK, S, S, 3) images */
};

/* be: the backend to sample on (the caller's), or NULL to pick one by p->backend (then the
 * session owns it). */
static int session_open(struct session *s, const struct sample_plan *p,
                        const struct infer_model *ew, struct backend *be, char *err, size_t errlen)
{
    const struct run_config *run = &ew->cfg;
    s->comm = comm_single();
    s->own_be = be == NULL;
    s->be = be ? be : launch_pick_backend(p->backend ? p->backend : "auto", s->comm, "ddim-sample");
    if (infer_model_upload(ew, s->be, s->comm, &s->net, err, errlen) != 0) {
        if (s->own_be)
            launch_finish(s->comm, s->be, s->comm);
        else
            s->comm->destroy(s->comm);
        return -1;
    }
    s->per = s->net.per_image;
    s->size = run->model.image_size;
    s->dev_in = s->be->alloc(s->be, SAMPLE_CHUNK * s->per * sizeof(float));
    s->dev_out = s->be->alloc(s->be, SAMPLE_CHUNK * s->per * sizeof(float));
    return 0;
}

static void session_close(struct session *s)
{
    s->be->free(s->be, s->dev_in);
    s->be->free(s->be, s->dev_out);
    infer_net_release(&s->net);
    if (s->own_be)
        launch_finish(s->comm, s->be, s->comm);
    else
        s->comm->destroy(s->comm);
}

/* n initial noises (host, malloc'd): the given ones, or images 0..n-1 of the seed's stream. */
static float *initial_noises(struct session *s, const struct sample_plan *p, int n)
{
    float *noise = util_xmalloc((size_t)n * s->per * sizeof(float));
    if (p->noise) {
        memcpy(noise, p->noise, (size_t)n * s->per * sizeof(float));
        return noise;
    }
    for (int first = 0; first < n; first += SAMPLE_CHUNK) {
        int m = n - first < SAMPLE_CHUNK ? n - first : SAMPLE_CHUNK;
        s->be->fill_normal(s->be, s->dev_in, m, s->per, p->seed, 0, RNG_SAMPLE_NOISE,
                           (uint32_t)first, NULL);
        s->be->download(s->be, noise + (size_t)first * s->per, s->dev_in,
                        (size_t)m * s->per * sizeof(float));
    }
    return noise;
}

static const char *program(const struct sample_plan *p)
{
    return p->program ? p->program : "ddim-sample";
}

static struct sample_options options_for(const struct sample_plan *p, uint32_t first)
{
    struct sample_options so = {.kind = p->kind, .eta = p->eta, .seed = p->seed, .first = first};
    return so;
}

/* images (n, S, S, 3) in [0, 1] from noise (n, S, S, 3), both host memory. Returns the
 * network evaluations per image. A progress line every PROGRESS_SECONDS of a long run. */
static int sample_all(struct session *s, const struct sample_plan *p, const float *noise, int n,
                      int steps, float *images)
{
    int evaluations = 0;
    double start = util_now(), last = start;
    for (int first = 0; first < n; first += SAMPLE_CHUNK) {
        int m = n - first < SAMPLE_CHUNK ? n - first : SAMPLE_CHUNK;
        size_t bytes = (size_t)m * s->per * sizeof(float);
        s->be->upload(s->be, s->dev_in, noise + (size_t)first * s->per, bytes);
        struct sample_options so = options_for(p, (uint32_t)first);
        evaluations = sampler_run(&s->net, s->dev_in, m, steps, &so, NULL, s->dev_out);
        s->be->download(s->be, images + (size_t)first * s->per, s->dev_out, bytes);
        if (util_now() - last > PROGRESS_SECONDS && first + m < n) {
            util_log("%s: %d/%d images sampled (%.1f s)\n", program(p), first + m, n,
                     util_now() - start);
            last = util_now();
        }
    }
    return evaluations;
}

void sample_slerp(const float *a, const float *b, size_t count, int n, float *out)
{
    double dot = 0.0, na = 0.0, nb = 0.0;
    for (size_t j = 0; j < count; j++) {
        dot += (double)a[j] * b[j];
        na += (double)a[j] * a[j];
        nb += (double)b[j] * b[j];
    }
    double c = na > 0.0 && nb > 0.0 ? dot / sqrt(na * nb) : 1.0;
    double omega = acos(fmax(-1.0, fmin(1.0, c))), so = sin(omega);
    for (int i = 0; i < n; i++) {
        double t = n > 1 ? (double)i / (n - 1) : 0.0;
        /* at t = 0 and 1 the weights are exactly (1, 0) and (0, 1): the endpoints are a, b */
        double wa = so > 1e-6 ? sin((1.0 - t) * omega) / so : 1.0 - t;
        double wb = so > 1e-6 ? sin(t * omega) / so : t;
        for (size_t j = 0; j < count; j++)
            out[(size_t)i * count + j] = (float)(wa * a[j] + wb * b[j]);
    }
}

/* The trajectory's frames: every step's noisy and predicted images, denormalized. */
struct trajectory {
    struct session *s;
    int n, frames, capacity;
    float *noisy, *pred; /* (capacity, n, S, S, 3) host */
};

static void trajectory_step(void *ctx, int step, const float *noisy, const float *pred_images)
{
    struct trajectory *tr = ctx;
    struct backend *be = tr->s->be;
    size_t count = (size_t)tr->n * tr->s->per;
    if (step >= tr->capacity)
        DDIM_FATAL("trajectory: step %d beyond the %d frames planned", step, tr->capacity);
    const float *src[2] = {noisy, pred_images};
    float *dst[2] = {tr->noisy + (size_t)step * count, tr->pred + (size_t)step * count};
    for (int k = 0; k < 2; k++) {
        be->denormalize(be, tr->s->dev_out, src[k], tr->s->net.norm, tr->s->net.norm + 3, count / 3,
                        3);
        be->download(be, dst[k], tr->s->dev_out, count * sizeof(float));
    }
    tr->frames = step + 1;
}

/* Frame f of the trajectory as a 2 x n grid: noisy images above, predicted ones below. */
static void trajectory_frame(const struct trajectory *tr, int f, float *cells)
{
    size_t count = (size_t)tr->n * tr->s->per;
    memcpy(cells, tr->noisy + (size_t)f * count, count * sizeof(float));
    memcpy(cells + count, tr->pred + (size_t)f * count, count * sizeof(float));
}

/* Writes frames 0..count-1 (each n_cells images in a rows x cols grid, made by `frame`) as
 * an animated GIF. */
static int write_gif(const char *path, int count, int n_cells, int rows, int cols, int size,
                     void (*frame)(const void *ctx, int f, float *cells), const void *ctx,
                     char *err, size_t errlen)
{
    int width, height;
    image_grid_dims(rows, cols, size, &width, &height);
    struct gif_writer *g = gif_writer_open(path, width, height, GIF_DELAY_CS, err, errlen);
    if (!g)
        return -1;
    float *cells = util_xmalloc((size_t)n_cells * size * size * 3 * sizeof(float));
    int rc = 0;
    for (int f = 0; rc == 0 && f < count; f++) {
        frame(ctx, f, cells);
        uint8_t *rgb = image_grid_render(cells, n_cells, rows, cols, size);
        rc = gif_writer_add(g, rgb, err, errlen);
        free(rgb);
    }
    free(cells);
    rc = gif_writer_close(g, rc == 0, err, errlen) == 0 && rc == 0 ? 0 : -1;
    if (rc == 0)
        util_log("ddim-sample: wrote %s (%d frames of %d x %d px)\n", path, count, width, height);
    return rc;
}

static void trajectory_gif_frame(const void *ctx, int f, float *cells)
{
    trajectory_frame(ctx, f, cells);
}

/* One image per frame: image f of the interpolation. */
struct strip {
    const float *images;
    size_t per;
};

static void strip_gif_frame(const void *ctx, int f, float *cells)
{
    const struct strip *st = ctx;
    memcpy(cells, st->images + (size_t)f * st->per, st->per * sizeof(float));
}

/* The files every mode may write besides its picture: the images and the initial noises. */
static int write_h5_outputs(const struct sample_plan *p, const float *images, int n_images,
                            const float *noise, int n_noise, int size, char *err, size_t errlen)
{
    if (p->images_h5) {
        if (sample_h5_write(p->images_h5, SAMPLE_IMAGES_DATASET, images, n_images, size, 1, err,
                            errlen) != 0)
            return -1;
        util_log("ddim-sample: wrote %s (%s, uint8 %d x %d x %d x 3)\n", p->images_h5,
                 SAMPLE_IMAGES_DATASET, n_images, size, size);
    }
    if (p->save_noise) {
        if (sample_h5_write(p->save_noise, SAMPLE_NOISE_DATASET, noise, n_noise, size, 0, err,
                            errlen) != 0)
            return -1;
        util_log("ddim-sample: wrote %s (%s, float32 %d x %d x %d x 3: the initial noises)\n",
                 p->save_noise, SAMPLE_NOISE_DATASET, n_noise, size, size);
    }
    return 0;
}

static int write_png(const char *path, const float *images, int n, int rows, int cols, int size,
                     char *err, size_t errlen)
{
    if (!path)
        return 0;
    if (image_grid_write_png(path, images, n, rows, cols, size, err, errlen) != 0)
        return -1;
    util_log("ddim-sample: wrote %s (%d x %d grid)\n", path, rows, cols);
    return 0;
}

static const char *sampler_name(const struct sample_plan *p)
{
    return p->kind == SAMPLER_HEUN ? "heun" : p->eta > 0.0f ? "ddim (stochastic)" : "ddim";
}

/* sample_all with a line saying what was drawn, how and how fast. */
static int sample_logged(struct session *s, const struct sample_plan *p, const float *noise, int n,
                         int steps, float *images)
{
    double start = util_now();
    int evaluations = sample_all(s, p, noise, n, steps, images);
    util_log("%s: %d images of %d px, %s sampler, %d steps (%d network evaluations per image), "
             "seed %llu, %s backend: %.2f s\n",
             program(p), n, s->size, sampler_name(p), steps, evaluations,
             (unsigned long long)p->seed, s->be->name, util_now() - start);
    return evaluations;
}

/* The grid, the sweep and the interpolation: images from noises, one row of images per
 * step count in a sweep. */
static int run_images(struct session *s, const struct sample_plan *p, char *err, size_t errlen)
{
    int n = p->num_images, interpolate = p->mode == SAMPLE_INTERPOLATE;
    float *noise = initial_noises(s, p, interpolate ? 2 : n);
    if (interpolate) {
        float *ends = noise;
        noise = util_xmalloc((size_t)n * s->per * sizeof(float));
        sample_slerp(ends, ends + s->per, s->per, n, noise);
        free(ends);
    }
    int settings = p->mode == SAMPLE_SWEEP ? p->sweep_count : 1;
    float *images = util_xmalloc((size_t)settings * n * s->per * sizeof(float));
    for (int r = 0; r < settings; r++) {
        int steps = p->mode == SAMPLE_SWEEP ? p->sweep[r] : p->steps;
        sample_logged(s, p, noise, n, steps, images + (size_t)r * n * s->per);
    }
    int rc = 0;
    if (p->mode == SAMPLE_SWEEP)
        rc = write_png(p->output, images, settings * n, settings, n, s->size, err, errlen);
    else
        rc = write_png(p->output, images, n, p->rows, p->cols, s->size, err, errlen);
    struct strip st = {images, s->per};
    if (rc == 0 && p->gif)
        rc = write_gif(p->gif, n, 1, 1, 1, s->size, strip_gif_frame, &st, err, errlen);
    if (rc == 0)
        rc = write_h5_outputs(p, images, settings * n, noise, n, s->size, err, errlen);
    free(images);
    free(noise);
    return rc;
}

/* The trajectory: every step's noisy and predicted images; the PNG has two rows per image
 * (noisy above, predicted below) and one column per step, the GIF one frame per step. */
static int run_trajectory(struct session *s, const struct sample_plan *p, char *err, size_t errlen)
{
    int n = p->num_images;
    float *noise = initial_noises(s, p, n);
    struct trajectory tr = {.s = s, .n = n, .capacity = p->steps + 1};
    size_t count = (size_t)n * s->per;
    tr.noisy = util_xmalloc((size_t)tr.capacity * count * sizeof(float));
    tr.pred = util_xmalloc((size_t)tr.capacity * count * sizeof(float));
    s->be->upload(s->be, s->dev_in, noise, count * sizeof(float));
    struct sample_options so = options_for(p, 0);
    so.on_step = trajectory_step;
    so.ctx = &tr;
    double start = util_now();
    int evaluations = sampler_run(&s->net, s->dev_in, n, p->steps, &so, NULL, NULL);
    util_log("ddim-sample: trajectory of %d images, %s sampler, %d steps, %d frames (%d network "
             "evaluations per image), %s backend: %.2f s\n",
             n, sampler_name(p), p->steps, tr.frames, evaluations, s->be->name, util_now() - start);
    int rc = 0;
    if (p->output) {
        float *cells = util_xmalloc((size_t)2 * tr.frames * count * sizeof(float));
        for (int i = 0; i < n; i++)
            for (int f = 0; f < tr.frames; f++)
                for (int k = 0; k < 2; k++)
                    memcpy(cells + ((size_t)(2 * i + k) * tr.frames + f) * s->per,
                           (k ? tr.pred : tr.noisy) + (size_t)f * count + (size_t)i * s->per,
                           s->per * sizeof(float));
        rc = write_png(p->output, cells, 2 * n * tr.frames, 2 * n, tr.frames, s->size, err, errlen);
        free(cells);
    }
    if (rc == 0 && p->gif)
        rc = write_gif(p->gif, tr.frames, 2 * n, 2, n, s->size, trajectory_gif_frame, &tr, err,
                       errlen);
    if (rc == 0)
        rc = write_h5_outputs(p, tr.pred + (size_t)(tr.frames - 1) * count, n, noise, n, s->size,
                              err, errlen);
    free(tr.noisy);
    free(tr.pred);
    free(noise);
    return rc;
}

int sample_run(const struct sample_plan *p, const struct infer_model *ew, char *err, size_t errlen)
{
    struct session s;
    memset(&s, 0, sizeof s);
    if (session_open(&s, p, ew, NULL, err, errlen) != 0)
        return -1;
    int rc = p->mode == SAMPLE_TRAJECTORY ? run_trajectory(&s, p, err, errlen)
                                          : run_images(&s, p, err, errlen);
    session_close(&s);
    return rc;
}

float *sample_images(struct backend *be, const struct sample_plan *p, const struct infer_model *ew,
                     int *evaluations, char *err, size_t errlen)
{
    struct session s;
    memset(&s, 0, sizeof s);
    if (session_open(&s, p, ew, be, err, errlen) != 0)
        return NULL;
    float *noise = initial_noises(&s, p, p->num_images);
    float *images = util_xmalloc((size_t)p->num_images * s.per * sizeof(float));
    *evaluations = sample_logged(&s, p, noise, p->num_images, p->steps, images);
    free(noise);
    session_close(&s);
    return images;
}
