#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "fs_time.h"
#include "fs_store_int.h"
#include "fs_admin.h"

/* Portable SQL as in fs_store.c: every value travels as text; a parameter compared
 * with a column takes the column's type (%lld declares BIGINT on pgsql, SQLite applies
 * the column's affinity); a parameter in arithmetic or against a literal is CAST. */

#define GRANT_FILTER \
    " (g.owner = %s OR %s = '')" \
    " AND (CAST(%s AS INTEGER) = 1 OR (g.revoked_ms = 0 AND g.expires_ms > %lld))"

const fs_stmt_def_t fs_admin_statements[] = {
    { "fhirsub_admin_sub_list",
      "SELECT " SUB_COLUMNS SUB_FROM " WHERE s.owner = %s OR %s = ''"
      " ORDER BY s.created_ms, s.id", NULL },
    { "fhirsub_admin_grant_list",
      "SELECT g.id, g.owner, g.issued_ms, g.expires_ms, g.revoked_ms FROM fhirsub_grant g"
      " WHERE" GRANT_FILTER " ORDER BY g.issued_ms, g.id", NULL },
    { "fhirsub_admin_grant_links",
      "SELECT l.grant_id, l.subscription_id FROM fhirsub_grant_subscription l"
      " JOIN fhirsub_grant g ON g.id = l.grant_id"
      " WHERE" GRANT_FILTER " ORDER BY l.grant_id, l.subscription_id", NULL },
    { "fhirsub_admin_grant_revoke_live",
      "UPDATE fhirsub_grant SET revoked_ms = %lld"
      " WHERE owner = %s AND revoked_ms = 0 AND expires_ms > %lld", NULL },
    { "fhirsub_admin_backlog",
      "SELECT s.id, s.owner, s.status, s.end_ms, c.events_since_start, c.last_delivery_ms,"
      " c.last_bound_ms, COUNT(e.event_number),"
      " COALESCE(SUM(CASE WHEN e.created_ms > c.last_delivery_ms THEN 1 ELSE 0 END), 0),"
      " COALESCE(MIN(e.created_ms), 0)"
      SUB_FROM " LEFT JOIN fhirsub_event e ON e.subscription_id = s.id"
      " GROUP BY s.id, s.owner, s.status, s.end_ms, c.events_since_start,"
      " c.last_delivery_ms, c.last_bound_ms, s.created_ms"
      " ORDER BY s.created_ms, s.id", NULL },
    { "fhirsub_admin_event_count_old",
      "SELECT COUNT(*) FROM fhirsub_event WHERE created_ms < %lld", NULL },
    /* An event stays when its subscription wants it: among the newest `keep` numbers,
     * or bound since the cutoff and created after its last delivery. Events of a
     * subscription that no longer exists have nobody to keep them. */
    { "fhirsub_admin_event_prune",
      "DELETE FROM fhirsub_event WHERE created_ms < %lld AND NOT EXISTS ("
      " SELECT 1 FROM fhirsub_sub_counter s"
      " WHERE s.subscription_id = fhirsub_event.subscription_id"
      " AND (fhirsub_event.event_number > s.events_since_start - CAST(%s AS BIGINT)"
      " OR (s.last_bound_ms >= %lld AND fhirsub_event.created_ms > s.last_delivery_ms)))",
      NULL },
    /* A recorder's change row and its events commit together, so an uncommitted
     * change is invisible here and never taken for an orphan. */
    { "fhirsub_admin_change_prune",
      "DELETE FROM fhirsub_change WHERE NOT EXISTS ("
      " SELECT 1 FROM fhirsub_event e WHERE e.change_id = fhirsub_change.id)", NULL },
    { NULL, NULL, NULL }
};

apr_status_t fs_admin_prepare(fs_store_t *store, apr_pool_t *p, const char **perr)
{
    const fs_stmt_def_t *def;

    if (!store->prepared) store->prepared = apr_hash_make(p);
    for (def = fs_admin_statements; def->label; ++def) {
        apr_dbd_prepared_t *stmt = NULL;
        int err;
        if (apr_hash_get(store->prepared, def->label, APR_HASH_KEY_STRING)) continue;
        err = apr_dbd_prepare(store->driver, p, store->handle, def->sql, def->label, &stmt);
        if (err) {
            *perr = apr_psprintf(p, "preparing %s: %s", def->label,
                                 fs_store_error(store, err));
            return APR_EGENERAL;
        }
        apr_hash_set(store->prepared, def->label, APR_HASH_KEY_STRING, stmt);
    }
    return APR_SUCCESS;
}

apr_status_t fs_admin_sub_list(fs_store_t *store, apr_pool_t *p, const char *owner,
                               apr_array_header_t **psubs)
{
    const char *args[] = { owner ? owner : "", owner ? owner : "" };
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    *psubs = apr_array_make(p, 8, sizeof(fs_sub_t *));
    rv = fs_store_select(store, p, "fhirsub_admin_sub_list", 2, args, SUB_NCOLUMNS, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        APR_ARRAY_PUSH(*psubs, fs_sub_t *) =
            fs_store_sub_from_row(p, APR_ARRAY_IDX(rows, i, const char **));
    }
    return rv;
}

static fs_grant_t *grant_from_row(apr_pool_t *p, const char **c)
{
    fs_grant_t *g = apr_pcalloc(p, sizeof(*g));
    g->id = c[0];
    g->owner = c[1];
    g->issued = fs_time_from_ms(fs_store_to_i64(c[2]));
    g->expires = fs_time_from_ms(fs_store_to_i64(c[3]));
    g->revoked = fs_time_from_ms(fs_store_to_i64(c[4]));
    g->sub_ids = apr_array_make(p, 2, sizeof(const char *));
    return g;
}

