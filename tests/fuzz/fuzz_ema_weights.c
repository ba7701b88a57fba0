/* fuzz_ema_weights.c: libFuzzer target for the EMA-weights reader (io/ema_weights.c), as
 * ddim-sample reads an export (--weights) and a checkpoint (--checkpoint): each input is
 * read both ways. The stored config and shape decide the network that is built. */
#include "ema_weights.h"
#include "fuzz_util.h"

void fuzz_load(const char *path)
{
    for (int from_checkpoint = 0; from_checkpoint < 2; from_checkpoint++) {
        struct ema_weights ew;
        char err[2048] = "";
        int rc = ema_weights_read(path, from_checkpoint, &ew, err, sizeof err);
        fuzz_expect_message("fuzz_ema_weights", rc, err);
        if (rc == 0)
            ema_weights_free(&ew);
    }
}
