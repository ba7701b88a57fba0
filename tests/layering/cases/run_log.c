/* run_log.c (a layering case, tests/layering): a file named after a module that exports a
 * function without the module's prefix (as if src/model/run_log.c exported make_dirs).
 * check_names.sh must refuse it. */
int run_log_case_named_well(void);
int run_log_case_named_well(void)
{
    return 1;
}

int make_dirs_case(void);
int make_dirs_case(void)
{
    return 2;
}
