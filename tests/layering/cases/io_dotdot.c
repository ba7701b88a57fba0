/* io_dotdot.c: a layering case that must fail (tests/layering): a file of the io floor that
 * reaches the model's configuration through a relative path, around its include
 * directories. check_floors.sh must refuse it. */
#include "../../../src/model/config.h"

int layering_io_dotdot(void);
int layering_io_dotdot(void)
{
    return CONFIG_PATH_MAX;
}
