/* checkpoint.c: see checkpoint.h. */
#define _POSIX_C_SOURCE 200809L
#include "checkpoint.h"
#include "h5_util.h"
#include "util.h"
#include "weights_h5.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- writing ------------------------------------------------------------------------- */

/* Everything but the fsync and the rename, into an open file. */
static int write_contents(hid_t f, const char *label, const struct trainer *t,
                          const long long *nums, const char *config_yaml, char *err, size_t errlen)
{
    const struct param_table *p = unet_params(t->net);
    const struct unet_config *u = unet_get_config(t->net);
    struct backend *be = t->be;
    float *host = util_xmalloc(p->total * sizeof(float)), norm[6];
    int rc = 0;
    be->download(be, host, t->w, p->total * sizeof(float));
    rc = weights_write_h5(f, label, "/weights", p, host, 0, err, errlen);
    be->download(be, host, t->ema_w, p->total * sizeof(float));
    if (rc == 0)
        rc = weights_write_h5(f, label, "/ema_weights", p, host, 0, err, errlen);
    be->download(be, host, t->adam_m, p->trainable * sizeof(float));
    if (rc == 0)
        rc = weights_write_h5(f, label, "/optimizer/m", p, host, 1, err, errlen);
    be->download(be, host, t->adam_v, p->trainable * sizeof(float));
    if (rc == 0)
        rc = weights_write_h5(f, label, "/optimizer/v", p, host, 1, err, errlen);
    free(host);
    if (rc != 0)
        return -1;
    be->download(be, norm, t->norm, sizeof norm);
    long long widths[UNET_MAX_LEVELS],
        shape[3] = {u->image_size, u->block_depth, u->embedding_dims};
    for (int i = 0; i < u->num_levels; i++)
        widths[i] = u->widths[i];
    static const char *num_names[] = {"optimizer_step", "epoch", "global_step", "step_in_epoch"};
    static const char *shape_names[] = {"image_size", "block_depth", "embedding_dims"};
    int bad = h5u_write_floats(f, "/normalizer/mean", norm, 3) ||
              h5u_write_floats(f, "/normalizer/variance", norm + 3, 3) ||
              h5u_write_attr_str(f, "format", CHECKPOINT_FORMAT) ||
              h5u_write_attr_i64(f, "widths", widths, u->num_levels) ||
              h5u_write_attr_str(f, "config", config_yaml ? config_yaml : "");
    for (int i = 0; i < 4; i++)
        bad = bad || h5u_write_attr_i64(f, num_names[i], &nums[i], 1);
    for (int i = 0; i < 3; i++)
        bad = bad || h5u_write_attr_i64(f, shape_names[i], &shape[i], 1);
    if (bad)
        return util_error(err, errlen, "%s: cannot write the normalizer or the attributes", label);
    return 0;
}

int checkpoint_write(const char *path, const struct trainer *t, int epoch_done, long global_step,
                     long step_in_epoch, const char *config_yaml, char *err, size_t errlen)
{
    char tmp[4096];
    hid_t f = h5u_create_tmp(path, tmp, sizeof tmp, err, errlen);
    if (f < 0)
        return -1;
    long long nums[4] = {t->step, epoch_done, global_step, step_in_epoch};
    int rc = write_contents(f, tmp, t, nums, config_yaml, err, errlen);
    return h5u_commit(f, tmp, path, rc, err, errlen);
}

/* --- reading ------------------------------------------------------------------------- */

static void format_list(char *buf, size_t len, const double *v, int n)
{
    size_t j = (size_t)snprintf(buf, len, n == 1 ? "" : "[");
    for (int i = 0; i < n && j < len; i++)
        j += (size_t)snprintf(buf + j, len - j, "%s%.0f", i ? "," : "", v[i]);
    if (n != 1 && j < len)
        snprintf(buf + j, len - j, "]");
}

/* The model-shape attributes against the network's configuration. */
static int check_shape(hid_t f, const char *label, const struct unet_config *u, char *err,
                       size_t errlen)
{
    static const char *names[] = {"image_size", "widths", "block_depth", "embedding_dims"};
    for (int k = 0; k < 4; k++) {
        double got[UNET_MAX_LEVELS + 1], want[UNET_MAX_LEVELS];
        size_t n = UNET_MAX_LEVELS + 1;
        int nwant = 1;
        if (h5u_read_attr_doubles(f, label, "/", names[k], got, &n, err, errlen) != 0)
            return -1;
        if (k == 1) {
            nwant = u->num_levels;
            for (int i = 0; i < nwant; i++)
                want[i] = u->widths[i];
        } else {
            want[0] = k == 0 ? u->image_size : k == 2 ? u->block_depth : u->embedding_dims;
        }
        int same = (int)n == nwant;
        for (int i = 0; same && i < nwant; i++)
            same = got[i] == want[i];
        if (!same) {
            char a[128], b[128];
            format_list(a, sizeof a, got, (int)n);
            format_list(b, sizeof b, want, nwant);
            return util_error(err, errlen,
                              "%s was written for model.%s %s, the config has %s (attribute "
                              "'%s'): resume with the model it was written for",
                              label, names[k], a, b, names[k]);
        }
    }
    return 0;
}

