#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <json-c/json.h>

#include "fs_json.h"
#include "fs_time.h"
#include "fs_store_int.h"
#include "fs_scan.h"

/* The columns after the first two of fhirsub_scan_events: what fs_notify_event_t holds. */
#define EVENT_COLUMNS \
    "e.event_number, e.created_ms, c.resource_type, c.resource_id, c.version_id," \
    " c.interaction, c.request_method, c.request_url, c.response_status, c.body"
#define SCAN_NCOLUMNS 12

/* Parameter: a JSON array of [id, after, limit] per subscription. A row per event in
 * (after, after + limit], or one without event when there is none: the index in the
 * array, the subscription's events_since_start ("" when its row is gone), the event.
 * The numbers are gapless unless pruned, so the range stands for "limit events above
 * after"; the counter, read in the same snapshot, tells when it does not. No ORDER BY:
 * SQLite sorted every row, bodies included, in a temporary b-tree; each
 * subscription's few events are put in order here. */
const fs_stmt_def_t fs_scan_statements[] = {
    { "fhirsub_scan_events_sqlite",
      "SELECT j.key, s.events_since_start, " EVENT_COLUMNS
      " FROM json_each(%s) j"
      " LEFT JOIN fhirsub_sub_counter s ON s.subscription_id = j.value ->> 0"
      " LEFT JOIN fhirsub_event e ON e.subscription_id = j.value ->> 0"
      " AND e.event_number > j.value ->> 1"
      " AND e.event_number <= (j.value ->> 1) + (j.value ->> 2)"
      " LEFT JOIN fhirsub_change c ON c.id = e.change_id", "sqlite3" },
    /* PostgreSQL: the counter as a subquery, the events and then each one's change as
     * LATERAL subqueries, each looked up in its primary key per item. Joined plainly, the
     * generic plan hashed the items (100 estimated) against a scan of every event and
     * change (52 ms a scan at 100,000 stored events); with one LATERAL for both, it
     * still hashed the changes when one subscription held 10^6 events (140 ms). The
     * LIMITs (no more rows can match) keep the subqueries from being flattened. */
    { "fhirsub_scan_events_pgsql",
      "SELECT j.k - 1, (SELECT s.events_since_start FROM fhirsub_sub_counter s"
      " WHERE s.subscription_id = j.v ->> 0), " EVENT_COLUMNS
      " FROM json_array_elements(CAST(%s AS json)) WITH ORDINALITY AS j(v, k)"
      " LEFT JOIN LATERAL (SELECT e.event_number, e.created_ms, e.change_id"
      " FROM fhirsub_event e WHERE e.subscription_id = j.v ->> 0"
      " AND e.event_number > CAST(j.v ->> 1 AS BIGINT)"
      " AND e.event_number <= CAST(j.v ->> 1 AS BIGINT) + CAST(j.v ->> 2 AS BIGINT)"
      " ORDER BY e.event_number LIMIT CAST(j.v ->> 2 AS BIGINT)) e ON true"
      " LEFT JOIN LATERAL (SELECT c.resource_type, c.resource_id, c.version_id,"
      " c.interaction, c.request_method, c.request_url, c.response_status, c.body"
      " FROM fhirsub_change c WHERE c.id = e.change_id LIMIT 1) c ON true", "pgsql" },
    { "fhirsub_scan_subs_sqlite",
      "SELECT " SUB_COLUMNS SUB_FROM " WHERE s.id IN (SELECT value FROM json_each(%s))",
      "sqlite3" },
    { "fhirsub_scan_subs_pgsql",
      "SELECT " SUB_COLUMNS SUB_FROM
      " WHERE s.id = ANY (ARRAY(SELECT json_array_elements_text(CAST(%s AS json))))"
      " AND c.subscription_id = ANY (ARRAY(SELECT json_array_elements_text("
      "CAST(%s AS json))))",
      "pgsql" },
    { NULL, NULL, NULL }
};

