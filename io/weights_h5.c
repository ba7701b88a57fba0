/* weights_h5.c: see weights_h5.h. */
#include "weights_h5.h"
#include "h5_util.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

int weights_read_h5(hid_t file, const char *file_label, const char *group,
                    const struct param_table *params, float *host, int trainable_only, char *err,
                    size_t errlen)
{
    for (int i = 0; i < params->count; i++) {
        const struct param *p = &params->items[i];
        if (trainable_only && !params_is_trainable(p->kind))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s/%s", group, p->name);
        int nd;
        size_t shape[H5U_MAX_DIMS];
        if (h5u_shape(file, file_label, name, &nd, shape, err, errlen) != 0)
            return -1;
        int same = nd == p->ndim;
        for (int d = 0; same && d < nd; d++)
            same = shape[d] == (size_t)p->shape[d];
        if (!same) {
            char want[64] = "", got[64] = "";
            for (int d = 0; d < p->ndim; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", d ? "," : "",
                         p->shape[d]);
            for (int d = 0; d < nd; d++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", d ? "," : "",
                         shape[d]);
            return util_error(err, errlen,
                              "%s: weight '%s' has shape (%s), the model expects (%s): was it "
                              "written for another model configuration?",
                              file_label, name, got, want);
        }
        if (host &&
            h5u_read_floats(file, file_label, name, host + p->offset, p->count, err, errlen))
            return -1;
    }
    return 0;
}

int weights_write_h5(hid_t file, const char *file_label, const char *group,
                     const struct param_table *params, const float *host, int trainable_only,
                     char *err, size_t errlen)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    int rc = 0;
    for (int i = 0; i < params->count && rc == 0; i++) {
        const struct param *p = &params->items[i];
        if (trainable_only && !params_is_trainable(p->kind))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s/%s", group, p->name);
        hsize_t dims[4];
        for (int d = 0; d < p->ndim; d++)
            dims[d] = (hsize_t)p->shape[d];
        hid_t sp = H5Screate_simple(p->ndim, dims, NULL);
        hid_t ds = H5Dcreate2(file, name, H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        if (ds < 0 ||
            H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, host + p->offset) < 0)
            rc = util_error(err, errlen, "%s: cannot write weight '%s'", file_label, name);
        if (ds >= 0)
            H5Dclose(ds);
        H5Sclose(sp);
    }
    H5Pclose(lcpl);
    return rc;
}

/* --- the model shape ------------------------------------------------------------------ */

static const char *shape_names[] = {"image_size", "widths", "block_depth", "embedding_dims"};

/* attribute k of the shape: its values and their number */
static int shape_field(const struct model_shape *s, int k, int *v)
{
    if (k == 1) {
        for (int i = 0; i < s->num_levels; i++)
            v[i] = s->widths[i];
        return s->num_levels;
    }
    v[0] = k == 0 ? s->image_size : k == 2 ? s->block_depth : s->embedding_dims;
    return 1;
}

int weights_h5_write_shape(hid_t file, const struct model_shape *s)
{
    for (int k = 0; k < 4; k++) {
        int v[MODEL_SHAPE_MAX_LEVELS];
        long long w[MODEL_SHAPE_MAX_LEVELS];
        int n = shape_field(s, k, v);
        for (int i = 0; i < n; i++)
            w[i] = v[i];
        if (h5u_write_attr_i64(file, shape_names[k], w, n) != 0)
            return -1;
    }
    return 0;
}

int weights_h5_read_shape(hid_t file, const char *file_label, struct model_shape *s, char *err,
                          size_t errlen)
{
    memset(s, 0, sizeof *s);
    for (int k = 0; k < 4; k++) {
        double v[MODEL_SHAPE_MAX_LEVELS];
        size_t n = k == 1 ? MODEL_SHAPE_MAX_LEVELS : 1;
        if (h5u_read_attr_doubles(file, file_label, "/", shape_names[k], v, &n, err, errlen) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (!(v[i] >= 1 && v[i] <= 1e6) || v[i] != (double)(int)v[i]) /* NaN too */
                return util_error(err, errlen, "%s: attribute '%s' holds %g, not a size",
                                  file_label, shape_names[k], v[i]);
        if (k == 1) {
            s->num_levels = (int)n;
            for (size_t i = 0; i < n; i++)
                s->widths[i] = (int)v[i];
        } else {
            *(k == 0 ? &s->image_size : k == 2 ? &s->block_depth : &s->embedding_dims) = (int)v[0];
        }
    }
    return 0;
}

static void format_list(char *buf, size_t len, const int *v, int n)
{
    size_t j = (size_t)snprintf(buf, len, n == 1 ? "" : "[");
    for (int i = 0; i < n && j < len; i++)
        j += (size_t)snprintf(buf + j, len - j, "%s%d", i ? "," : "", v[i]);
    if (n != 1 && j < len)
        snprintf(buf + j, len - j, "]");
}

int weights_h5_check_shape(hid_t file, const char *file_label, const struct model_shape *want,
                           char *err, size_t errlen)
{
    struct model_shape got;
    if (weights_h5_read_shape(file, file_label, &got, err, errlen) != 0)
        return -1;
    for (int k = 0; k < 4; k++) {
        int a[MODEL_SHAPE_MAX_LEVELS], b[MODEL_SHAPE_MAX_LEVELS];
        int na = shape_field(&got, k, a), nb = shape_field(want, k, b);
        if (na == nb && memcmp(a, b, (size_t)na * sizeof(int)) == 0)
            continue;
        char ta[128], tb[128];
        format_list(ta, sizeof ta, a, na);
        format_list(tb, sizeof tb, b, nb);
        return util_error(err, errlen,
                          "%s was written for model.%s %s, the config has %s (attribute '%s'): "
                          "resume with the model it was written for",
                          file_label, shape_names[k], ta, tb, shape_names[k]);
    }
    return 0;
}
