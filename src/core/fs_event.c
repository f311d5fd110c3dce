#include <stdlib.h>
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "fs_log.h"
#include "fs_notify.h"
#include "fs_time.h"
#include "fs_topic.h"
#include "fs_store_int.h"
#include "fs_event.h"

#define CANDIDATE_COLUMNS "id, status, shape, topic, criteria, filters, version_id"
#define CANDIDATE_COLUMNS_S \
    "s.id, s.status, s.shape, s.topic, s.criteria, s.filters, s.version_id"
#define CANDIDATE_NCOLUMNS 7
#define LIVE "status IN ('active', 'error')"

/* The candidates of a write (fs_event_candidate_subs): a topic's subscriptions, and the
 * classic ones whose criteria are the type or start with "Type?", through the (topic,
 * keyed, status) index; then, when the write's keys are known, the keyed ones among them
 * only through fhirsub_sub_key. Parameters: the topic url, the type, then for SQLite the
 * type followed by '@' (the criteria as the range [type, type@): '@' follows '?', and a
 * range is served by the index where LIKE with a parameter costs five times as much), for
 * PostgreSQL "Type?%" (its text order follows the collation: LIKE there). Both only
 * narrow: fs_match_subscription decides. No OR across the index: one branch each. */
#define OF_TOPIC(keyed) \
    "SELECT " CANDIDATE_COLUMNS " FROM fhirsub_subscription WHERE topic = %s" keyed \
    " AND " LIVE
#define OF_TYPE(keyed, criteria) \
    " UNION ALL SELECT " CANDIDATE_COLUMNS " FROM fhirsub_subscription WHERE topic = ''" \
    keyed " AND " LIVE " AND " criteria
#define CRITERIA_SQLITE "criteria >= %s AND criteria < %s"
#define CRITERIA_PG "(criteria = %s OR criteria LIKE %s)"
/* The keyed ones holding one of the keys (a JSON array of strings, fs_subkey.h). A
 * subscription with two of them comes twice. Both forms keep the planners on the key
 * index: SQLite's CROSS JOIN keeps the keys outside (else it walks every subscription of
 * the topic and probes the keys of each); PostgreSQL's generic plan takes "IN (SELECT
 * set-returning function)" for 100 rows and hashes them against a scan of every key, but
 * "= ANY (ARRAY(...))" for a few, looked up in the index. */
#define KEYED_SQLITE \
    " UNION ALL SELECT " CANDIDATE_COLUMNS_S " FROM json_each(%s) w" \
    " CROSS JOIN fhirsub_sub_key k CROSS JOIN fhirsub_subscription s" \
    " WHERE k.key = w.value AND s.id = k.subscription_id AND s.keyed = 1 AND s." LIVE \
    " AND (s.topic = %s OR (s.topic = '' AND s.criteria >= %s AND s.criteria < %s))"
#define KEYED_PG \
    " UNION ALL SELECT " CANDIDATE_COLUMNS_S " FROM fhirsub_sub_key k" \
    " JOIN fhirsub_subscription s ON s.id = k.subscription_id" \
    " WHERE k.key = ANY (ARRAY(SELECT jsonb_array_elements_text(CAST(%s AS jsonb))))" \
    " AND s.keyed = 1 AND s." LIVE " AND (s.topic = %s OR (s.topic = ''" \
    " AND (s.criteria = %s OR s.criteria LIKE %s)))"

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
    /* Candidates (above): all of them, when the write's keys are unknown, */
    { "fhirsub_sub_candidates",
      OF_TOPIC("") OF_TYPE("", CRITERIA_SQLITE), "sqlite3" },
    { "fhirsub_sub_candidates_pg",
      OF_TOPIC("") OF_TYPE("", CRITERIA_PG), "pgsql" },
    /* else, in one round trip, those without keys and the keyed ones holding one */
    { "fhirsub_sub_candidates_keyed",
      OF_TOPIC(" AND keyed = 0") OF_TYPE(" AND keyed = 0", CRITERIA_SQLITE) KEYED_SQLITE,
      "sqlite3" },
    { "fhirsub_sub_candidates_keyed_pg",
      OF_TOPIC(" AND keyed = 0") OF_TYPE(" AND keyed = 0", CRITERIA_PG) KEYED_PG, "pgsql" },
    /* PostgreSQL: numbering in one statement, one round trip less under the lock */
    { "fhirsub_event_number",
      "WITH bumped AS (UPDATE fhirsub_subscription"
      " SET events_since_start = events_since_start + 1"
      " WHERE id = %s AND status IN ('active', 'error') RETURNING id, events_since_start)"
      " INSERT INTO fhirsub_event (subscription_id, event_number, change_id, created_ms)"
      " SELECT id, events_since_start, %s, %lld FROM bumped", "pgsql" },
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

