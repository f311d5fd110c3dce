#include <stdlib.h>
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "fs_json.h"
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
/* The live subscriptions among a JSON array of ids, each looked up in the primary key. */
#define LIVE_OF_SQLITE \
    "SELECT id FROM fhirsub_subscription WHERE id IN (SELECT value FROM json_each(%s))" \
    " AND " LIVE
#define LIVE_OF_PG \
    "SELECT id FROM fhirsub_subscription" \
    " WHERE id = ANY (ARRAY(SELECT json_array_elements_text(CAST(%s AS json)))) AND " LIVE

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
    /* Numbering, set-based: one statement numbers every live subscription of a write (a
     * JSON array of ids) in its narrow counter row (fhirsub_sub_counter). SQLite: the
     * first write of the transaction takes the database's write lock, so the insert
     * reads exactly the counters the update moved. */
    { "fhirsub_event_bump_set",
      "UPDATE fhirsub_sub_counter SET events_since_start = events_since_start + 1"
      " WHERE subscription_id IN (" LIVE_OF_SQLITE ")", "sqlite3" },
    { "fhirsub_event_insert_set",
      "INSERT INTO fhirsub_event (subscription_id, event_number, change_id, created_ms)"
      " SELECT subscription_id, events_since_start, %s, %lld FROM fhirsub_sub_counter"
      " WHERE subscription_id IN (" LIVE_OF_SQLITE ")", "sqlite3" },
    { "fhirsub_sub_list_live",
      "SELECT " SUB_COLUMNS SUB_FROM " WHERE s.status IN ('active', 'error') ORDER BY s.id",
      NULL },
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
    /* PostgreSQL: the locks of the counter rows of every subscription of a batch, taken
     * at once in one order for all writers (byte order of the id: the notifier's marks
     * go in strcmp order too), so that two recordings never wait for each other in a
     * cycle; a deletion takes the counter row first (fs_store_sub_delete). For a few ids
     * "= ANY (ARRAY(...))": the generic plan looks them up in the primary key. For many
     * a join: a row updated by the transaction it waited for is checked again, and
     * against "= ANY" that walks the whole array (seconds at 10,000). */
    { "fhirsub_event_lock_set",
      "SELECT subscription_id FROM fhirsub_sub_counter"
      " WHERE subscription_id = ANY (ARRAY(SELECT json_array_elements_text(CAST(%s AS json))))"
      " ORDER BY subscription_id COLLATE \"C\" FOR UPDATE", "pgsql" },
    { "fhirsub_event_lock_many",
      "SELECT c.subscription_id FROM json_array_elements_text(CAST(%s AS json)) AS u(id)"
      " JOIN fhirsub_sub_counter c ON c.subscription_id = u.id"
      " ORDER BY c.subscription_id COLLATE \"C\" FOR UPDATE OF c", "pgsql" },
    /* PostgreSQL: then one statement per write numbers its live subscriptions (locked):
     * both arrays are InitPlans, each table looked up in its primary key. */
    { "fhirsub_event_number_set",
      "WITH bumped AS (UPDATE fhirsub_sub_counter"
      " SET events_since_start = events_since_start + 1"
      " WHERE subscription_id = ANY (ARRAY(" LIVE_OF_PG "))"
      " RETURNING subscription_id, events_since_start)"
      " INSERT INTO fhirsub_event (subscription_id, event_number, change_id, created_ms)"
      " SELECT subscription_id, events_since_start, %s, %lld FROM bumped"
      " RETURNING subscription_id", "pgsql" },
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

static int is_pgsql(const fs_store_t *store)
{
    return !strcmp(apr_dbd_name(store->driver), "pgsql");
}

/* One topic-and-type pair's candidates: all of them, or the unkeyed and the keyed that
 * hold one of keys_json (statements and parameters above). */
