/* ema_weights.c: see ema_weights.h. */
#include "ema_weights.h"
#include "checkpoint.h"
#include "h5_util.h"
#include "util.h"
#include "weights_h5.h"

#include <errno.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CONFIG_TEXT_MAX = 1 << 16 };

/* The format attribute, with a hint when the file is the other kind. */
static int check_format(hid_t f, const char *path, int from_checkpoint, char *err, size_t errlen)
{
    const char *want = from_checkpoint ? CHECKPOINT_FORMAT : EMA_WEIGHTS_FORMAT;
    const char *what = from_checkpoint ? "a ddim-dist checkpoint" : "a ddim-dist EMA export";
    char format[256];
    if (h5u_read_attr_str(f, path, "format", format, sizeof format, err, errlen) != 0)
        return util_error(err, errlen, "%s: not %s (its attribute 'format' is missing)", path,
                          what);
    if (strcmp(format, want) == 0)
        return 0;
    const char *hint = "";
    if (!from_checkpoint && !strcmp(format, CHECKPOINT_FORMAT))
        hint = " (it is a checkpoint: use --checkpoint)";
    else if (from_checkpoint && !strcmp(format, EMA_WEIGHTS_FORMAT))
        hint = " (it is an EMA export: use --weights)";
    return util_error(err, errlen, "%s: not %s: attribute 'format' is \"%s\", expected \"%s\"%s",
                      path, what, format, want, hint);
}

int ema_weights_read_head(const char *path, int from_checkpoint, struct ema_weights *ew, char *err,
                          size_t errlen)
{
    memset(ew, 0, sizeof *ew);
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return util_error(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    fclose(probe);
    hid_t f = h5u_open_read(path, err, errlen);
    if (f < 0)
        return -1;
    int rc = check_format(f, path, from_checkpoint, err, errlen);
    if (rc == 0) {
        ew->config_yaml = util_xmalloc(CONFIG_TEXT_MAX);
        rc = h5u_read_attr_str(f, path, "config", ew->config_yaml, CONFIG_TEXT_MAX, err, errlen);
    }
    if (rc == 0)
        rc = weights_h5_read_shape(f, path, &ew->shape, err, errlen);
    H5Fclose(f);
    if (rc != 0)
        ema_weights_free(ew);
    return rc;
}

int ema_weights_read_weights(const char *path, int from_checkpoint,
                             const struct param_table *params, struct ema_weights *ew, char *err,
                             size_t errlen)
{
    hid_t f = h5u_open_read(path, err, errlen);
    if (f < 0)
        return -1;
    const char *group = from_checkpoint ? "/ema_weights" : "/weights";
    /* the shapes first: the stored model may be far larger than the weights stored with it
     * (a 1 KB file can describe a 170 GB network) */
    if (weights_read_h5(f, path, group, params, NULL, 0, err, errlen) != 0) {
        H5Fclose(f);
        return -1;
    }
    free(ew->w);
    ew->w = util_xmalloc(params->total * sizeof(float));
    int rc = weights_read_h5(f, path, group, params, ew->w, 0, err, errlen) ||
                     h5u_read_floats(f, path, "/normalizer/mean", ew->norm, 3, err, errlen) ||
                     h5u_read_floats(f, path, "/normalizer/variance", ew->norm + 3, 3, err, errlen)
                 ? -1
                 : 0;
    H5Fclose(f);
    return rc;
}

static int write_contents(hid_t f, const char *label, const struct ema_weights *ew,
                          const struct param_table *params, char *err, size_t errlen)
{
    if (weights_write_h5(f, label, "/weights", params, ew->w, 0, err, errlen))
        return -1;
    int bad = h5u_write_floats(f, "/normalizer/mean", ew->norm, 3) ||
              h5u_write_floats(f, "/normalizer/variance", ew->norm + 3, 3) ||
              h5u_write_attr_str(f, "format", EMA_WEIGHTS_FORMAT) ||
              weights_h5_write_shape(f, &ew->shape) ||
              h5u_write_attr_str(f, "config", ew->config_yaml ? ew->config_yaml : "");
    if (bad)
        return util_error(err, errlen, "%s: cannot write the normalizer or the attributes", label);
    return 0;
}

int ema_weights_export(const char *path, const struct ema_weights *ew,
                       const struct param_table *params, char *err, size_t errlen)
{
    char tmp[4096];
    hid_t f = h5u_create_tmp(path, tmp, sizeof tmp, err, errlen);
    if (f < 0)
        return -1;
    int rc = write_contents(f, tmp, ew, params, err, errlen);
    return h5u_commit(f, tmp, path, rc, err, errlen);
}

void ema_weights_free(struct ema_weights *ew)
{
    free(ew->config_yaml);
    free(ew->w);
    memset(ew, 0, sizeof *ew);
}
