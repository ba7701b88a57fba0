/* ddim_prep_synthetic.c: procedural flower-like images, so that demos and tests need no
 * download (ddim-prep --synthetic N).
 *
 * Each image is a small scene: a smooth background (gradient, out-of-focus foliage or
 * bokeh, with low-frequency brightness waves), sometimes a blurred second flower and a few
 * leaves, then the flower: one to three layers of petals in a rosette (random count, shape,
 * width, colour gradient, veins and edge shading), seen at a tilt, optional stamens and a
 * textured centre disc, under a directional light and a vignette. Everything is drawn as
 * soft-edged coverage functions and supersampled 3x3 per pixel, at the output size directly.
 *
 * Random draws come from Philox keyed by (seed, image index, draw number) (src/base/rng.h), so an
 * image depends only on (seed, index, size): runs are reproducible and images can be drawn
 * in parallel in any order. */
#include "ddim_prep.h"
#include "rng.h"

#include <math.h>
#include <string.h>

#define TWO_PI 6.2831853f
#define MAX_PETALS 32
#define MAX_LAYERS 3
#define MAX_BLOBS 16
#define MAX_LEAVES 3
#define MAX_STAMENS 40
#define SUPER 3 /* supersampling per axis */

struct draw {
    uint64_t seed;
    uint32_t index, n;
};

static float uni(struct draw *d, float lo, float hi)
{
    return lo + (hi - lo) * rng_uniform(d->seed, PREP_RNG_SYNTHETIC, 0, d->index, d->n++);
}

static int pick(struct draw *d, int n)
{
    int k = (int)uni(d, 0.0f, (float)n);
    return k < n ? k : n - 1;
}

struct rgb {
    float r, g, b;
};

static struct rgb hsv(float h, float s, float v)
{
    h = fmodf(h, 360.0f);
    if (h < 0.0f)
        h += 360.0f;
    s = fminf(fmaxf(s, 0.0f), 1.0f);
    v = fminf(fmaxf(v, 0.0f), 1.0f);
    float c = v * s, x = c * (1.0f - fabsf(fmodf(h / 60.0f, 2.0f) - 1.0f)), m = v - c;
    int sector = (int)(h / 60.0f) % 6;
    float r[6] = {c, x, 0, 0, x, c}, g[6] = {x, c, c, x, 0, 0}, b[6] = {0, 0, x, c, c, x};
    return (struct rgb){r[sector] + m, g[sector] + m, b[sector] + m};
}

/* Draws hue, saturation and value in that order (C leaves argument order unspecified). */
static struct rgb hsv_draw(struct draw *d, float h0, float h1, float s0, float s1, float v0,
                           float v1)
{
    float h = uni(d, h0, h1);
    float s = uni(d, s0, s1);
    float v = uni(d, v0, v1);
    return hsv(h, s, v);
}

