/* tb_events_none.c: stands in for tb_events.c in a build without protobuf-c or ISA-L
 * (CMakeLists.txt): no event file is written, and tb_events_open says why. */
#include "tb_events.h"
#include "util.h"

#include <string.h>

int tb_events_available(void)
{
    return 0;
}

int tb_events_open(struct tb_events *tb, const char *dir, char *err, size_t errlen)
{
    memset(tb, 0, sizeof *tb);
    tb->file.fd = -1;
    return util_error(err, errlen,
                      "no TensorBoard event file in '%s': this build has no TensorBoard support "
                      "(it needs protobuf-c and ISA-L: Debian libprotobuf-c-dev, "
                      "protobuf-c-compiler, libisal-dev; then configure again)",
                      dir);
}

int tb_events_start(struct tb_events *tb, long step)
{
    return -1;
}

int tb_events_scalars(struct tb_events *tb, long step, const struct tb_scalar *values, int n)
{
    return -1;
}

int tb_events_image(struct tb_events *tb, long step, const char *tag, const void *png, size_t bytes,
                    int width, int height)
{
    return -1;
}

int tb_events_text(struct tb_events *tb, long step, const char *tag, const char *markdown)
{
    return -1;
}

int tb_events_close(struct tb_events *tb)
{
    return 0;
}

int tb_events_trim(const char *dir, long max_step, long *records, int *files, char *err,
                   size_t errlen)
{
    *records = 0;
    *files = 0;
    return 0;
}
