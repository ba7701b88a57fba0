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

static const char *shape_names[] = {"image_size", "widths", "block_depth", "embedding_dims"};

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

/* The stored config (if any) on top of the defaults, then the shape attributes, which are
 * what the weights were written for. */
static int read_config(hid_t f, const char *path, struct ema_weights *ew, char *err, size_t errlen)
{
    char *text = util_xmalloc(CONFIG_TEXT_MAX);
    if (h5u_read_attr_str(f, path, "config", text, CONFIG_TEXT_MAX, err, errlen) != 0) {
        free(text);
        return -1;
    }
    ew->config_yaml = text;
    run_config_defaults(&ew->cfg);
    char label[CONFIG_PATH_MAX + 32];
    snprintf(label, sizeof label, "%s (attribute 'config')", path);
    if (text[0] && config_load_yaml_text(&ew->cfg, label, text, err, errlen) != 0)
        return -1;
    struct unet_config *u = &ew->cfg.model;
    for (int k = 0; k < 4; k++) {
        double v[UNET_MAX_LEVELS];
        size_t n = k == 1 ? UNET_MAX_LEVELS : 1;
        if (h5u_read_attr_doubles(f, path, "/", shape_names[k], v, &n, err, errlen) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (!(v[i] >= 1 && v[i] <= 1e6) || v[i] != (double)(int)v[i]) /* NaN too */
                return util_error(err, errlen, "%s: attribute '%s' holds %g, not a size", path,
                                  shape_names[k], v[i]);
        if (k == 1) {
            u->num_levels = (int)n;
            for (size_t i = 0; i < n; i++)
                u->widths[i] = (int)v[i];
        } else {
            *(k == 0 ? &u->image_size : k == 2 ? &u->block_depth : &u->embedding_dims) = (int)v[0];
        }
    }
    char why[1024];
    if (unet_config_check(u, why, sizeof why) != 0 ||
        diffusion_config_check(&ew->cfg.diffusion, why, sizeof why) != 0)
        return util_error(err, errlen, "%s: the stored model cannot be built: %s", path, why);
    ew->net = unet_create(u, why, sizeof why);
    if (!ew->net)
        return util_error(err, errlen, "%s: the stored model cannot be built: %s", path, why);
    return 0;
}

int ema_weights_read(const char *path, int from_checkpoint, struct ema_weights *ew, char *err,
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
    if (rc == 0)
        rc = read_config(f, path, ew, err, errlen);
    const char *group = from_checkpoint ? "/ema_weights" : "/weights";
    /* the shapes first: the stored model may be far larger than the weights stored with it
     * (a 1 KB file can describe a 170 GB network) */
    if (rc == 0)
        rc = weights_read_h5(f, path, group, unet_params(ew->net), NULL, 0, err, errlen);
    if (rc == 0) {
        const struct param_table *p = unet_params(ew->net);
        ew->w = util_xmalloc(p->total * sizeof(float));
        rc = weights_read_h5(f, path, group, p, ew->w, 0, err, errlen) ||
                     h5u_read_floats(f, path, "/normalizer/mean", ew->norm, 3, err, errlen) ||
                     h5u_read_floats(f, path, "/normalizer/variance", ew->norm + 3, 3, err, errlen)
                 ? -1
                 : 0;
    }
    H5Fclose(f);
    if (rc != 0)
        ema_weights_free(ew);
    return rc;
}

static int write_contents(hid_t f, const char *label, const struct ema_weights *ew, char *err,
                          size_t errlen)
{
    const struct unet_config *u = unet_get_config(ew->net);
    if (weights_write_h5(f, label, "/weights", unet_params(ew->net), ew->w, 0, err, errlen))
        return -1;
    long long widths[UNET_MAX_LEVELS], one[3] = {u->image_size, u->block_depth, u->embedding_dims};
    for (int i = 0; i < u->num_levels; i++)
        widths[i] = u->widths[i];
    int bad = h5u_write_floats(f, "/normalizer/mean", ew->norm, 3) ||
              h5u_write_floats(f, "/normalizer/variance", ew->norm + 3, 3) ||
              h5u_write_attr_str(f, "format", EMA_WEIGHTS_FORMAT) ||
              h5u_write_attr_i64(f, "widths", widths, u->num_levels) ||
              h5u_write_attr_str(f, "config", ew->config_yaml ? ew->config_yaml : "");
    for (int i = 0; i < 3; i++)
        bad = bad || h5u_write_attr_i64(f, shape_names[i == 0 ? 0 : i + 1], &one[i], 1);
    if (bad)
        return util_error(err, errlen, "%s: cannot write the normalizer or the attributes", label);
    return 0;
}

int ema_weights_export(const char *path, const struct ema_weights *ew, char *err, size_t errlen)
{
    char tmp[4096];
    hid_t f = h5u_create_tmp(path, tmp, sizeof tmp, err, errlen);
    if (f < 0)
        return -1;
    int rc = write_contents(f, tmp, ew, err, errlen);
    return h5u_commit(f, tmp, path, rc, err, errlen);
}

void ema_weights_free(struct ema_weights *ew)
{
    free(ew->config_yaml);
    free(ew->w);
    if (ew->net)
        unet_destroy(ew->net);
    memset(ew, 0, sizeof *ew);
}
