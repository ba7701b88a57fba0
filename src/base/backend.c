/* backend.c: what every backend shares: the capability queries (the ops a backend leaves
 * unimplemented, from the op list BACKEND_OPS; the shapes it takes, supports_op), the ops'
 * names, and the one shape rule common to all backends (conv2d_backward's). */
#include "backend.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static void note_missing(int *missing, char *out, size_t outlen, const char *name)
{
    if (out && outlen) {
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "%s%s", *missing ? ", " : "", name);
    }
    (*missing)++;
}

int backend_missing(const struct backend *be, enum backend_op_need need, char *out, size_t outlen)
{
    int missing = 0;
    if (out && outlen)
        out[0] = '\0';
#define BACKEND_OP_CHECK(op_need, ret, op, params)                                                 \
    if (op_need == need && !be->op)                                                                \
        note_missing(&missing, out, outlen, #op);
    BACKEND_OPS(BACKEND_OP_CHECK)
#undef BACKEND_OP_CHECK
    return missing;
}

int backend_missing_ops(const struct backend *be, char *out, size_t outlen)
{
    return backend_missing(be, OP_REQUIRED, out, outlen);
}

int backend_missing_inference_ops(const struct backend *be, char *out, size_t outlen)
{
    return backend_missing(be, OP_INFERENCE, out, outlen);
}

static const struct {
    const char *name;
    enum backend_op_need need;
} backend_op_list[BACKEND_OP_COUNT] = {
#define BACKEND_OP_ENTRY(op_need, ret, op, params) {#op, op_need},
    BACKEND_OPS(BACKEND_OP_ENTRY)
#undef BACKEND_OP_ENTRY
};

const char *backend_op_name(enum backend_op_id op)
{
    return op >= 0 && op < BACKEND_OP_COUNT ? backend_op_list[op].name : "unknown op";
}

enum backend_op_need backend_op_need_of(enum backend_op_id op)
{
    return op >= 0 && op < BACKEND_OP_COUNT ? backend_op_list[op].need : OP_REQUIRED;
}

/* The shape of op as text: "n=2 h=8 w=8 cin=3 cout=8 kernel 3x3 stride 2 valid", ... */
static void describe_shape(enum backend_op_id op, const struct op_shape *s, char *out, size_t len)
{
    const struct conv_shape *c = s ? s->conv : NULL;
    const struct pool_shape *p = s ? s->pool : NULL;
    if (c)
        snprintf(out, len, "n=%d h=%d w=%d cin=%d cout=%d kernel %dx%d stride %d %s", c->n, c->h,
                 c->w, c->cin, c->cout, conv_kh(c), conv_kw(c), conv_stride(c),
                 c->valid ? "valid" : "same");
    else if (p)
        snprintf(out, len, "n=%d h=%d w=%d c=%d window %d stride %d %s %s", p->n, p->h, p->w, p->c,
                 p->k, p->stride, p->mode == POOL_MAX ? "max" : "average",
                 p->valid ? "valid" : "same");
    else if (s && op == BACKEND_OP_sinusoidal_embedding)
        snprintf(out, len, "dims=%d", s->c);
    else if (s && (s->rows || s->c))
        snprintf(out, len, "rows=%zu c=%d", s->rows, s->c);
    else
        snprintf(out, len, "any shape");
}

int backend_has_op(const struct backend *be, enum backend_op_id op)
{
    switch (op) {
#define BACKEND_OP_CASE(op_need, ret, name, params)                                                \
    case BACKEND_OP_##name:                                                                        \
        return be->name != NULL;
        BACKEND_OPS(BACKEND_OP_CASE)
#undef BACKEND_OP_CASE
    default:
        return 0;
    }
}

int backend_supports(struct backend *be, enum backend_op_id op, const struct op_shape *s, char *err,
                     size_t errlen)
{
    char shape[256], why[512] = "";
    describe_shape(op, s, shape, sizeof shape);
    if (!backend_has_op(be, op)) {
        util_error(err, errlen, "the %s backend has no %s (needed at %s)", be->name,
                   backend_op_name(op), shape);
        return 0;
    }
    if (!be->supports_op || be->supports_op(be, op, s, why, sizeof why))
        return 1;
    util_error(err, errlen, "the %s backend cannot run %s on %s: %s", be->name, backend_op_name(op),
               shape, why);
    return 0;
}

int backend_conv_has_backward(const struct conv_shape *s, char *why, size_t whylen)
{
    if (conv_is_basic(s))
        return 1;
    util_error(why, whylen,
               "only square kernels at stride 1 with 'same' padding have a backward (the "
               "U-Net's convolutions; the others are inference-only)");
    return 0;
}

void backend_require_conv_backward(const char *backend, const struct conv_shape *s)
{
    char why[256];
    if (!backend_conv_has_backward(s, why, sizeof why))
        DDIM_FATAL("%s conv2d_backward: %s (got %dx%d, stride %d, %s)", backend, why, conv_kh(s),
                   conv_kw(s), conv_stride(s), s->valid ? "valid" : "same");
}
