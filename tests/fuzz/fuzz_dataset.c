/* fuzz_dataset.c: libFuzzer target for the HDF5 dataset reader (io/dataset.c): open and
 * validate, then read the first and last image of each split and, when small, a whole
 * split, as the trainer does. Reads are skipped for images over 256 pixels a side or splits
 * over 16 MB: such files are valid (ddim-prep --size 1024 makes them) and only cost memory,
 * which is not what the fuzzer looks for. */
#include "dataset.h"
#include "fuzz_util.h"

#include <stdlib.h>

static void read_split(struct dataset *ds, enum dataset_split split)
{
    long n = ds->count[split], s = ds->image_size;
    if (n < 1 || s > 256)
        return;
    char err[2048] = "";
    long idx[2] = {0, n - 1};
    float *px = malloc((size_t)(2 * s * s * 3) * sizeof(float));
    int rc = dataset_read(ds, split, idx, 2, px, err, sizeof err);
    fuzz_expect_message("fuzz_dataset (dataset_read)", rc, err);
    free(px);
    if ((size_t)n * (size_t)(s * s * 3) > (16u << 20))
        return;
    unsigned char *all = malloc((size_t)n * (size_t)(s * s * 3));
    err[0] = '\0';
    rc = dataset_read_all(ds, split, all, err, sizeof err);
    fuzz_expect_message("fuzz_dataset (dataset_read_all)", rc, err);
    free(all);
}

void fuzz_load(const char *path)
{
    struct dataset ds;
    char err[2048] = "";
    int rc = dataset_open(&ds, path, err, sizeof err);
    fuzz_expect_message("fuzz_dataset", rc, err);
    if (rc == 0) {
        read_split(&ds, SPLIT_TRAIN);
        read_split(&ds, SPLIT_VALIDATION);
        dataset_close(&ds);
    }
}
