/* test_op_semantics.h: what test_op_semantics.c (the write/accumulate contracts and main)
 * and test_op_values.c (the known values), one program, share. */
#ifndef DDIM_TEST_OP_SEMANTICS_H
#define DDIM_TEST_OP_SEMANTICS_H

#include <stddef.h>

struct backend;
extern struct backend *be; /* the CPU backend, test_op_semantics.c's main makes it */

/* n floats, each v (test_alloc_zeros memory) */
float *filled(size_t n, float v);

/* test_op_values.c: the known values, in order */
void test_op_values(void);

#endif
