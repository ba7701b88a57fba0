/* fuzz_image.c: libFuzzer target for ddim-prep's image decoding (io/image_io.c: JPEG
 * through libjpeg, PNG through libpng, told apart by content), then the center crop and
 * resize to 64x64 that ddim-prep applies to every photo it accepts. */
#include "fuzz_util.h"
#include "image_io.h"

#include <stdlib.h>

void fuzz_load(const char *path)
{
    struct image_u8 img;
    char err[2048] = "";
    int rc = image_load(path, &img, err, sizeof err);
    fuzz_expect_message("fuzz_image", rc, err);
    if (rc == 0) {
        float *out = malloc(64 * 64 * 3 * sizeof(float));
        image_center_crop_resize(&img, 64, out);
        free(out);
        image_free(&img);
    }
}