static struct rgb mix(struct rgb a, struct rgb b, float t)
{
    return (struct rgb){a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

static struct rgb scale(struct rgb a, float k)
{
    return (struct rgb){a.r * k, a.g * k, a.b * k};
}

static float clamp01(float x)
{
    return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x);
}

static float smooth(float x)
{
    x = clamp01(x);
    return x * x * (3.0f - 2.0f * x);
}

/* A soft ellipse (background foliage, bokeh, stamens). */
struct blob {
    float x, y, rx, ry, ca, sa, soft, alpha;
    struct rgb col;
};

struct petal_layer {
    int k;
    float width, q, p;                                        /* shape of every petal */
    float ca[MAX_PETALS], sa[MAX_PETALS], length[MAX_PETALS]; /* per petal */
    struct rgb base, tip;
    float veins, nveins, edge_dark;
};

struct flower {
    float cx, cy, tilt_c, tilt_s, squash, soft, dim;
    int layers;
    struct petal_layer layer[MAX_LAYERS];
    int has_disc, stamens;
    float disc_r, disc_freq, disc_ca, disc_sa;
    struct rgb disc, disc_rim;
    struct blob stamen[MAX_STAMENS];
};

struct leaf {
    float x, y, ca, sa, length, width, soft;
    struct rgb col;
};

struct scene {
    struct rgb bg0, bg1;
    float gx, gy;
    int nblobs, nleaves, nflowers;
    struct blob blob[MAX_BLOBS];
    float wave[3][3], wave_amp;
    struct leaf leaf[MAX_LEAVES];
    struct flower flower[2]; /* [0] optional blurred background flower, [last] the subject */
    float lx, ly, vignette;
};

/* ---- colours ----------------------------------------------------------------------------- */

static struct rgb petal_colour(struct draw *d)
{
    switch (pick(d, 10)) {
    case 0:
        return hsv_draw(d, -10, 8, 0.75f, 1.0f, 0.6f, 0.95f); /* red */
    case 1:
        return hsv_draw(d, 320, 350, 0.3f, 0.7f, 0.8f, 1.0f); /* pink */
    case 2:
        return hsv_draw(d, 290, 320, 0.6f, 0.9f, 0.6f, 0.95f); /* magenta */
    case 3:
        return hsv_draw(d, 255, 285, 0.4f, 0.8f, 0.45f, 0.9f); /* purple */
    case 4:
        return hsv_draw(d, 215, 240, 0.45f, 0.8f, 0.55f, 0.9f); /* blue */
    case 5:
        return hsv_draw(d, 42, 58, 0.7f, 1.0f, 0.85f, 1.0f); /* yellow */
    case 6:
        return hsv_draw(d, 18, 35, 0.75f, 1.0f, 0.85f, 1.0f); /* orange */
    case 7:
        return hsv_draw(d, 0, 360, 0.0f, 0.08f, 0.88f, 1.0f); /* white */
    case 8:
        return hsv_draw(d, 40, 55, 0.1f, 0.3f, 0.9f, 1.0f); /* cream */
    default:
        return hsv_draw(d, 335, 355, 0.55f, 0.85f, 0.7f, 0.95f); /* rose */
    }
}

static struct rgb background_colour(struct draw *d)
{
    switch (pick(d, 5)) {
    case 0:
    case 1:
        return hsv_draw(d, 70, 150, 0.35f, 0.8f, 0.15f, 0.6f); /* foliage */
    case 2:
        return hsv_draw(d, 0, 360, 0.0f, 0.3f, 0.03f, 0.18f); /* shade */
    case 3:
        return hsv_draw(d, 190, 220, 0.2f, 0.6f, 0.6f, 0.95f); /* sky */
    default:
        return hsv_draw(d, 20, 40, 0.3f, 0.6f, 0.2f, 0.5f); /* soil */
    }
}

static struct rgb disc_colour(struct draw *d)
{
    switch (pick(d, 5)) {
    case 0:
        return hsv_draw(d, 45, 55, 0.8f, 1.0f, 0.8f, 1.0f); /* yellow */
    case 1:
        return hsv_draw(d, 28, 40, 0.8f, 1.0f, 0.75f, 0.95f); /* orange */
    case 2:
        return hsv_draw(d, 20, 35, 0.6f, 0.9f, 0.2f, 0.45f); /* brown */
    case 3:
        return hsv_draw(d, 0, 360, 0.2f, 0.5f, 0.06f, 0.18f); /* dark */
    default:
        return hsv_draw(d, 60, 85, 0.5f, 0.8f, 0.5f, 0.8f); /* green */
    }
}

/* ---- scene construction ------------------------------------------------------------------ */

static void make_layer(struct draw *d, struct petal_layer *l, int k, float length, float rot,
                       struct rgb colour)
{
    static const int shapes = 4;
    l->k = k;
    float wf = k <= 8 ? uni(d, 0.8f, 1.9f) : uni(d, 0.5f, 1.3f);
    l->width = fminf(wf * 0.6f * length * sinf(3.14159265f / (float)k), 0.5f * length);
    switch (pick(d, shapes)) {
    case 0:
        l->q = uni(d, 0.9f, 1.5f), l->p = uni(d, 0.3f, 0.6f);
        break; /* round, broad tip */
    case 1:
        l->q = uni(d, 0.6f, 1.0f), l->p = uni(d, 0.8f, 1.3f);
        break; /* pointed */
    case 2:
        l->q = uni(d, 1.3f, 2.2f), l->p = uni(d, 0.4f, 0.8f);
        break; /* spoon */
    default:
        l->q = uni(d, 0.8f, 1.2f), l->p = uni(d, 0.5f, 0.9f);
        break;
    }
    float jitter = uni(d, 0.0f, 0.2f) * TWO_PI / (float)k;
    for (int i = 0; i < k; i++) {
        float a = rot + TWO_PI * (float)i / (float)k + uni(d, -1.0f, 1.0f) * jitter;
        l->ca[i] = cosf(a);
        l->sa[i] = sinf(a);
        l->length[i] = length * uni(d, 0.88f, 1.06f);
    }
    l->tip = colour;
    l->base = colour;
    float roll = uni(d, 0.0f, 1.0f);
    if (roll < 0.25f) /* dark or contrasting heart, as in pansies and poppies */
        l->base = scale(colour, uni(d, 0.25f, 0.6f));
    else if (roll < 0.4f)
        l->base = hsv_draw(d, 40, 60, 0.6f, 1.0f, 0.8f, 1.0f);
    else if (roll < 0.55f)
        l->tip = mix(colour, (struct rgb){1, 1, 1}, uni(d, 0.3f, 0.7f));
    l->veins = uni(d, 0.0f, 0.15f);
    l->nveins = (float)(2 + pick(d, 4));
    l->edge_dark = uni(d, 0.1f, 0.4f);
}

static void make_flower(struct draw *d, struct flower *f, float radius, float soft)
{
    static const int counts[] = {5, 5, 5, 6, 6, 7, 8, 8, 10, 12, 13, 16, 21, 24, 30};
    f->soft = soft;
    f->dim = 1.0f;
    float tilt = uni(d, 0.0f, TWO_PI);
    f->tilt_c = cosf(tilt);
    f->tilt_s = sinf(tilt);
    f->squash = uni(d, 0.0f, 1.0f) < 0.4f ? uni(d, 0.6f, 0.95f) : 1.0f;
    float roll = uni(d, 0.0f, 1.0f);
    f->layers = roll < 0.5f ? 1 : (roll < 0.85f ? 2 : 3);
    int k = counts[pick(d, (int)(sizeof counts / sizeof counts[0]))];
    struct rgb colour = petal_colour(d);
    float rot = uni(d, 0.0f, TWO_PI), length = radius;
    for (int i = 0; i < f->layers; i++) {
        make_layer(d, &f->layer[i], k, length, rot, colour);
        rot += 3.14159265f / (float)k;
        length *= uni(d, 0.55f, 0.8f);
        if (uni(d, 0.0f, 1.0f) < 0.3f)
            colour = petal_colour(d);
        else
            colour = scale(colour, uni(d, 0.8f, 1.1f));
    }
    f->has_disc = uni(d, 0.0f, 1.0f) < 0.82f;
    f->disc_r = radius * (k >= 12 ? uni(d, 0.18f, 0.38f) : uni(d, 0.08f, 0.28f));
    f->disc = disc_colour(d);
    f->disc_rim = scale(f->disc, uni(d, 0.4f, 0.8f));
    f->disc_freq = uni(d, 0.35f, 0.7f) / (0.05f * radius + 1e-3f);
    float a = uni(d, 0.0f, TWO_PI);
    f->disc_ca = cosf(a);
    f->disc_sa = sinf(a);
    f->stamens = (f->has_disc && uni(d, 0.0f, 1.0f) < 0.35f) ? 12 + pick(d, MAX_STAMENS - 12) : 0;
    struct rgb st = hsv_draw(d, 30, 60, 0.6f, 1.0f, 0.7f, 1.0f);
    for (int i = 0; i < f->stamens; i++) {
        float ang = uni(d, 0.0f, TWO_PI), r = f->disc_r * uni(d, 1.05f, 1.55f);
        float sr = radius * uni(d, 0.025f, 0.05f);
        f->stamen[i] = (struct blob){r * cosf(ang), r * sinf(ang), sr, sr, 1, 0, soft, 1, st};
    }
}

static void make_background(struct draw *d, struct scene *sc)
{
    sc->bg0 = background_colour(d);
    sc->bg1 = uni(d, 0.0f, 1.0f) < 0.5f ? background_colour(d) : scale(sc->bg0, uni(d, 0.5f, 1.4f));
    float a = uni(d, 0.0f, TWO_PI);
    sc->gx = cosf(a);
    sc->gy = sinf(a);
    int kind = pick(d, 3); /* 0 gradient only, 1 foliage, 2 bokeh */
    sc->nblobs = kind == 0 ? 0 : 5 + pick(d, MAX_BLOBS - 5);
    for (int i = 0; i < sc->nblobs; i++) {
        struct blob *b = &sc->blob[i];
        float ang = uni(d, 0.0f, TWO_PI);
        b->x = uni(d, -0.1f, 1.1f);
        b->y = uni(d, -0.1f, 1.1f);
        b->ca = cosf(ang);
        b->sa = sinf(ang);
        if (kind == 1) {
            b->rx = uni(d, 0.1f, 0.35f);
            b->ry = b->rx * uni(d, 0.3f, 1.0f);
            b->soft = uni(d, 0.3f, 0.8f);
            b->alpha = uni(d, 0.5f, 1.0f);
            b->col = hsv_draw(d, 60, 150, 0.3f, 0.85f, 0.1f, 0.65f);
        } else {
            b->rx = b->ry = uni(d, 0.04f, 0.14f);
            b->soft = uni(d, 0.1f, 0.35f);
            b->alpha = uni(d, 0.25f, 0.7f);
            b->col = uni(d, 0.0f, 1.0f) < 0.5f ? hsv_draw(d, 50, 140, 0.2f, 0.6f, 0.6f, 1.0f)
                                               : petal_colour(d);
        }
    }
    for (int i = 0; i < 3; i++) {
        sc->wave[i][0] = uni(d, -9.0f, 9.0f);
        sc->wave[i][1] = uni(d, -9.0f, 9.0f);
        sc->wave[i][2] = uni(d, 0.0f, TWO_PI);
    }
    sc->wave_amp = uni(d, 0.0f, 0.25f);
}

static void make_scene(struct draw *d, struct scene *sc, int size)
{
    const float px = 1.0f / (float)size;
    make_background(d, sc);
    sc->nflowers = 0;
    if (uni(d, 0.0f, 1.0f) < 0.3f) { /* an out-of-focus flower behind */
        struct flower *bgf = &sc->flower[sc->nflowers++];
        make_flower(d, bgf, uni(d, 0.15f, 0.35f), uni(d, 3.0f, 6.0f) * px);
        bgf->cx = uni(d, 0.0f, 1.0f) < 0.5f ? uni(d, -0.05f, 0.2f) : uni(d, 0.8f, 1.05f);
        bgf->cy = uni(d, -0.05f, 1.05f);
        bgf->dim = uni(d, 0.5f, 0.8f);
    }
    float radius = uni(d, 0.0f, 1.0f) < 0.35f ? uni(d, 0.45f, 0.72f) : uni(d, 0.25f, 0.48f);
    sc->nleaves = pick(d, MAX_LEAVES + 1);
    float cx = 0.5f + uni(d, -0.15f, 0.15f), cy = 0.5f + uni(d, -0.15f, 0.15f);
    for (int i = 0; i < sc->nleaves; i++) {
        struct leaf *l = &sc->leaf[i];
        float a = uni(d, 0.0f, TWO_PI);
        l->ca = cosf(a);
        l->sa = sinf(a);
        l->length = radius * uni(d, 0.9f, 1.8f);
        l->width = l->length * uni(d, 0.15f, 0.3f);
        l->x = cx + l->ca * radius * uni(d, 0.1f, 0.5f);
        l->y = cy + l->sa * radius * uni(d, 0.1f, 0.5f);
        l->soft = uni(d, 1.0f, 3.0f) * px;
        l->col = hsv_draw(d, 80, 140, 0.45f, 0.85f, 0.25f, 0.6f);
    }
    struct flower *f = &sc->flower[sc->nflowers++];
    make_flower(d, f, radius, 0.6f * px);
    f->cx = cx;
    f->cy = cy;
    float la = uni(d, 0.0f, TWO_PI), strength = uni(d, 0.0f, 0.5f);
    sc->lx = strength * cosf(la);
    sc->ly = strength * sinf(la);
    sc->vignette = uni(d, 0.0f, 0.6f);
}

/* ---- shading ------------------------------------------------------------------------------ */

static float blob_cover(const struct blob *b, float dx, float dy)
{
    float u = (dx * b->ca + dy * b->sa) / b->rx, v = (-dx * b->sa + dy * b->ca) / b->ry;
    float r = sqrtf(u * u + v * v);
    return b->alpha * clamp01((1.0f - r) / b->soft + 0.5f);
}

/* Petal half width at fraction t of its length: 0 at both ends. */
static float petal_half_width(const struct petal_layer *l, float t)
{
    if (t <= 0.0f || t >= 1.0f)
        return 0.0f;
    return l->width * powf(sinf(3.14159265f * powf(t, l->q)), l->p);
}

static struct rgb shade_layer(const struct petal_layer *l, float x, float y, float soft,
                              struct rgb c)
{
    for (int i = 0; i < l->k; i++) {
        float u = x * l->ca[i] + y * l->sa[i], v = fabsf(-x * l->sa[i] + y * l->ca[i]);
        if (u <= 0.0f || u >= l->length[i] || v > l->width + soft)
            continue;
        float t = u / l->length[i], hw = petal_half_width(l, t);
        /* a thin shadow just outside the petal separates overlapping petals */
        float shadow = clamp01((hw + 3.0f * soft - v) / (3.0f * soft));
        c = scale(c, 1.0f - 0.25f * shadow);
        float cover = clamp01((hw - v) / soft + 0.5f);
        if (cover <= 0.0f)
            continue;
        float vn = hw > 0.0f ? fminf(v / hw, 1.0f) : 1.0f;
        struct rgb p = mix(l->base, l->tip, smooth(t * 1.6f));
        float k = (1.0f - l->edge_dark * vn * vn) * (0.78f + 0.22f * t);
        k *=
            1.0f - l->veins * 0.5f * (1.0f + cosf(vn * 3.14159265f * l->nveins)) * smooth(t * 3.0f);
        c = mix(c, scale(p, k), cover);
    }
    return c;
}

static struct rgb shade_flower(const struct flower *f, float px, float py, struct rgb c)
{
    float dx = px - f->cx, dy = py - f->cy;
    /* tilt: squash the flower's plane along one axis */
    float a = dx * f->tilt_c + dy * f->tilt_s, b = (-dx * f->tilt_s + dy * f->tilt_c) / f->squash;
    float x = a * f->tilt_c - b * f->tilt_s, y = a * f->tilt_s + b * f->tilt_c;
    struct rgb in = c;
    for (int i = 0; i < f->layers; i++)
        c = shade_layer(&f->layer[i], x, y, f->soft, c);
    for (int i = 0; i < f->stamens; i++) {
        float cover = blob_cover(&f->stamen[i], x - f->stamen[i].x, y - f->stamen[i].y);
        c = mix(c, f->stamen[i].col, cover);
    }
    if (f->has_disc) {
        float r = sqrtf(x * x + y * y), rn = r / f->disc_r;
        float cover = clamp01((f->disc_r - r) / f->soft + 0.5f);
        if (cover > 0.0f) {
            float u = (x * f->disc_ca + y * f->disc_sa) * f->disc_freq;
            float v = (-x * f->disc_sa + y * f->disc_ca) * f->disc_freq;
            float texture = 0.82f + 0.18f * sinf(u) * sinf(v);
            struct rgb dc = mix(f->disc, f->disc_rim, smooth((rn - 0.6f) * 2.5f));
            c = mix(c, scale(dc, texture * (1.15f - 0.3f * rn * rn)), cover);
        }
    }
    return f->dim < 1.0f ? mix(in, scale(c, f->dim), 0.85f) : c;
}

static struct rgb shade(const struct scene *sc, float x, float y)
{
    float t = clamp01(0.5f + (x - 0.5f) * sc->gx + (y - 0.5f) * sc->gy);
    struct rgb c = mix(sc->bg0, sc->bg1, smooth(t));
    for (int i = 0; i < sc->nblobs; i++)
        c = mix(c, sc->blob[i].col, blob_cover(&sc->blob[i], x - sc->blob[i].x, y - sc->blob[i].y));
    float w = 0.0f;
    for (int i = 0; i < 3; i++)
        w += sinf(sc->wave[i][0] * x + sc->wave[i][1] * y + sc->wave[i][2]);
    c = scale(c, 1.0f + sc->wave_amp * w / 3.0f);
    if (sc->nflowers > 1)
        c = shade_flower(&sc->flower[0], x, y, c);
    for (int i = 0; i < sc->nleaves; i++) {
        const struct leaf *l = &sc->leaf[i];
        float u = (x - l->x) * l->ca + (y - l->y) * l->sa;
        float v = fabsf(-(x - l->x) * l->sa + (y - l->y) * l->ca);
        float tt = u / l->length;
        if (tt <= 0.0f || tt >= 1.0f)
            continue;
        float hw = l->width * sinf(3.14159265f * tt);
        float cover = clamp01((hw - v) / l->soft + 0.5f);
        float rib = 1.0f - 0.3f * clamp01(1.0f - v / (0.08f * l->width + 1e-4f));
        c = mix(c, scale(l->col, rib * (0.8f + 0.3f * (v / (hw + 1e-6f)))), cover);
    }
    c = shade_flower(&sc->flower[sc->nflowers - 1], x, y, c);
    float dx = x - 0.5f, dy = y - 0.5f;
    float k = (1.0f + sc->lx * dx + sc->ly * dy) * (1.0f - sc->vignette * (dx * dx + dy * dy));
    return scale(c, k);
}

void prep_synthetic_image(uint64_t seed, long index, int size, float *out)
{
    struct draw d = {seed, (uint32_t)index, 0};
    struct scene sc;
    memset(&sc, 0, sizeof sc);
    make_scene(&d, &sc, size);
    const float inv = 1.0f / ((float)size * SUPER);
    for (int py = 0; py < size; py++) {
        for (int px = 0; px < size; px++) {
            struct rgb acc = {0, 0, 0};
            for (int sy = 0; sy < SUPER; sy++) {
                for (int sx = 0; sx < SUPER; sx++) {
                    struct rgb c = shade(&sc, ((float)(px * SUPER + sx) + 0.5f) * inv,
                                         ((float)(py * SUPER + sy) + 0.5f) * inv);
                    acc.r += clamp01(c.r);
                    acc.g += clamp01(c.g);
                    acc.b += clamp01(c.b);
                }
            }
            float *o = out + ((size_t)py * size + px) * 3;
            o[0] = acc.r / (SUPER * SUPER);
            o[1] = acc.g / (SUPER * SUPER);
            o[2] = acc.b / (SUPER * SUPER);
        }
    }
}
