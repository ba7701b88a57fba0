/* trainer_state.c: see trainer_state.h. */
#include "trainer_state.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* The state's parts: host buffer, the trainer's backend buffer, floats. */
struct part {
    float **host;
    float *dev;
    size_t count;
};

static int parts_of(const struct trainer *t, struct train_state *s, struct part p[5])
{
    const struct param_table *pt = unet_params(t->net);
    p[0] = (struct part){&s->w, t->w, pt->total};
    p[1] = (struct part){&s->ema_w, t->ema_w, pt->total};
    p[2] = (struct part){&s->adam_m, t->adam_m, pt->trainable};
    p[3] = (struct part){&s->adam_v, t->adam_v, pt->trainable};
    p[4] = (struct part){NULL, t->norm, 6}; /* s->norm, an array */
    return 5;
}

static float *host_of(struct train_state *s, const struct part *p)
{
    return p->host ? *p->host : s->norm;
}

void trainer_state_alloc(const struct trainer *t, struct train_state *s)
{
    memset(s, 0, sizeof *s);
    unet_shape_of_config(unet_get_config(t->net), &s->shape);
    s->params = unet_params(t->net);
    struct part p[5];
    int n = parts_of(t, s, p);
    for (int i = 0; i < n; i++)
        if (p[i].host)
            *p[i].host = util_xmalloc(p[i].count * sizeof(float) + 1);
}

void trainer_state_free(struct train_state *s)
{
    free(s->w);
    free(s->ema_w);
    free(s->adam_m);
    free(s->adam_v);
    memset(s, 0, sizeof *s);
}

void trainer_state_get(const struct trainer *t, struct train_state *s)
{
    struct part p[5];
    int n = parts_of(t, s, p);
    for (int i = 0; i < n; i++)
        t->be->download(t->be, host_of(s, &p[i]), p[i].dev, p[i].count * sizeof(float));
    s->step = t->step;
}

void trainer_state_set(struct trainer *t, const struct train_state *s)
{
    struct part p[5];
    int n = parts_of(t, (struct train_state *)s, p);
    for (int i = 0; i < n; i++)
        t->be->upload(t->be, p[i].dev, host_of((struct train_state *)s, &p[i]),
                      p[i].count * sizeof(float));
    t->step = s->step;
}

void trainer_state_broadcast(struct trainer *t)
{
    struct train_state none = {0};
    struct part p[5];
    int n = parts_of(t, &none, p);
    for (int i = 0; i < n; i++)
        t->comm->broadcast(t->comm, p[i].dev, p[i].count * sizeof(float));
    /* the step is host state: through backend memory, which the communicator works on */
    struct backend *be = t->be;
    int *dev = be->alloc(be, sizeof(int));
    be->upload(be, dev, &t->step, sizeof(int));
    t->comm->broadcast(t->comm, dev, sizeof(int));
    be->download(be, &t->step, dev, sizeof(int));
    be->free(be, dev);
}

int trainer_checkpoint_write(const struct trainer *t, const char *path,
                             const struct checkpoint_info *pos, const char *config_yaml, char *err,
                             size_t errlen)
{
    struct train_state s;
    trainer_state_alloc(t, &s);
    trainer_state_get(t, &s);
    int rc = checkpoint_write(path, &s, pos, config_yaml, err, errlen);
    trainer_state_free(&s);
    return rc;
}

int trainer_checkpoint_read(struct trainer *t, const char *path, struct checkpoint_info *pos,
                            char *err, size_t errlen)
{
    struct train_state s;
    trainer_state_alloc(t, &s);
    int rc = checkpoint_read(path, &s, pos, err, errlen);
    if (rc == 0)
        trainer_state_set(t, &s);
    trainer_state_free(&s);
    return rc;
}
