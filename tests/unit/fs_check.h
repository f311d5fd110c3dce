/* What every Check program of the core shares: a fresh APR pool per test (as a
 * checked fixture) and the same main. Include once, from the test's .c file. */
#ifndef FS_CHECK_H
#define FS_CHECK_H

#include <stdlib.h>
#include <check.h>
#include <apr_general.h>
#include <apr_pools.h>

static apr_pool_t *pool;

static void pool_setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void pool_teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
}

/* A TCase whose tests each get a fresh `pool`. */
__attribute__((unused))
static TCase *fs_check_tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    return tc;
}

/* Run the suite, print Check's summary line, exit status 0 only if all passed. */
static int fs_check_main(Suite *s)
{
    SRunner *sr;
    int failed;

    apr_initialize();
    atexit(apr_terminate);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
