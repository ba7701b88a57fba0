/* io_extern_down.c: the same hand-written prototype as io_extern.c, of a function of the
 * ground floor (util.h's util_now): a call down, which check_floors.sh must accept, so that
 * io_extern.c's failure is the floor's doing. */
extern double util_now(void);

double layering_io_extern_down(void);
double layering_io_extern_down(void)
{
    return util_now();
}