static apr_status_t pair_candidates(fs_store_t *store, apr_pool_t *p, const char *url,
                                    const char *type, const char *keys_json,
                                    apr_hash_t *seen, apr_array_header_t *subs)
{
    int pg = is_pgsql(store);
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

static int has_subs(const fs_event_item_t *item)
{
    return item->sub_ids && item->sub_ids->nelts > 0;
}

/* Each item's subscription ids as a JSON array, the parameter of the set-based
 * statements (an id named twice counts once there), NULL when it has none; *pall:
 * those of every item, for the locks, NULL when no item has any (*pnall of them). */
static const char **items_ids(apr_pool_t *p, const fs_event_item_t *items, int n,
                              const char **pall, int *pnall)
{
    const char **ids = apr_pcalloc(p, sizeof(*ids) * (apr_size_t)(n > 0 ? n : 1));
    apr_array_header_t *all = apr_array_make(p, 16, sizeof(const char *));
    int i, with = 0;

    *pall = NULL;
    for (i = 0; i < n; ++i) {
        if (!has_subs(&items[i])) continue;
        ids[i] = *pall = fs_json_str_array(p, items[i].sub_ids);
        apr_array_cat(all, items[i].sub_ids);
        ++with;
    }
    if (with > 1) *pall = fs_json_str_array(p, all);
    *pnall = all->nelts;
    return ids;
}

apr_status_t fs_event_lock_subs(fs_store_t *store, apr_pool_t *p, const char *ids, int n)
{
    const char *args[] = { ids };
    apr_array_header_t *rows;
    return fs_store_select(store, p, n > FS_EVENT_LOCK_FEW ? "fhirsub_event_lock_many"
                                                           : "fhirsub_event_lock_set",
                           1, args, 1, &rows);
}

/* Number one event of change for each subscription of ids (JSON) still live (those
 * deleted or switched off meanwhile get none); the ids numbered go to notified. */
static apr_status_t number_pgsql(fs_store_t *store, apr_pool_t *p, const fs_change_t *c,
                                 const char *ids, apr_array_header_t *notified)
{
    const char *args[] = { ids, c->id, fs_store_i64(p, fs_time_to_ms(c->created)) };
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    rv = fs_store_select(store, p, "fhirsub_event_number_set", 3, args, 1, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        APR_ARRAY_PUSH(notified, const char *) = APR_ARRAY_IDX(rows, i, const char **)[0];
    }
    return rv;
}

/* The same on SQLite, whose UPDATE cannot feed an INSERT: two statements. */
static apr_status_t number_sqlite(fs_store_t *store, apr_pool_t *p, const fs_change_t *c,
                                  const char *ids)
{
    const char *bump[] = { ids };
    const char *ins[] = { c->id, fs_store_i64(p, fs_time_to_ms(c->created)), ids };
    apr_status_t rv = fs_store_exec(store, p, "fhirsub_event_bump_set", NULL, 1, bump);
    if (rv != APR_SUCCESS) return rv;
    return fs_store_exec(store, p, "fhirsub_event_insert_set", NULL, 3, ins);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The distinct ids, sorted and joined by spaces (the NOTIFY payload). */
static const char *distinct_joined(apr_pool_t *p, apr_array_header_t *ids)
{
    apr_array_header_t *distinct = apr_array_make(p, ids->nelts, sizeof(const char *));
    const char *last = NULL;
    int i;

    qsort(ids->elts, (size_t)ids->nelts, sizeof(const char *), cmp_str);
    for (i = 0; i < ids->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        if (last && !strcmp(last, id)) continue;
        APR_ARRAY_PUSH(distinct, const char *) = last = id;
    }
    return apr_array_pstrcat(p, distinct, ' ');
}

static apr_status_t notify(fs_store_t *store, apr_pool_t *p, const char *payload)
{
    const char *args[] = { FS_NOTIFY_CHANNEL, payload };
    if (!*payload) return APR_SUCCESS;
    /* Too long for NOTIFY: an empty payload means "any subscription". */
    if (strlen(payload) > FS_NOTIFY_PAYLOAD_MAX) args[1] = "";
    return fs_store_exec(store, p, "fhirsub_event_notify", NULL, 2, args);
}

static apr_status_t insert_changes(fs_store_t *store, apr_pool_t *p,
                                   const fs_event_item_t *items, int n)
{
    apr_status_t rv = APR_SUCCESS;
    int i;
    for (i = 0; rv == APR_SUCCESS && i < n; ++i) {
        if (has_subs(&items[i])) rv = insert_change(store, p, items[i].change);
    }
    return rv;
}

/* Set-based: a statement or two per item, not per subscription (a write matching
 * 10,000 took 20,000 statements). Items in order, so each subscription's events are
 * numbered in the order of the items. */
apr_status_t fs_event_record_batch(fs_store_t *store, apr_pool_t *p,
                                   const fs_event_item_t *items, int n)
{
    apr_dbd_transaction_t *tx = NULL;
    apr_array_header_t *notified;
    const char **ids, *all;
    apr_status_t rv;
    int i, nall = 0, pg = is_pgsql(store);

    ids = items_ids(p, items, n, &all, &nall);
    if (!all) return APR_SUCCESS;
    notified = apr_array_make(p, 16, sizeof(const char *));
    if (APR_SUCCESS != (rv = fs_store_tx_start(store, p, &tx))) return rv;
    rv = insert_changes(store, p, items, n);
    if (rv == APR_SUCCESS && pg) rv = fs_event_lock_subs(store, p, all, nall);
    for (i = 0; rv == APR_SUCCESS && i < n; ++i) {
        if (!ids[i]) continue;
        rv = pg ? number_pgsql(store, p, items[i].change, ids[i], notified)
                : number_sqlite(store, p, items[i].change, ids[i]);
    }
    if (rv == APR_SUCCESS && pg) rv = notify(store, p, distinct_joined(p, notified));
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
