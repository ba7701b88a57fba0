/* fuzz_checkpoint.c: libFuzzer target for the checkpoint reader (io/checkpoint.c), as
 * ddim-dist reads run.dir/checkpoint.h5 to resume (src/model/trainer_state.c): into a trainer for
 * the tiny model that tests/fuzz/make_seeds.sh trains (16x16, widths [8, 16], block depth 1,
 * embedding 8), built once on the CPU backend. */
#include "backend.h"
#include "comm.h"
#include "config.h"
#include "fuzz_util.h"
#include "trainer_state.h"

#include <stdio.h>
#include <stdlib.h>

static struct trainer *tiny_trainer(void)
{
    static struct trainer *t;
    if (t)
        return t;
    struct unet_config u = config_default_model();
    u.image_size = 16;
    u.num_levels = 2;
    u.widths[0] = 8;
    u.widths[1] = 16;
    u.block_depth = 1;
    u.embedding_dims = 8;
    struct diffusion_config dc = config_default_diffusion();
    char err[1024];
    t = trainer_create(cpu_backend_create(), comm_single(), &u, &dc, 2, 2, 0, err, sizeof err);
    if (!t) {
        fprintf(stderr, "fuzz_checkpoint: %s\n", err);
        exit(2);
    }
    return t;
}

void fuzz_load(const char *path)
{
    struct trainer *t = tiny_trainer();
    struct checkpoint_info info;
    char err[2048] = "";
    int rc = trainer_checkpoint_read(t, path, &info, err, sizeof err);
    fuzz_expect_message("fuzz_checkpoint", rc, err);
}