/* The statement of this driver (the SQL dialects differ in their JSON functions). */
static const char *label(const fs_store_t *store, const char *base, apr_pool_t *p)
{
    return apr_pstrcat(p, base, strcmp(apr_dbd_name(store->driver), "pgsql") ? "_sqlite"
                                                                             : "_pgsql", NULL);
}

static const char *reads_json(apr_pool_t *p, const fs_scan_read_t *reads, int n)
{
    json_object *arr = json_object_new_array();
    const char *text;
    int i;

    for (i = 0; i < n; ++i) {
        json_object *one = json_object_new_array();
        json_object_array_add(one, json_object_new_string(reads[i].sub_id));
        json_object_array_add(one, json_object_new_int64(reads[i].after));
        json_object_array_add(one, json_object_new_int64(reads[i].limit > 0 ? reads[i].limit
                                                                             : 1));
        json_object_array_add(arr, one);
    }
    text = fs_json_str(p, arr);
    json_object_put(arr);
    return text;
}

static int cmp_number(const void *a, const void *b)
{
    apr_int64_t x = ((const fs_notify_event_t *)a)->number;
    apr_int64_t y = ((const fs_notify_event_t *)b)->number;
    return (x > y) - (x < y);
}

/* Whether the events read are all those in (after, after + limit] that the counter
 * says exist: else a hole (pruned events) made the range hold fewer. */
static int complete(const fs_scan_read_t *r, const char *counter)
{
    apr_int64_t last, top = r->after + (r->limit > 0 ? r->limit : 1);
    if (!*counter) return r->events->nelts == 0;   /* row gone: no counter to trust */
    last = fs_store_to_i64(counter);
    if (last > top) last = top;
    return r->events->nelts == (last > r->after ? last - r->after : 0);
}

apr_status_t fs_scan_events_after(fs_store_t *store, apr_pool_t *p, fs_scan_read_t *reads,
                                  int n)
{
    const char *args[1];
    const char **counters = apr_pcalloc(p, sizeof(*counters) * (apr_size_t)(n > 0 ? n : 1));
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    if (n <= 0) return APR_SUCCESS;
    args[0] = reads_json(p, reads, n);
    for (i = 0; i < n; ++i) {
        reads[i].events = apr_array_make(p, 2, sizeof(fs_notify_event_t));
        counters[i] = "";
    }
    rv = fs_store_select(store, p, label(store, "fhirsub_scan_events", p), 1, args,
                         SCAN_NCOLUMNS, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        const char **c = APR_ARRAY_IDX(rows, i, const char **);
        apr_int64_t k = fs_store_to_i64(c[0]);
        if (k < 0 || k >= n) continue;
        counters[k] = c[1];
        if (*c[2]) fs_store_event_from_row(apr_array_push(reads[k].events), c + 2);
    }
    for (i = 0; rv == APR_SUCCESS && i < n; ++i) {
        apr_array_header_t *evs = reads[i].events;
        qsort(evs->elts, (size_t)evs->nelts, sizeof(fs_notify_event_t), cmp_number);
        if (complete(&reads[i], counters[i])) continue;
        rv = fs_store_events_after(store, p, reads[i].sub_id, reads[i].after, reads[i].limit,
                                   &reads[i].events);
    }
    return rv;
}

apr_status_t fs_scan_subs(fs_store_t *store, apr_pool_t *p, const apr_array_header_t *ids,
                          apr_hash_t **psubs)
{
    const char *args[2];
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    *psubs = apr_hash_make(p);
    if (ids->nelts == 0) return APR_SUCCESS;
    /* PostgreSQL: the array for each table, so that both are looked up by key (else the
     * generic plan hashed every counter row against the subscriptions found) */
    args[0] = args[1] = fs_json_str_array(p, ids);
    rv = fs_store_select(store, p, label(store, "fhirsub_scan_subs", p),
                         strcmp(apr_dbd_name(store->driver), "pgsql") ? 1 : 2, args,
                         SUB_NCOLUMNS, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        fs_sub_t *s = fs_store_sub_from_row(p, APR_ARRAY_IDX(rows, i, const char **));
        apr_hash_set(*psubs, s->id, APR_HASH_KEY_STRING, s);
    }
    return rv;
}
