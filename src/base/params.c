/* params.c: see params.h. */
#include "params.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int params_is_trainable(enum param_kind kind)
{
    return kind == PARAM_KERNEL || kind == PARAM_BIAS;
}

const char *params_kind_name(enum param_kind kind)
{
    switch (kind) {
    case PARAM_KERNEL:
        return "kernel";
    case PARAM_BIAS:
        return "bias";
    case PARAM_MOVING_MEAN:
        return "moving_mean";
    case PARAM_MOVING_VARIANCE:
        return "moving_variance";
    }
    return "?";
}

int params_add(struct param_table *t, const char *layer, enum param_kind kind, int ndim,
               const int *shape)
{
    if (t->count == t->capacity) {
        t->capacity = t->capacity ? 2 * t->capacity : 64;
        t->items = realloc(t->items, (size_t)t->capacity * sizeof *t->items);
        if (!t->items)
            DDIM_FATAL("out of host memory for the parameter table");
    }
    struct param *p = &t->items[t->count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s/%s", layer, params_kind_name(kind));
    p->kind = kind;
    p->ndim = ndim;
    p->count = 1;
    for (int i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->count *= (size_t)shape[i];
    }
    return t->count++;
}

void params_finalize(struct param_table *t)
{
    size_t off = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < t->count; i++) {
            struct param *p = &t->items[i];
            if (params_is_trainable(p->kind) != (pass == 0))
                continue;
            p->offset = off;
            off += p->count;
        }
        if (pass == 0)
            t->trainable = off;
    }
    t->total = off;
}

void params_free(struct param_table *t)
{
    free(t->items);
    memset(t, 0, sizeof *t);
}
