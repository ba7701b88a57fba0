/* io_extern.c: a layering case that must fail (tests/layering): a file of the io floor that
 * declares a function of the model floor by hand and calls it. It compiles with io's include
 * directories; the link-level check (check_floors.sh --build, nm) must refuse it. */
struct trainer;
extern void trainer_destroy(struct trainer *t);

void layering_io_extern(struct trainer *t);
void layering_io_extern(struct trainer *t)
{
    trainer_destroy(t);
}
