/* fuzz_config.c: libFuzzer target for the YAML config loader (io/config_yaml.c through
 * config_load_yaml, as ddim-dist --config reads a file), then the cross-field checks and the
 * writer of the resolved config, which run on whatever the loader accepted. */
#include "config.h"
#include "fuzz_util.h"

#include <stdio.h>

void fuzz_load(const char *path)
{
    struct run_config c;
    config_defaults(&c);
    char err[2048] = "";
    int rc = config_load_yaml(&c, path, err, sizeof err);
    fuzz_expect_message("fuzz_config", rc, err);
    if (rc == 0) {
        err[0] = '\0';
        rc = config_check(&c, err, sizeof err);
        fuzz_expect_message("fuzz_config (config_check)", rc, err);
        FILE *out = fopen("/dev/null", "w");
        if (out) {
            config_write_yaml(&c, out);
            fclose(out);
        }
    }
}
