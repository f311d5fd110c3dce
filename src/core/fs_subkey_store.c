/* fs_subkey_store: writing subscriptions' index keys (fs_subkey.h, table fhirsub_sub_key):
 * with each subscription written, and once for those stored before schema version 2. */
#include <apr_strings.h>

#include "fs_match.h"
#include "fs_subkey.h"
#include "fs_store_int.h"

/* The keys of a subscription's filters, NULL when it has none (or they do not parse). */
static apr_array_header_t *sub_keys(apr_pool_t *p, const fs_sub_t *s)
{
    apr_array_header_t *filters;
    const char *err = NULL;
    if (APR_SUCCESS != fs_match_sub_filters(&filters, p, s, &err)) return NULL;
    return fs_subkey_of_filters(p, filters);
}

apr_status_t fs_subkey_write(fs_store_t *store, apr_pool_t *p, const fs_sub_t *s)
{
    const char *id[] = { s->id };
    apr_array_header_t *keys = sub_keys(p, s);
    apr_status_t rv;
    int i;

    rv = fs_store_exec(store, p, "fhirsub_sub_key_delete", NULL, 1, id);
    for (i = 0; rv == APR_SUCCESS && keys && i < keys->nelts; ++i) {
        const char *row[] = { APR_ARRAY_IDX(keys, i, const char *), s->id };
        rv = fs_store_exec(store, p, "fhirsub_sub_key_insert", NULL, 2, row);
    }
    if (rv == APR_SUCCESS) {
        const char *keyed[] = { keys ? "1" : "0", s->id };
        rv = fs_store_exec(store, p, "fhirsub_sub_set_keyed", NULL, 2, keyed);
    }
    return rv;
}

/* ---- migration ------------------------------------------------------------------------
 * The statements of the store are prepared only once the schema is current, so these are
 * prepared here, unnamed (pgsql then sends them with their parameters, never in the SQL). */

#define BACKFILL_SELECT "SELECT id, shape, topic, criteria, filters FROM fhirsub_subscription"
#define BACKFILL_INSERT "INSERT INTO fhirsub_sub_key (key, subscription_id) VALUES (%s, %s)"
#define BACKFILL_MARK "UPDATE fhirsub_subscription SET keyed = 1 WHERE id = %s"

/* Every stored subscription with what its filters are read from. */
static apr_status_t stored_subs(fs_store_t *store, apr_pool_t *p, apr_array_header_t **psubs)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;

    *psubs = apr_array_make(p, 16, sizeof(fs_sub_t *));
    if (apr_dbd_select(store->driver, p, store->handle, &res, BACKFILL_SELECT, 0)) {
        return APR_EGENERAL;
    }
    while (0 == apr_dbd_get_row(store->driver, p, res, &row, -1)) {
        fs_sub_t *s = apr_pcalloc(p, sizeof(*s));
        const char *c[5];
        int i;
        for (i = 0; i < 5; ++i) {
            const char *v = apr_dbd_get_entry(store->driver, row, i);
            c[i] = apr_pstrdup(p, v ? v : "");
        }
        s->id = c[0];
        s->shape = (fs_sub_shape_t)fs_store_to_i64(c[1]);
        s->topic = *c[2] ? c[2] : NULL;
        s->criteria = c[3];
        s->filters_json = c[4];
        APR_ARRAY_PUSH(*psubs, fs_sub_t *) = s;
    }
    return APR_SUCCESS;
}

static apr_status_t run(fs_store_t *store, apr_pool_t *p, apr_dbd_prepared_t *stmt,
                        int nargs, const char **args)
{
    int nrows = 0;
    return apr_dbd_pquery(store->driver, p, store->handle, &nrows, stmt, nargs, args)
           ? APR_EGENERAL : APR_SUCCESS;
}

apr_status_t fs_subkey_backfill(fs_store_t *store, apr_pool_t *p, const char **perr)
{
    apr_dbd_prepared_t *insert = NULL, *mark = NULL;
    apr_array_header_t *subs, *keys;
    apr_status_t rv;
    int i, j;

    *perr = "cannot index the filters of the stored subscriptions";
    if (APR_SUCCESS != (rv = stored_subs(store, p, &subs))) return rv;
    if (apr_dbd_prepare(store->driver, p, store->handle, BACKFILL_INSERT, NULL, &insert)
        || apr_dbd_prepare(store->driver, p, store->handle, BACKFILL_MARK, NULL, &mark)) {
        return APR_EGENERAL;
    }
    for (i = 0; rv == APR_SUCCESS && i < subs->nelts; ++i) {
        const fs_sub_t *s = APR_ARRAY_IDX(subs, i, const fs_sub_t *);
        const char *id[] = { s->id };
        if (!(keys = sub_keys(p, s))) continue;
        for (j = 0; rv == APR_SUCCESS && j < keys->nelts; ++j) {
            const char *row[] = { APR_ARRAY_IDX(keys, j, const char *), s->id };
            rv = run(store, p, insert, 2, row);
        }
        if (rv == APR_SUCCESS) rv = run(store, p, mark, 1, id);
    }
    if (rv == APR_SUCCESS) *perr = NULL;
    return rv;
}
