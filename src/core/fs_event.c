#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "fs_log.h"
#include "fs_notify.h"
#include "fs_time.h"
#include "fs_store_int.h"
#include "fs_event.h"

const fs_stmt_def_t fs_event_statements[] = {
    { "fhirsub_change_insert",
      "INSERT INTO fhirsub_change (id, created_ms, resource_type, resource_id, version_id,"
      " interaction, request_method, request_url, response_status, body)"
      " VALUES (%s, %lld, %s, %s, %s, %s, %s, %s, %s, %s)", NULL },
    /* Takes the row lock that serialises numbering for this subscription. */
    { "fhirsub_event_bump",
      "UPDATE fhirsub_subscription SET events_since_start = events_since_start + 1"
      " WHERE id = %s AND status IN ('active', 'error')", NULL },
    { "fhirsub_event_insert",
      "INSERT INTO fhirsub_event (subscription_id, event_number, change_id, created_ms)"
      " SELECT id, events_since_start, %s, %lld FROM fhirsub_subscription WHERE id = %s",
      NULL },
    { "fhirsub_sub_list_live",
      "SELECT " SUB_COLUMNS " FROM fhirsub_subscription"
      " WHERE status IN ('active', 'error') ORDER BY id", NULL },
    /* Delivered at commit; the notifier rescans anyway, so a lost one only delays. */
    { "fhirsub_event_notify", "SELECT pg_notify(%s, %s)", "pgsql" },
    { NULL, NULL, NULL }
};

apr_status_t fs_event_live_subs(fs_store_t *store, apr_pool_t *p,
                                apr_array_header_t **psubs)
{
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    *psubs = apr_array_make(p, 8, sizeof(fs_sub_t *));
    rv = fs_store_select(store, p, "fhirsub_sub_list_live", 0, NULL, SUB_NCOLUMNS, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        APR_ARRAY_PUSH(*psubs, fs_sub_t *) =
            fs_store_sub_from_row(p, APR_ARRAY_IDX(rows, i, const char **));
    }
    return rv;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static apr_status_t insert_change(fs_store_t *store, apr_pool_t *p, const fs_change_t *c)
{
    const char *args[] = {
        c->id, fs_store_i64(p, fs_time_to_ms(c->created)), c->resource_type,
        c->resource_id, c->version_id ? c->version_id : "", c->interaction,
        c->request_method, c->request_url, c->response_status, c->body ? c->body : ""
    };
    return fs_store_exec(store, p, "fhirsub_change_insert", NULL, 10, args);
}

static apr_status_t number_event(fs_store_t *store, apr_pool_t *p, const fs_change_t *c,
                                 const char *sub_id, apr_array_header_t *notified)
{
    const char *bump[] = { sub_id };
    const char *ins[] = { c->id, fs_store_i64(p, fs_time_to_ms(c->created)), sub_id };
    apr_status_t rv;
    int nrows = 0;

    rv = fs_store_exec(store, p, "fhirsub_event_bump", &nrows, 1, bump);
    if (rv != APR_SUCCESS || nrows == 0) return rv;   /* gone or off meanwhile */
    rv = fs_store_exec(store, p, "fhirsub_event_insert", NULL, 3, ins);
    if (rv == APR_SUCCESS) APR_ARRAY_PUSH(notified, const char *) = sub_id;
    return rv;
}

static apr_status_t notify(fs_store_t *store, apr_pool_t *p, const char *payload)
{
    const char *args[] = { FS_NOTIFY_CHANNEL, payload };
    if (strcmp(apr_dbd_name(store->driver), "pgsql") || !*payload) return APR_SUCCESS;
    /* Too long for NOTIFY: an empty payload means "any subscription". */
    if (strlen(payload) > FS_NOTIFY_PAYLOAD_MAX) args[1] = "";
    return fs_store_exec(store, p, "fhirsub_event_notify", NULL, 2, args);
}

apr_status_t fs_event_record(fs_store_t *store, apr_pool_t *p, const fs_change_t *change,
                             const apr_array_header_t *sub_ids)
{
    apr_array_header_t *sorted;
    apr_dbd_transaction_t *tx = NULL;
    apr_array_header_t *notified;
    apr_status_t rv;
    int i;

    if (!sub_ids || sub_ids->nelts == 0) return APR_SUCCESS;
    /* One locking order for every writer: no deadlock between two writes that
     * match the same subscriptions. */
    sorted = apr_array_copy(p, sub_ids);
    qsort(sorted->elts, (size_t)sorted->nelts, sizeof(const char *), cmp_str);
    /* joined once at the end: appending to a string per match is quadratic */
    notified = apr_array_make(p, sorted->nelts, sizeof(const char *));
    if (APR_SUCCESS != (rv = fs_store_tx_start(store, p, &tx))) return rv;
    rv = insert_change(store, p, change);
    for (i = 0; rv == APR_SUCCESS && i < sorted->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(sorted, i, const char *);
        if (i > 0 && !strcmp(id, APR_ARRAY_IDX(sorted, i - 1, const char *))) continue;
        rv = number_event(store, p, change, id, notified);
    }
    if (rv == APR_SUCCESS) rv = notify(store, p, apr_array_pstrcat(p, notified, ' '));
    return fs_store_tx_end(store, p, tx, rv);
}
