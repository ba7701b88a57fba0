/* reach.c: one #include, compiled with the include directories of one layer's library
 * (tests/layering/CMakeLists.txt): a header of a higher layer must not be found there. */
#include LAYERING_HEADER

int layering_reach(void);
int layering_reach(void)
{
    return 0;
}