/* Reads the file's contents into host buffers (nothing touches t until all is read). */
static int read_contents(hid_t f, const char *label, const struct param_table *p, float *w,
                         float *ema, float *m, float *v, float *norm, double nums[4], char *err,
                         size_t errlen)
{
    if (weights_read_h5(f, label, "/weights", p, w, 0, err, errlen) ||
        weights_read_h5(f, label, "/ema_weights", p, ema, 0, err, errlen) ||
        weights_read_h5(f, label, "/optimizer/m", p, m, 1, err, errlen) ||
        weights_read_h5(f, label, "/optimizer/v", p, v, 1, err, errlen) ||
        h5u_read_floats(f, label, "/normalizer/mean", norm, 3, err, errlen) ||
        h5u_read_floats(f, label, "/normalizer/variance", norm + 3, 3, err, errlen))
        return -1;
    static const char *names[] = {"optimizer_step", "epoch", "global_step", "step_in_epoch"};
    for (int i = 0; i < 4; i++) {
        size_t n = 1;
        if (h5u_read_attr_doubles(f, label, "/", names[i], &nums[i], &n, err, errlen) != 0)
            return -1;
        if (!(nums[i] >= 0 && nums[i] <= 1e15) || nums[i] != (double)(long long)nums[i])
            return util_error(err, errlen, "%s: attribute '%s' is %g, not a step count", label,
                              names[i], nums[i]);
    }
    for (int i = 0; i < 2; i++) /* optimizer_step and epoch are ints */
        if (nums[i] > 2147483647.0)
            return util_error(err, errlen, "%s: %s %.0f is out of range", label, names[i], nums[i]);
    return 0;
}

int checkpoint_read(const char *path, struct trainer *t, struct checkpoint_info *info, char *err,
                    size_t errlen)
{
    hid_t f = h5u_open_read(path, err, errlen);
    if (f < 0)
        return -1;
    char format[128];
    int rc = h5u_read_attr_str(f, path, "format", format, sizeof format, err, errlen);
    if (rc == 0 && strcmp(format, CHECKPOINT_FORMAT) != 0)
        rc = util_error(err, errlen, "%s: attribute 'format' is \"%s\", expected \"%s\"", path,
                        format, CHECKPOINT_FORMAT);
    if (rc == 0)
        rc = check_shape(f, path, unet_get_config(t->net), err, errlen);
    if (rc != 0) {
        H5Fclose(f);
        return -1;
    }
    const struct param_table *p = unet_params(t->net);
    float *w = util_xmalloc(p->total * sizeof(float)),
          *ema = util_xmalloc(p->total * sizeof(float));
    float *m = util_xmalloc(p->trainable * sizeof(float) + 1);
    float *v = util_xmalloc(p->trainable * sizeof(float) + 1), norm[6];
    double nums[4];
    rc = read_contents(f, path, p, w, ema, m, v, norm, nums, err, errlen);
    H5Fclose(f);
    if (rc == 0) {
        struct backend *be = t->be;
        be->upload(be, t->w, w, p->total * sizeof(float));
        be->upload(be, t->ema_w, ema, p->total * sizeof(float));
        be->upload(be, t->adam_m, m, p->trainable * sizeof(float));
        be->upload(be, t->adam_v, v, p->trainable * sizeof(float));
        be->upload(be, t->norm, norm, sizeof norm);
        t->step = (int)nums[0];
        info->epoch = (int)nums[1];
        info->global_step = (long)nums[2];
        info->step_in_epoch = (long)nums[3];
    }
    free(w);
    free(ema);
    free(m);
    free(v);
    return rc;
}

char *checkpoint_read_config(const char *path, char *err, size_t errlen)
{
    hid_t f = h5u_open_read(path, err, errlen);
    if (f < 0)
        return NULL;
    size_t len = 1 << 20;
    char *text = util_xmalloc(len);
    int rc = h5u_read_attr_str(f, path, "config", text, len, err, errlen);
    H5Fclose(f);
    if (rc != 0) {
        free(text);
        return NULL;
    }
    return text;
}
