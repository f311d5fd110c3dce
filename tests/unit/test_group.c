/* Unit tests: fs_group, the group commit, with a batch function that records what it was
 * given (no database): concurrent items share batches, each item is written exactly once
 * and answered with its batch's outcome, and a failing batch costs no other item. */
#include <string.h>
#include <apr_atomic.h>
#include <apr_thread_proc.h>
#include <apr_time.h>

#include "../../src/core/fs_group.h"
#include "fs_check.h"

#define THREADS 12
#define POISON (-1)      /* an item whose batch fails */

static volatile apr_uint32_t written[THREADS];  /* times each item was in a committed batch */
static volatile apr_uint32_t batches, shared;   /* calls of the batch function, with n > 1 */

/* Fails a batch holding POISON; else "commits" it after a pause (a disk flush). */
static apr_status_t write_items(fs_store_t *store, apr_pool_t *p, void *const *items, int n)
{
    int i, poisoned = 0;
    (void)store;
    (void)p;
    apr_atomic_inc32(&batches);
    if (n > 1) apr_atomic_inc32(&shared);
    apr_sleep(apr_time_from_msec(5));
    for (i = 0; i < n; ++i) poisoned |= *(const int *)items[i] == POISON;
    if (poisoned) return APR_EGENERAL;
    for (i = 0; i < n; ++i) apr_atomic_inc32(&written[*(const int *)items[i]]);
    return APR_SUCCESS;
}

typedef struct worker {
    fs_group_t *group;
    int item;
    apr_status_t rv;
} worker;

static void *APR_THREAD_FUNC run_one(apr_thread_t *t, void *data)
{
    worker *w = data;
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    w->rv = fs_group_run(w->group, write_items, "db", NULL, p, &w->item);
    apr_pool_destroy(p);
    apr_thread_exit(t, APR_SUCCESS);
    return NULL;
}

/* THREADS items written at once through a fresh group (item poison_at fails). */
static void run_threads(int max_batch, worker *w, int poison_at)
{
    apr_thread_t *t[THREADS];
    fs_group_t *group = NULL;
    apr_status_t ignored;
    int i;

    ck_assert_int_eq(fs_group_create(&group, pool, max_batch), APR_SUCCESS);
    memset((void *)written, 0, sizeof(written));
    batches = shared = 0;
    for (i = 0; i < THREADS; ++i) {
        w[i].group = group;
        w[i].item = i == poison_at ? POISON : i;
        w[i].rv = -1;
        ck_assert_int_eq(apr_thread_create(&t[i], NULL, run_one, &w[i], pool), APR_SUCCESS);
    }
    for (i = 0; i < THREADS; ++i) apr_thread_join(&ignored, t[i]);
}

START_TEST(concurrent_items_share_batches)
{
    worker w[THREADS];
    int i;

    run_threads(64, w, -1);
    for (i = 0; i < THREADS; ++i) {
        ck_assert_int_eq(w[i].rv, APR_SUCCESS);
        ck_assert_int_eq(written[i], 1);
    }
    ck_assert_msg(shared > 0 && batches < THREADS,
                  "%u batches for %d concurrent items: none shared", batches, THREADS);
}
END_TEST

START_TEST(failed_batch_costs_no_other_item)
{
    worker w[THREADS];
    int i;

    run_threads(64, w, 3);
    for (i = 0; i < THREADS; ++i) {
        ck_assert_msg(i == 3 ? w[i].rv != APR_SUCCESS : w[i].rv == APR_SUCCESS,
                      "item %d: %d", i, w[i].rv);
        ck_assert_int_eq(written[i], i == 3 ? 0 : 1);
    }
}
END_TEST

START_TEST(batches_are_bounded)
{
    worker w[THREADS];
    int i;

    /* at most 2 per batch: every item still written once */
    run_threads(2, w, -1);
    for (i = 0; i < THREADS; ++i) ck_assert_int_eq(written[i], 1);
    ck_assert_uint_ge(batches, THREADS / 2);
}
END_TEST

START_TEST(without_group_alone)
{
    int item = 1;
    batches = 0;
    memset((void *)written, 0, sizeof(written));
    ck_assert_int_eq(fs_group_run(NULL, write_items, "db", NULL, pool, &item), APR_SUCCESS);
    ck_assert_int_eq(written[1], 1);
    ck_assert_uint_eq(batches, 1);
}
END_TEST

static Suite *group_suite(void)
{
    Suite *s = suite_create("fs_group");
    TCase *tc = fs_check_tcase("group commit");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, concurrent_items_share_batches);
    tcase_add_test(tc, failed_batch_costs_no_other_item);
    tcase_add_test(tc, batches_are_bounded);
    tcase_add_test(tc, without_group_alone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(group_suite());
}