/* Attach the (grant_id, subscription_id) rows to the grants listed in byid. */
static void attach_links(apr_hash_t *byid, const apr_array_header_t *links)
{
    int i;
    for (i = 0; i < links->nelts; ++i) {
        const char **c = APR_ARRAY_IDX(links, i, const char **);
        fs_grant_t *g = apr_hash_get(byid, c[0], APR_HASH_KEY_STRING);
        if (g) APR_ARRAY_PUSH(g->sub_ids, const char *) = c[1];
    }
}

apr_status_t fs_admin_grant_list(fs_store_t *store, apr_pool_t *p, const char *owner,
                                 int all, apr_time_t now, apr_array_header_t **pgrants)
{
    const char *o = owner ? owner : "";
    const char *args[] = { o, o, all ? "1" : "0", fs_store_i64(p, fs_time_to_ms(now)) };
    apr_array_header_t *rows, *links;
    apr_hash_t *byid = apr_hash_make(p);
    apr_status_t rv;
    int i;

    *pgrants = apr_array_make(p, 8, sizeof(fs_grant_t *));
    rv = fs_store_select(store, p, "fhirsub_admin_grant_list", 4, args, 5, &rows);
    if (rv != APR_SUCCESS) return rv;
    for (i = 0; i < rows->nelts; ++i) {
        fs_grant_t *g = grant_from_row(p, APR_ARRAY_IDX(rows, i, const char **));
        apr_hash_set(byid, g->id, APR_HASH_KEY_STRING, g);
        APR_ARRAY_PUSH(*pgrants, fs_grant_t *) = g;
    }
    /* one query for every link instead of one per grant */
    rv = fs_store_select(store, p, "fhirsub_admin_grant_links", 4, args, 2, &links);
    if (rv == APR_SUCCESS) attach_links(byid, links);
    return rv;
}

apr_status_t fs_admin_grant_revoke_live(fs_store_t *store, apr_pool_t *p, const char *owner,
                                        apr_time_t now, int *pcount)
{
    const char *ms = fs_store_i64(p, fs_time_to_ms(now));
    const char *args[] = { ms, owner, ms };
    *pcount = 0;
    return fs_store_exec(store, p, "fhirsub_admin_grant_revoke_live", pcount, 3, args);
}

static fs_admin_backlog_t *backlog_from_row(apr_pool_t *p, const char **c)
{
    fs_admin_backlog_t *b = apr_pcalloc(p, sizeof(*b));
    b->id = c[0];
    b->owner = c[1];
    b->status = c[2];
    b->end = fs_time_from_ms(fs_store_to_i64(c[3]));
    b->events_since_start = fs_store_to_i64(c[4]);
    b->last_delivery = fs_time_from_ms(fs_store_to_i64(c[5]));
    b->last_bound = fs_time_from_ms(fs_store_to_i64(c[6]));
    b->stored = fs_store_to_i64(c[7]);
    b->undelivered = fs_store_to_i64(c[8]);
    b->oldest = fs_time_from_ms(fs_store_to_i64(c[9]));
    return b;
}

apr_status_t fs_admin_backlog(fs_store_t *store, apr_pool_t *p, apr_array_header_t **prows)
{
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    *prows = apr_array_make(p, 8, sizeof(fs_admin_backlog_t *));
    rv = fs_store_select(store, p, "fhirsub_admin_backlog", 0, NULL, 10, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        APR_ARRAY_PUSH(*prows, fs_admin_backlog_t *) =
            backlog_from_row(p, APR_ARRAY_IDX(rows, i, const char **));
    }
    return rv;
}

static apr_status_t count_old(fs_store_t *store, apr_pool_t *p, const char *before_ms,
                              apr_int64_t *pcount)
{
    const char *args[] = { before_ms };
    apr_array_header_t *rows;
    apr_status_t rv;

    rv = fs_store_select(store, p, "fhirsub_admin_event_count_old", 1, args, 1, &rows);
    if (rv == APR_SUCCESS && rows->nelts > 0) {
        *pcount = fs_store_to_i64(APR_ARRAY_IDX(rows, 0, const char **)[0]);
    }
    return rv;
}

apr_status_t fs_admin_prune_events(fs_store_t *store, apr_pool_t *p, apr_time_t before,
                                   apr_int64_t keep, fs_admin_prune_t *result)
{
    const char *ms = fs_store_i64(p, fs_time_to_ms(before));
    const char *args[] = { ms, fs_store_i64(p, keep > 0 ? keep : 0), ms };
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;
    int events = 0, changes = 0;

    memset(result, 0, sizeof(*result));
    if (APR_SUCCESS != (rv = fs_store_tx_start(store, p, &tx))) return rv;
    rv = count_old(store, p, ms, &result->events_old);
    if (rv == APR_SUCCESS) {
        rv = fs_store_exec(store, p, "fhirsub_admin_event_prune", &events, 3, args);
    }
    if (rv == APR_SUCCESS) {
        rv = fs_store_exec(store, p, "fhirsub_admin_change_prune", &changes, 0, NULL);
    }
    rv = fs_store_tx_end(store, p, tx, rv);
    if (rv == APR_SUCCESS) {
        result->events_deleted = events;
        result->changes_deleted = changes;
    }
    return rv;
}
