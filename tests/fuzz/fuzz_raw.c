/* fuzz_raw.c: the libFuzzer driver that hands the input bytes, as a file, to the target's
 * loader (fuzz_load): for every loader, HDF5 ones included (fuzz_h5_edit.c is the other
 * driver, for HDF5 structure). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_file f;
    fuzz_file_open(&f, data, size);
    fuzz_load(f.path);
    fuzz_file_close(&f);
    return 0;
}
