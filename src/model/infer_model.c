/* infer_model.c: see infer_model.h. */
#include "infer_model.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

/* The stored config (if any) on top of the defaults, then the stored shape, which is what
 * the weights were written for; then the network. */
static int build(const char *path, struct infer_model *m, char *err, size_t errlen)
{
    config_defaults(&m->cfg);
    char label[CONFIG_PATH_MAX + 32];
    snprintf(label, sizeof label, "%s (attribute 'config')", path);
    const char *text = m->ew.config_yaml;
    if (text[0] && config_load_yaml_text(&m->cfg, label, text, err, errlen) != 0)
        return -1;
    if (m->ew.shape.num_levels > UNET_MAX_LEVELS)
        return util_error(err, errlen, "%s: the stored model has %d levels, at most %d", path,
                          m->ew.shape.num_levels, (int)UNET_MAX_LEVELS);
    unet_shape_to_config(&m->cfg.model, &m->ew.shape);
    char why[1024];
    if (config_check_model(&m->cfg.model, why, sizeof why) != 0 ||
        config_check_diffusion(&m->cfg.diffusion, why, sizeof why) != 0)
        return util_error(err, errlen, "%s: the stored model cannot be built: %s", path, why);
    m->net = unet_create(&m->cfg.model, why, sizeof why);
    if (!m->net)
        return util_error(err, errlen, "%s: the stored model cannot be built: %s", path, why);
    return 0;
}

int infer_model_load(const char *path, int from_checkpoint, struct infer_model *m, char *err,
                     size_t errlen)
{
    memset(m, 0, sizeof *m);
    if (ema_weights_read_head(path, from_checkpoint, &m->ew, err, errlen) != 0)
        return -1;
    int rc = build(path, m, err, errlen);
    if (rc == 0)
        rc = ema_weights_read_weights(path, from_checkpoint, unet_params(m->net), &m->ew, err,
                                      errlen);
    if (rc != 0)
        infer_model_free(m);
    return rc;
}

int infer_model_export(const struct infer_model *m, const char *path, char *err, size_t errlen)
{
    return ema_weights_export(path, &m->ew, unet_params(m->net), err, errlen);
}

void infer_model_free(struct infer_model *m)
{
    ema_weights_free(&m->ew);
    if (m->net)
        unet_destroy(m->net);
    memset(m, 0, sizeof *m);
}

int infer_model_upload(const struct infer_model *m, struct backend *be, struct comm *comm,
                       struct infer_net *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (unet_check_backend(be, m->net, 1, 0, err, errlen) != 0)
        return -1;
    const struct unet_config *u = &m->cfg.model;
    size_t total = unet_params(m->net)->total;
    *out = (struct infer_net){.be = be,
                              .comm = comm,
                              .net = m->net,
                              .w = be->alloc(be, total * sizeof(float)),
                              .norm = be->alloc(be, 6 * sizeof(float)),
                              .min_signal_rate = m->cfg.diffusion.min_signal_rate,
                              .max_signal_rate = m->cfg.diffusion.max_signal_rate,
                              .per_image = (size_t)u->image_size * u->image_size * 3};
    be->upload(be, out->w, m->ew.w, total * sizeof(float));
    be->upload(be, out->norm, m->ew.norm, 6 * sizeof(float));
    return 0;
}

void infer_net_release(struct infer_net *n)
{
    sampler_destroy(n->be, n->sampler);
    n->be->free(n->be, n->w);
    n->be->free(n->be, n->norm);
    memset(n, 0, sizeof *n);
}
