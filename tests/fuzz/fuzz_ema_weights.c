/* fuzz_ema_weights.c: libFuzzer target for the EMA-weights reader (io/ema_weights.c) under
 * the inference model (src/model/infer_model.c), as ddim-sample reads an export (--weights) and a
 * checkpoint (--checkpoint): each input is read both ways. The stored config and shape
 * decide the network that is built. */
#include "fuzz_util.h"
#include "infer_model.h"

void fuzz_load(const char *path)
{
    for (int from_checkpoint = 0; from_checkpoint < 2; from_checkpoint++) {
        struct infer_model m;
        char err[2048] = "";
        int rc = infer_model_load(path, from_checkpoint, &m, err, sizeof err);
        fuzz_expect_message("fuzz_ema_weights", rc, err);
        if (rc == 0)
            infer_model_free(&m);
    }
}