static fs_sub_t *candidate_from_row(apr_pool_t *p, const char **c)
{
    fs_sub_t *s = apr_pcalloc(p, sizeof(*s));
    s->id = c[0];
    s->status = c[1];
    s->shape = (fs_sub_shape_t)fs_store_to_i64(c[2]);
    s->topic = *c[3] ? c[3] : NULL;
    s->criteria = c[4];
    s->filters_json = c[5];
    s->version_id = fs_store_to_i64(c[6]);
    return s;
}

/* Rows into subs, each subscription once (seen: id -> id). */
static apr_status_t add_candidates(fs_store_t *store, apr_pool_t *p, const char *label,
                                   int nargs, const char **args, apr_hash_t *seen,
                                   apr_array_header_t *subs)
{
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    rv = fs_store_select(store, p, label, nargs, args, CANDIDATE_NCOLUMNS, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        fs_sub_t *s = candidate_from_row(p, APR_ARRAY_IDX(rows, i, const char **));
        if (apr_hash_get(seen, s->id, APR_HASH_KEY_STRING)) continue;
        apr_hash_set(seen, s->id, APR_HASH_KEY_STRING, s->id);
        APR_ARRAY_PUSH(subs, fs_sub_t *) = s;
    }
    return rv;
}

/* URLs of the topics that have a trigger for one of the types (each once). */
static apr_array_header_t *topics_for_types(apr_pool_t *p, const fs_topics_t *topics,
                                            const apr_array_header_t *types)
{
    apr_array_header_t *urls = apr_array_make(p, 4, sizeof(const char *));
    int i, j, n = topics ? fs_topics_count(topics) : 0;

    for (i = 0; i < n; ++i) {
        const fs_topic_t *topic = fs_topics_at(topics, i);
        for (j = 0; j < types->nelts; ++j) {
            if (fs_topic_triggers_on(topic, APR_ARRAY_IDX(types, j, const char *))) {
                APR_ARRAY_PUSH(urls, const char *) = topic->url;
                break;
            }
        }
    }
    return urls;
}

/* Stands for "no topic" or "no type" in fhirsub_sub_candidates: no row holds it (topics
 * are canonical URLs or '', classic criteria start with a resource type). */
#define NO_SUCH_VALUE "#"

/* One topic-and-type pair's candidates: all of them, or the unkeyed and the keyed that
 * hold one of keys_json (statements and parameters above). */
static apr_status_t pair_candidates(fs_store_t *store, apr_pool_t *p, const char *url,
                                    const char *type, const char *keys_json,
                                    apr_hash_t *seen, apr_array_header_t *subs)
{
    int pg = !strcmp(apr_dbd_name(store->driver), "pgsql");
    const char *bound = pg ? apr_pstrcat(p, type, "?%", NULL) : apr_pstrcat(p, type, "@", NULL);
    const char *args[] = { url, type, bound, keys_json, url, type, bound };

    if (!keys_json) {
        return add_candidates(store, p, pg ? "fhirsub_sub_candidates_pg"
                                           : "fhirsub_sub_candidates", 3, args, seen, subs);
    }
    return add_candidates(store, p, pg ? "fhirsub_sub_candidates_keyed_pg"
                                       : "fhirsub_sub_candidates_keyed", 7, args, seen, subs);
}

