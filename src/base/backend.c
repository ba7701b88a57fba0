/* backend.c: what every backend shares: the capability query (the ops a backend leaves
 * unimplemented, from the op list BACKEND_OPS). */
#include "backend.h"

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
