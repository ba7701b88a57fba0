/* sample_modes.h: what ddim-sample draws (src/programs/ddim_sample.c parses the options): the grid
 * of the Keras example, a sweep over step counts, a spherical interpolation between two
 * initial noises and the sampling trajectory, each with the DDIM (eta) or Heun sampler,
 * written as PNG, animated GIF and HDF5. */
#ifndef DDIM_SAMPLE_MODES_H
#define DDIM_SAMPLE_MODES_H

#include "backend.h"
#include "infer_model.h"
#include "sampler.h"

#include <stddef.h>
#include <stdint.h>

enum sample_mode { SAMPLE_GRID = 0, SAMPLE_SWEEP, SAMPLE_INTERPOLATE, SAMPLE_TRAJECTORY };
/* limits: sweep settings; trajectory images, and images times frames (memory) */
enum { SAMPLE_MAX_SWEEP = 32, SAMPLE_TRAJECTORY_MAX = 64, SAMPLE_TRAJECTORY_FRAMES = 4096 };

struct sample_plan {
    enum sample_mode mode;
    const char *backend;        /* auto, cpu or cuda */
    int num_images, rows, cols; /* the images drawn and the PNG grid (GRID, INTERPOLATE) */
    int steps;                  /* all modes but SWEEP */
    int sweep[SAMPLE_MAX_SWEEP], sweep_count;
    enum sampler_kind kind;
    float eta;
    uint64_t seed;      /* keys the initial noise (unless given) and eta's */
    const float *noise; /* given initial noises (--noise) or NULL */
    int noise_count;
    const char *output, *gif, *images_h5, *save_noise; /* NULL: not written */
    const char *program; /* prefixes progress lines; NULL: "ddim-sample" */
};

/* Draws what the plan asks with the EMA network of ew and writes its files. Progress and
 * the number of network evaluations go to stderr. 0, or -1 with a message. */
int sample_run(const struct sample_plan *p, const struct infer_model *ew, char *err, size_t errlen);

/* The images of the grid mode without its files: p->num_images images drawn with p->steps
 * steps from the seed's initial noises (or p->noise), exactly those that sample_run's grid
 * writes with --images-h5 before quantization, on the caller's backend be. Returns them,
 * (n, S, S, 3) host floats in [0, 1] (malloc'd), and the network evaluations per image; NULL
 * with a message when the backend cannot run the model (infer_model_upload). */
float *sample_images(struct backend *be, const struct sample_plan *p, const struct infer_model *ew,
                     int *evaluations, char *err, size_t errlen);

/* Spherical interpolation (slerp) of two noises a, b (count floats) at n points,
 * out (n, count): point 0 is a and point n-1 is b exactly. */
void sample_slerp(const float *a, const float *b, size_t count, int n, float *out);

#endif