apr_status_t fs_event_candidate_subs(fs_store_t *store, apr_pool_t *p,
                                     const fs_topics_t *topics,
                                     const apr_array_header_t *types, const char *keys_json,
                                     apr_array_header_t **psubs)
{
    apr_array_header_t *urls = topics_for_types(p, topics, types);
    apr_hash_t *seen = apr_hash_make(p);
    apr_status_t rv = APR_SUCCESS;
    int i;

    /* One query per topic and per type, paired: usually one pair in all. */
    *psubs = apr_array_make(p, 8, sizeof(fs_sub_t *));
    for (i = 0; rv == APR_SUCCESS && (i < urls->nelts || i < types->nelts); ++i) {
        const char *url = i < urls->nelts ? APR_ARRAY_IDX(urls, i, const char *)
                                          : NO_SUCH_VALUE;
        const char *type = i < types->nelts ? APR_ARRAY_IDX(types, i, const char *)
                                            : NO_SUCH_VALUE;
        rv = pair_candidates(store, p, url, type, keys_json, seen, *psubs);
    }
    return rv;
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

/* Number one event of change for sub_id under that subscription's row lock.
 * *pnumbered: 0 when the subscription is gone or off meanwhile (no event). */
static apr_status_t number_event(fs_store_t *store, apr_pool_t *p, const fs_change_t *c,
                                 const char *sub_id, int *pnumbered)
{
    const char *bump[] = { sub_id };
    const char *ins[] = { c->id, fs_store_i64(p, fs_time_to_ms(c->created)), sub_id };
    apr_status_t rv;
    int nrows = 0;

    *pnumbered = 0;
    if (!strcmp(apr_dbd_name(store->driver), "pgsql")) {
        const char *number[] = { sub_id, ins[0], ins[1] };
        rv = fs_store_exec(store, p, "fhirsub_event_number", &nrows, 3, number);
        *pnumbered = rv == APR_SUCCESS && nrows > 0;
        return rv;
    }
    rv = fs_store_exec(store, p, "fhirsub_event_bump", &nrows, 1, bump);
    if (rv != APR_SUCCESS || nrows == 0) return rv;   /* gone or off meanwhile */
    rv = fs_store_exec(store, p, "fhirsub_event_insert", NULL, 3, ins);
    *pnumbered = rv == APR_SUCCESS;
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

/* One event to number: a subscription and the item (index) whose change it gets. */
typedef struct pending_event {
    const char *sub_id;
    int item;
} pending_event;

/* By subscription, then by item: one locking order for every writer (no deadlock
 * between two recordings that match the same subscriptions), and each subscription's
 * events numbered in the order of the items. */
static int cmp_pending(const void *a, const void *b)
{
    const pending_event *x = a, *y = b;
    int c = strcmp(x->sub_id, y->sub_id);
    return c ? c : (x->item > y->item) - (x->item < y->item);
}

static apr_array_header_t *pending_events(apr_pool_t *p, const fs_event_item_t *items, int n)
{
    apr_array_header_t *all = apr_array_make(p, n, sizeof(pending_event));
    int i, j;

    for (i = 0; i < n; ++i) {
        for (j = 0; items[i].sub_ids && j < items[i].sub_ids->nelts; ++j) {
            pending_event *e = apr_array_push(all);
            e->sub_id = APR_ARRAY_IDX(items[i].sub_ids, j, const char *);
            e->item = i;
        }
    }
    qsort(all->elts, (size_t)all->nelts, sizeof(pending_event), cmp_pending);
    return all;
}

static apr_status_t insert_changes(fs_store_t *store, apr_pool_t *p,
                                   const fs_event_item_t *items, int n)
{
    apr_status_t rv = APR_SUCCESS;
    int i;
    for (i = 0; rv == APR_SUCCESS && i < n; ++i) {
        if (items[i].sub_ids && items[i].sub_ids->nelts) {
            rv = insert_change(store, p, items[i].change);
        }
    }
    return rv;
}

apr_status_t fs_event_record_batch(fs_store_t *store, apr_pool_t *p,
                                   const fs_event_item_t *items, int n)
{
    apr_array_header_t *events = pending_events(p, items, n);
    apr_dbd_transaction_t *tx = NULL;
    const pending_event *e = NULL, *prev = NULL;
    apr_array_header_t *notified;
    const char *last_notified = "";
    apr_status_t rv;
    int i, numbered;

    if (events->nelts == 0) return APR_SUCCESS;
    /* joined once at the end: appending to a string per match is quadratic */
    notified = apr_array_make(p, events->nelts, sizeof(const char *));
    if (APR_SUCCESS != (rv = fs_store_tx_start(store, p, &tx))) return rv;
    rv = insert_changes(store, p, items, n);
    for (i = 0; rv == APR_SUCCESS && i < events->nelts; prev = e, ++i) {
        e = &APR_ARRAY_IDX(events, i, pending_event);
        if (prev && prev->item == e->item && !strcmp(prev->sub_id, e->sub_id)) continue;
        rv = number_event(store, p, items[e->item].change, e->sub_id, &numbered);
        if (rv == APR_SUCCESS && numbered && strcmp(last_notified, e->sub_id)) {
            APR_ARRAY_PUSH(notified, const char *) = last_notified = e->sub_id;
        }
    }
    if (rv == APR_SUCCESS) rv = notify(store, p, apr_array_pstrcat(p, notified, ' '));
    return fs_store_tx_end(store, p, tx, rv);
}

apr_status_t fs_event_record_items(fs_store_t *store, apr_pool_t *p, void *const *items, int n)
{
    fs_event_item_t *all = apr_palloc(p, sizeof(*all) * (apr_size_t)(n > 0 ? n : 1));
    int i;
    for (i = 0; i < n; ++i) all[i] = *(const fs_event_item_t *)items[i];
    return fs_event_record_batch(store, p, all, n);
}

apr_status_t fs_event_record(fs_store_t *store, apr_pool_t *p, const fs_change_t *change,
                             const apr_array_header_t *sub_ids)
{
    fs_event_item_t item;
    item.change = change;
    item.sub_ids = sub_ids;
    return fs_event_record_batch(store, p, &item, 1);
}
