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

static const char *num_names[] = {"optimizer_step", "epoch", "global_step", "step_in_epoch"};

/* The weights groups of a checkpoint: name, the state's buffer, trainable weights only */
struct group {
    const char *name;
    float *data;
    int trainable_only;
};

static void groups_of(const struct train_state *s, struct group g[4])
{
    g[0] = (struct group){"/weights", s->w, 0};
    g[1] = (struct group){"/ema_weights", s->ema_w, 0};
    g[2] = (struct group){"/optimizer/m", s->adam_m, 1};
    g[3] = (struct group){"/optimizer/v", s->adam_v, 1};
}

/* Everything but the fsync and the rename, into an open file. */
static int write_contents(hid_t f, const char *label, const struct train_state *s,
                          const long long *nums, const char *config_yaml, char *err, size_t errlen)
{
    struct group g[4];
    groups_of(s, g);
    for (int i = 0; i < 4; i++)
        if (weights_write_h5(f, label, g[i].name, s->params, g[i].data, g[i].trainable_only, err,
                             errlen) != 0)
            return -1;
    int bad = h5u_write_floats(f, "/normalizer/mean", s->norm, 3) ||
              h5u_write_floats(f, "/normalizer/variance", s->norm + 3, 3) ||
              h5u_write_attr_str(f, "format", CHECKPOINT_FORMAT) ||
              weights_h5_write_shape(f, &s->shape) ||
              h5u_write_attr_str(f, "config", config_yaml ? config_yaml : "");
    for (int i = 0; i < 4; i++)
        bad = bad || h5u_write_attr_i64(f, num_names[i], &nums[i], 1);
    if (bad)
        return util_error(err, errlen, "%s: cannot write the normalizer or the attributes", label);
    return 0;
}

int checkpoint_write(const char *path, const struct train_state *s,
                     const struct checkpoint_info *pos, const char *config_yaml, char *err,
                     size_t errlen)
{
    char tmp[4096];
    hid_t f = h5u_create_tmp(path, tmp, sizeof tmp, err, errlen);
    if (f < 0)
        return -1;
    long long nums[4] = {s->step, pos->epoch, pos->global_step, pos->step_in_epoch};
    int rc = write_contents(f, tmp, s, nums, config_yaml, err, errlen);
    return h5u_commit(f, tmp, path, rc, err, errlen);
}

/* --- reading ------------------------------------------------------------------------- */

static int read_contents(hid_t f, const char *label, struct train_state *s, double nums[4],
                         char *err, size_t errlen)
{
    struct group g[4];
    groups_of(s, g);
    for (int i = 0; i < 4; i++)
        if (weights_read_h5(f, label, g[i].name, s->params, g[i].data, g[i].trainable_only, err,
                            errlen) != 0)
            return -1;
    if (h5u_read_floats(f, label, "/normalizer/mean", s->norm, 3, err, errlen) ||
        h5u_read_floats(f, label, "/normalizer/variance", s->norm + 3, 3, err, errlen))
        return -1;
    for (int i = 0; i < 4; i++) {
        size_t n = 1;
        if (h5u_read_attr_doubles(f, label, "/", num_names[i], &nums[i], &n, err, errlen) != 0)
            return -1;
        if (!(nums[i] >= 0 && nums[i] <= 1e15) || nums[i] != (double)(long long)nums[i])
            return util_error(err, errlen, "%s: attribute '%s' is %g, not a step count", label,
                              num_names[i], nums[i]);
    }
    for (int i = 0; i < 2; i++) /* optimizer_step and epoch are ints */
        if (nums[i] > 2147483647.0)
            return util_error(err, errlen, "%s: %s %.0f is out of range", label, num_names[i],
                              nums[i]);
    return 0;
}

int checkpoint_read(const char *path, struct train_state *s, struct checkpoint_info *pos, char *err,
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
        rc = weights_h5_check_shape(f, path, &s->shape, err, errlen);
    double nums[4];
    if (rc == 0)
        rc = read_contents(f, path, s, nums, err, errlen);
    H5Fclose(f);
    if (rc == 0) {
        s->step = (int)nums[0];
        pos->epoch = (int)nums[1];
        pos->global_step = (long)nums[2];
        pos->step_in_epoch = (long)nums[3];
    }
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
