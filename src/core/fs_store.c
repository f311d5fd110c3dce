#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "fs_log.h"
#include "fs_time.h"
#include "fs_store.h"
#include "fs_store_int.h"
#include "fs_event.h"
#include "fs_scan.h"

/* ---- schema -------------------------------------------------------------
 * Types and syntax common to SQLite 3 and PostgreSQL. Times are epoch
 * milliseconds in BIGINT columns; 0 stands for "none" so no column is NULL
 * (the two drivers report NULL differently). */

static const char *const schema_bootstrap =
    "CREATE TABLE IF NOT EXISTS fhirsub_schema ("
    " id INTEGER PRIMARY KEY, version INTEGER NOT NULL, updated_ms BIGINT NOT NULL)";

static const char *const schema_v1[] = {
    "CREATE TABLE IF NOT EXISTS fhirsub_subscription ("
    " id VARCHAR(64) PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " status VARCHAR(20) NOT NULL,"
    " channel_type VARCHAR(40) NOT NULL,"
    " shape INTEGER NOT NULL,"
    " topic TEXT NOT NULL,"
    " criteria TEXT NOT NULL,"
    " filters TEXT NOT NULL,"
    " content VARCHAR(20) NOT NULL,"
    " content_type TEXT NOT NULL,"
    " heartbeat_period BIGINT NOT NULL,"
    " timeout BIGINT NOT NULL,"
    " max_count BIGINT NOT NULL,"
    " end_ms BIGINT NOT NULL,"
    " base_url TEXT NOT NULL,"
    " events_since_start BIGINT NOT NULL,"
    " last_delivery_ms BIGINT NOT NULL,"
    " error TEXT NOT NULL,"
    " version_id BIGINT NOT NULL,"
    " created_ms BIGINT NOT NULL,"
    " updated_ms BIGINT NOT NULL,"
    " last_bound_ms BIGINT NOT NULL,"
    " resource TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS fhirsub_subscription_owner"
    " ON fhirsub_subscription (owner)",
    "CREATE INDEX IF NOT EXISTS fhirsub_subscription_topic"
    " ON fhirsub_subscription (topic, status)",
    "CREATE TABLE IF NOT EXISTS fhirsub_grant ("
    " id VARCHAR(64) PRIMARY KEY,"
    " owner TEXT NOT NULL,"
    " issued_ms BIGINT NOT NULL,"
    " expires_ms BIGINT NOT NULL,"
    " revoked_ms BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS fhirsub_grant_owner ON fhirsub_grant (owner)",
    "CREATE INDEX IF NOT EXISTS fhirsub_grant_expires ON fhirsub_grant (expires_ms)",
    "CREATE TABLE IF NOT EXISTS fhirsub_grant_subscription ("
    " grant_id VARCHAR(64) NOT NULL,"
    " subscription_id VARCHAR(64) NOT NULL,"
    " PRIMARY KEY (grant_id, subscription_id))",
    "CREATE INDEX IF NOT EXISTS fhirsub_grant_subscription_sub"
    " ON fhirsub_grant_subscription (subscription_id)",
    /* One row per captured write; events of several subscriptions share it. */
    "CREATE TABLE IF NOT EXISTS fhirsub_change ("
    " id VARCHAR(64) PRIMARY KEY,"
    " created_ms BIGINT NOT NULL,"
    " resource_type VARCHAR(64) NOT NULL,"
    " resource_id VARCHAR(64) NOT NULL,"
    " version_id VARCHAR(64) NOT NULL,"
    " interaction VARCHAR(16) NOT NULL,"
    " request_method VARCHAR(10) NOT NULL,"
    " request_url TEXT NOT NULL,"
    " response_status VARCHAR(8) NOT NULL,"
    " body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS fhirsub_change_created ON fhirsub_change (created_ms)",
    /* Gapless per-subscription numbering: (subscription_id, event_number) is the key
     * and numbers come from the subscription's events_since_start under its row lock
     * (fhirsub_sub_counter since v3). */
    "CREATE TABLE IF NOT EXISTS fhirsub_event ("
    " subscription_id VARCHAR(64) NOT NULL,"
    " event_number BIGINT NOT NULL,"
    " change_id VARCHAR(64) NOT NULL,"
    " created_ms BIGINT NOT NULL,"
    " PRIMARY KEY (subscription_id, event_number))",
    "CREATE INDEX IF NOT EXISTS fhirsub_event_created ON fhirsub_event (created_ms)",
    "CREATE INDEX IF NOT EXISTS fhirsub_event_change ON fhirsub_event (change_id)",
    NULL
};

/* v2: the index of subscription filter values (fs_subkey.h); apply_step then gives the
 * rows already there their keys (fs_subkey_backfill). The (topic, status) index gives
 * way to one that skips keyed rows. */
static const char *const schema_v2[] = {
    "ALTER TABLE fhirsub_subscription ADD COLUMN keyed INTEGER NOT NULL DEFAULT 0",
    "CREATE TABLE IF NOT EXISTS fhirsub_sub_key ("
    " key VARCHAR(300) NOT NULL,"
    " subscription_id VARCHAR(64) NOT NULL,"
    " PRIMARY KEY (key, subscription_id))",
    "CREATE INDEX IF NOT EXISTS fhirsub_sub_key_sub ON fhirsub_sub_key (subscription_id)",
    "DROP INDEX IF EXISTS fhirsub_subscription_topic",
    "CREATE INDEX IF NOT EXISTS fhirsub_subscription_candidate"
    " ON fhirsub_subscription (topic, keyed, status)",
    NULL
};

/* v3: the counters that change per event (events_since_start) and per notifier mark
 * (last_delivery_ms, last_bound_ms) move to a narrow row of their own: bumping them
 * rewrote the wide subscription row, its resource JSON included (21 MB of PostgreSQL WAL
 * per write matching 10,000 subscriptions). The values are copied, then the old columns
 * dropped, so that nothing can read or bump a stale copy (a process of the previous
 * version fails instead of numbering beside this one). apply_step locks the table on
 * PostgreSQL first (lock_for_copy): no bump commits between the copy and the drop. */
static const char *const schema_v3[] = {
    "CREATE TABLE IF NOT EXISTS fhirsub_sub_counter ("
    " subscription_id VARCHAR(64) PRIMARY KEY,"
    " events_since_start BIGINT NOT NULL,"
    " last_delivery_ms BIGINT NOT NULL,"
    " last_bound_ms BIGINT NOT NULL)",
    "INSERT INTO fhirsub_sub_counter (subscription_id, events_since_start,"
    " last_delivery_ms, last_bound_ms)"
    " SELECT id, events_since_start, last_delivery_ms, last_bound_ms"
    " FROM fhirsub_subscription",
    "ALTER TABLE fhirsub_subscription DROP COLUMN events_since_start",
    "ALTER TABLE fhirsub_subscription DROP COLUMN last_delivery_ms",
    "ALTER TABLE fhirsub_subscription DROP COLUMN last_bound_ms",
    NULL
};

static const char *const *const schema_steps[] = { schema_v1, schema_v2, schema_v3 };

#define FS_MIGRATE_ATTEMPTS 8

/* ---- statements ---------------------------------------------------------
 * Markers name the column type (%lld, %d) because apr_dbd's pgsql driver declares
 * each %s parameter as varchar, which PostgreSQL will not put into a BIGINT column.
 * Every value is still passed as text (p*query), which both drivers convert. */

/* SUB_COLUMNS and SUB_NCOLUMNS: fs_store_int.h */

const fs_stmt_def_t fs_store_statements[] = {
    { "fhirsub_schema_get", "SELECT version FROM fhirsub_schema WHERE id = 1", NULL },
    { "fhirsub_sub_insert",
      "INSERT INTO fhirsub_subscription (id, owner, status, channel_type, shape, topic,"
      " criteria, filters, content, content_type, heartbeat_period, timeout, max_count,"
      " end_ms, base_url, error, version_id, created_ms, updated_ms, resource)"
      " VALUES (%s, %s, %s, %s, %d, %s, %s, %s, %s, %s, %lld, %lld, %lld, %lld, %s, %s,"
      " %lld, %lld, %lld, %s)", NULL },
    /* in the transaction of the subscription's insert: every subscription has one */
    { "fhirsub_sub_counter_insert",
      "INSERT INTO fhirsub_sub_counter (subscription_id, events_since_start,"
      " last_delivery_ms, last_bound_ms) VALUES (%s, %lld, %lld, 0)", NULL },
    { "fhirsub_sub_get",
      "SELECT " SUB_COLUMNS SUB_FROM " WHERE s.id = %s", NULL },
    { "fhirsub_sub_list_owner",
      "SELECT " SUB_COLUMNS SUB_FROM " WHERE s.owner = %s ORDER BY s.created_ms, s.id", NULL },
    { "fhirsub_sub_update",
      "UPDATE fhirsub_subscription SET status = %s, channel_type = %s, shape = %d,"
      " topic = %s, criteria = %s, filters = %s, content = %s, content_type = %s,"
      " heartbeat_period = %lld, timeout = %lld, max_count = %lld, end_ms = %lld,"
      " version_id = %lld, updated_ms = %lld, resource = %s"
      " WHERE id = %s AND version_id = %lld", NULL },
    { "fhirsub_sub_set_status",
      "UPDATE fhirsub_subscription SET status = %s WHERE id = %s AND status = %s", NULL },
    /* A deletion takes the counter row first (fs_store_sub_delete says why). */
    { "fhirsub_sub_counter_delete",
      "DELETE FROM fhirsub_sub_counter WHERE subscription_id = %s", NULL },
    { "fhirsub_sub_delete",
      "DELETE FROM fhirsub_subscription WHERE id = %s AND owner = %s", NULL },
    { "fhirsub_event_delete_sub", "DELETE FROM fhirsub_event WHERE subscription_id = %s", NULL },
    { "fhirsub_sub_key_insert",
      "INSERT INTO fhirsub_sub_key (key, subscription_id) VALUES (%s, %s)", NULL },
    { "fhirsub_sub_key_delete", "DELETE FROM fhirsub_sub_key WHERE subscription_id = %s", NULL },
    { "fhirsub_sub_set_keyed", "UPDATE fhirsub_subscription SET keyed = %d WHERE id = %s", NULL },
    { "fhirsub_grant_unlink_sub",
      "DELETE FROM fhirsub_grant_subscription WHERE subscription_id = %s", NULL },
    { "fhirsub_grant_insert",
      "INSERT INTO fhirsub_grant (id, owner, issued_ms, expires_ms, revoked_ms)"
      " VALUES (%s, %s, %lld, %lld, 0)", NULL },
    /* Every session: no JIT compilation. Our statements are short index lookups, but
     * the planner's cost estimates grow with the tables: with 10^6 events on one
     * subscription the notifier's scan passed jit_above_cost and spent 10-15 ms in LLVM
     * on every run for 0.1 ms of work. */
    { "fhirsub_session_pgsql", "SELECT set_config('jit', 'off', false)", "pgsql" },
    /* A grant's commit need not wait for the disk (fs_store_grant_insert); for this
     * transaction only. SQLite's counterpart is in the module (a connection setting). */
    { "fhirsub_grant_async",
      "SELECT set_config('synchronous_commit', 'off', true)", "pgsql" },
    /* PostgreSQL: one grant and its links (ids joined by spaces: ids_joined) in
     * one statement, so one round trip and one implicit transaction, its commit not
     * waiting for the WAL flush either (the set_config in `c` is for this transaction) */
    { "fhirsub_grant_insert_linked",
      "WITH c AS (SELECT set_config('synchronous_commit', 'off', true)),"
      " g AS (INSERT INTO fhirsub_grant (id, owner, issued_ms, expires_ms, revoked_ms)"
      " SELECT %s, %s, %lld, %lld, 0 FROM c RETURNING id)"
      " INSERT INTO fhirsub_grant_subscription (grant_id, subscription_id)"
      " SELECT g.id, s.id FROM g, unnest(string_to_array(%s, ' ')) AS s(id)", "pgsql" },
    /* PostgreSQL: the same, and in the same round trip the subscriptions it names
     * (their ids joined by spaces three times: each table looked up by key), so that
     * issuing a token costs one round trip */
    { "fhirsub_grant_insert_read_subs",
      "WITH c AS (SELECT set_config('synchronous_commit', 'off', true)),"
      " g AS (INSERT INTO fhirsub_grant (id, owner, issued_ms, expires_ms, revoked_ms)"
      " SELECT %s, %s, %lld, %lld, 0 FROM c RETURNING id),"
      " l AS (INSERT INTO fhirsub_grant_subscription (grant_id, subscription_id)"
      " SELECT g.id, s.id FROM g, unnest(string_to_array(%s, ' ')) AS s(id))"
      " SELECT " SUB_COLUMNS SUB_FROM " WHERE s.id = ANY (string_to_array(%s, ' '))"
      " AND c.subscription_id = ANY (string_to_array(%s, ' '))", "pgsql" },
    { "fhirsub_grant_link",
      "INSERT INTO fhirsub_grant_subscription (grant_id, subscription_id)"
      " VALUES (%s, %s)", NULL },
    { "fhirsub_grant_delete_links",
      "DELETE FROM fhirsub_grant_subscription WHERE grant_id = %s", NULL },
    { "fhirsub_grant_delete", "DELETE FROM fhirsub_grant WHERE id = %s", NULL },
    { "fhirsub_grant_get",
      "SELECT id, owner, issued_ms, expires_ms, revoked_ms FROM fhirsub_grant"
      " WHERE id = %s", NULL },
    { "fhirsub_grant_subs",
      "SELECT subscription_id FROM fhirsub_grant_subscription WHERE grant_id = %s"
      " ORDER BY subscription_id", NULL },
    { "fhirsub_grant_revoke",
      "UPDATE fhirsub_grant SET revoked_ms = %lld WHERE id = %s AND revoked_ms = 0", NULL },
    { "fhirsub_grant_revoke_owner",
      "UPDATE fhirsub_grant SET revoked_ms = %lld WHERE owner = %s AND revoked_ms = 0", NULL },
    { "fhirsub_grant_prune_links",
      "DELETE FROM fhirsub_grant_subscription WHERE grant_id IN"
      " (SELECT id FROM fhirsub_grant WHERE expires_ms < %lld)", NULL },
    { "fhirsub_grant_prune", "DELETE FROM fhirsub_grant WHERE expires_ms < %lld", NULL },
    /* ---- fhirsub-notifier ---- */
    { "fhirsub_event_after",
      "SELECT e.event_number, e.created_ms, c.resource_type, c.resource_id, c.version_id,"
      " c.interaction, c.request_method, c.request_url, c.response_status, c.body"
      " FROM fhirsub_event e JOIN fhirsub_change c ON c.id = e.change_id"
      " WHERE e.subscription_id = %s AND e.event_number > CAST(%s AS BIGINT)"
      " ORDER BY e.event_number LIMIT CAST(%s AS BIGINT)", NULL },
    { "fhirsub_sub_mark_bound",
      "UPDATE fhirsub_sub_counter SET last_bound_ms = CAST(%s AS BIGINT)"
      " WHERE subscription_id = %s", NULL },
    /* Deliveries, set-based: a JSON array of [id, ms] (fs_store_sub_mark_delivered).
     * First a subscription in error whose delivery moves on returns to active (the wide
     * row is written only then), then the counters move; never back. PostgreSQL: the
     * array once more, so that the rows are looked up by key. */
    { "fhirsub_sub_mark_recovered_sqlite",
      "UPDATE fhirsub_subscription SET status = 'active', error = ''"
      " FROM (SELECT value ->> 0 AS id, value ->> 1 AS ms FROM json_each(%s)) AS d"
      " WHERE fhirsub_subscription.id = d.id AND fhirsub_subscription.status = 'error'"
      " AND EXISTS (SELECT 1 FROM fhirsub_sub_counter c"
      " WHERE c.subscription_id = d.id AND c.last_delivery_ms < d.ms)", "sqlite3" },
    { "fhirsub_sub_mark_delivered_sqlite",
      "UPDATE fhirsub_sub_counter SET last_delivery_ms = d.ms"
      " FROM (SELECT value ->> 0 AS id, value ->> 1 AS ms FROM json_each(%s)) AS d"
      " WHERE fhirsub_sub_counter.subscription_id = d.id"
      " AND fhirsub_sub_counter.last_delivery_ms < d.ms", "sqlite3" },
    { "fhirsub_sub_mark_recovered_pgsql",
      "UPDATE fhirsub_subscription s SET status = 'active', error = ''"
      " FROM (SELECT v ->> 0 AS id, CAST(v ->> 1 AS BIGINT) AS ms"
      " FROM json_array_elements(CAST(%s AS json)) AS v) AS d, fhirsub_sub_counter c"
      " WHERE s.id = d.id AND c.subscription_id = d.id AND s.status = 'error'"
      " AND c.last_delivery_ms < d.ms"
      " AND s.id = ANY (ARRAY(SELECT v ->> 0"
      " FROM json_array_elements(CAST(%s AS json)) AS v))", "pgsql" },
    { "fhirsub_sub_mark_delivered_pgsql",
      "UPDATE fhirsub_sub_counter c SET last_delivery_ms = d.ms"
      " FROM (SELECT v ->> 0 AS id, CAST(v ->> 1 AS BIGINT) AS ms"
      " FROM json_array_elements(CAST(%s AS json)) AS v) AS d"
      " WHERE c.subscription_id = d.id AND c.last_delivery_ms < d.ms"
      " AND c.subscription_id = ANY (ARRAY(SELECT v ->> 0"
      " FROM json_array_elements(CAST(%s AS json)) AS v))", "pgsql" },
    { "fhirsub_sub_mark_error",
      "UPDATE fhirsub_subscription SET status = 'error', error = %s"
      " WHERE id = %s AND status = 'active'", NULL },
    { "fhirsub_sub_clear_error",
      "UPDATE fhirsub_subscription SET status = 'active', error = ''"
      " WHERE id = %s AND status = 'error'", NULL },
    { "fhirsub_sub_list_unbound",
      "SELECT s.id, s.owner" SUB_FROM " WHERE s.channel_type = 'websocket'"
      " AND c.last_bound_ms < CAST(%s AS BIGINT) AND s.created_ms < CAST(%s AS BIGINT)"
      " AND (s.shape = CAST(%s AS INTEGER) OR CAST(%s AS INTEGER) = 0)"
      " ORDER BY s.created_ms LIMIT CAST(%s AS BIGINT)", NULL },
    /* the counter row first, under the condition again: a bind since the listing moved
     * last_bound_ms (PostgreSQL checks the row it waited for once more) */
    { "fhirsub_sub_counter_delete_unbound",
      "DELETE FROM fhirsub_sub_counter WHERE subscription_id = %s"
      " AND last_bound_ms < CAST(%s AS BIGINT) AND subscription_id IN (SELECT id"
      " FROM fhirsub_subscription WHERE id = %s AND channel_type = 'websocket'"
      " AND created_ms < CAST(%s AS BIGINT))", NULL },
    { "fhirsub_sub_delete_id", "DELETE FROM fhirsub_subscription WHERE id = %s", NULL },
    /* ---- retention (fhirsub-notifier): reads find, short writes delete ---- */
    { "fhirsub_prune_subs",
      "SELECT c.subscription_id, c.events_since_start, c.last_bound_ms, c.last_delivery_ms"
      " FROM fhirsub_sub_counter c WHERE c.subscription_id > %s AND EXISTS"
      " (SELECT 1 FROM fhirsub_event e WHERE e.subscription_id = c.subscription_id)"
      " ORDER BY c.subscription_id LIMIT CAST(%s AS BIGINT)", NULL },
    /* candidates: older than the age limit or beyond the count limit; never above
     * max_number, never created after keep_after (fs_prune_rule_t) */
    { "fhirsub_event_prune_find",
      "SELECT event_number FROM fhirsub_event WHERE subscription_id = %s"
      " AND event_number <= %lld AND (created_ms < %lld OR event_number <= %lld)"
      " AND created_ms <= %lld ORDER BY event_number LIMIT CAST(%s AS BIGINT)", NULL },
    { "fhirsub_event_prune_range",
      "DELETE FROM fhirsub_event WHERE subscription_id = %s"
      " AND event_number >= %lld AND event_number <= %lld"
      " AND (created_ms < %lld OR event_number <= %lld) AND created_ms <= %lld", NULL },
    /* a change row commits with its events, so an uncommitted one is never seen here */
    { "fhirsub_change_orphans",
      "SELECT c.id, c.created_ms FROM fhirsub_change c"
      " WHERE (c.created_ms > %lld OR (c.created_ms = %lld AND c.id > %s))"
      " AND NOT EXISTS (SELECT 1 FROM fhirsub_event e WHERE e.change_id = c.id)"
      " ORDER BY c.created_ms, c.id LIMIT CAST(%s AS BIGINT)", NULL },
    { "fhirsub_change_delete_orphan",
      "DELETE FROM fhirsub_change WHERE id = %s"
      " AND NOT EXISTS (SELECT 1 FROM fhirsub_event e WHERE e.change_id = %s)", NULL },
    { NULL, NULL, NULL }
};

/* ---- plumbing ----------------------------------------------------------- */

static fs_sub_t *sub_from_row(apr_pool_t *p, const char **c);

const char *fs_store_error(fs_store_t *store, int rv)
{
    const char *e = apr_dbd_error(store->driver, store->handle, rv);
    return e ? e : "unknown database error";
}

static apr_status_t stmt_get(fs_store_t *store, const char *label,
                             apr_dbd_prepared_t **pstmt)
{
    *pstmt = store->prepared ? apr_hash_get(store->prepared, label, APR_HASH_KEY_STRING)
                             : NULL;
    if (!*pstmt) {
        fs_log_perror(FS_LOG_MARK, FS_LOG_ERR, APR_ENOTIMPL, NULL,
                      "FS00101: statement %s is not prepared on this connection", label);
        return APR_ENOTIMPL;
    }
    return APR_SUCCESS;
}

static apr_status_t exec(fs_store_t *store, apr_pool_t *p, const char *label,
                         int *pnrows, int nargs, const char **args)
{
    apr_dbd_prepared_t *stmt;
    apr_status_t rv;
    int nrows = 0, err;

    if (APR_SUCCESS != (rv = stmt_get(store, label, &stmt))) return rv;
    err = apr_dbd_pquery(store->driver, p, store->handle, &nrows, stmt, nargs, args);
    if (err) {
        fs_log_perror(FS_LOG_MARK, FS_LOG_ERR, APR_EGENERAL, p,
                      "FS00102: %s failed: %s", label, fs_store_error(store, err));
        return APR_EGENERAL;
    }
    if (pnrows) *pnrows = nrows;
    return APR_SUCCESS;
}

/* Run a select and copy every row (const char** of ncols) into *prows. Reading to
 * the end matters: an unfinished pgsql result poisons the connection. */
static apr_status_t select_rows(fs_store_t *store, apr_pool_t *p, const char *label,
                                int nargs, const char **args, int ncols,
                                apr_array_header_t **prows)
{
    apr_dbd_prepared_t *stmt;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    apr_status_t rv;
    int err, i;

    *prows = apr_array_make(p, 4, sizeof(const char **));
    if (APR_SUCCESS != (rv = stmt_get(store, label, &stmt))) return rv;
    /* Random access (seek=1): pgsql reports a failing sequential select only while
     * rows are read, which would turn errors into empty results. */
    err = apr_dbd_pselect(store->driver, p, store->handle, &res, stmt, 1, nargs, args);
    if (err) {
        fs_log_perror(FS_LOG_MARK, FS_LOG_ERR, APR_EGENERAL, p,
                      "FS00103: %s failed: %s", label, fs_store_error(store, err));
        return APR_EGENERAL;
    }
    while (0 == apr_dbd_get_row(store->driver, p, res, &row, -1)) {
        const char **cols = apr_pcalloc(p, sizeof(const char *) * (apr_size_t)ncols);
        for (i = 0; i < ncols; ++i) {
            const char *v = apr_dbd_get_entry(store->driver, row, i);
            cols[i] = apr_pstrdup(p, v ? v : "");
        }
        APR_ARRAY_PUSH(*prows, const char **) = cols;
    }
    return APR_SUCCESS;
}

static const char *i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

static apr_int64_t to_i64(const char *s)
{
    return (s && *s) ? apr_atoi64(s) : 0;
}

static apr_status_t tx_start(fs_store_t *store, apr_pool_t *p, apr_dbd_transaction_t **ptx)
{
    int err = apr_dbd_transaction_start(store->driver, p, store->handle, ptx);
    if (err) {
        fs_log_perror(FS_LOG_MARK, FS_LOG_ERR, APR_EGENERAL, p,
                      "FS00104: cannot start a transaction: %s", fs_store_error(store, err));
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

/* Commit unless rv says otherwise; a failed statement inside already latched a
 * rollback in the driver. A failed commit answers APR_EINCOMPLETE: the connection
 * may have died after the server committed, so the work must not simply be redone. */
static apr_status_t tx_end(fs_store_t *store, apr_pool_t *p, apr_dbd_transaction_t *tx,
                           apr_status_t rv)
{
    int err;
    if (rv != APR_SUCCESS) {
        apr_dbd_transaction_mode_set(store->driver, tx, APR_DBD_TRANSACTION_ROLLBACK);
    }
    err = apr_dbd_transaction_end(store->driver, p, tx);
    if (err && rv == APR_SUCCESS) {
        fs_log_perror(FS_LOG_MARK, FS_LOG_ERR, APR_EGENERAL, p,
                      "FS00105: commit failed: %s", fs_store_error(store, err));
        rv = APR_EINCOMPLETE;
    }
    return rv;
}

static int stmt_for_driver(const fs_stmt_def_t *def, const apr_dbd_driver_t *driver)
{
    return !def->driver || !strcmp(def->driver, apr_dbd_name(driver));
}

/* Every statement table of the product: the store's own, the event recorder's and
 * the notifier's scans. */
static const fs_stmt_def_t *const statement_tables[] = {
    fs_store_statements, fs_event_statements, fs_scan_statements, NULL
};

/* What every connection of ours sets once it is prepared (fhirsub_session_pgsql). */
static apr_status_t session_settings(fs_store_t *store, apr_pool_t *p, const char **perr)
{
    apr_array_header_t *rows;

    if (strcmp(apr_dbd_name(store->driver), "pgsql")) return APR_SUCCESS;
    if (APR_SUCCESS != select_rows(store, p, "fhirsub_session_pgsql", 0, NULL, 1, &rows)) {
        *perr = apr_psprintf(p, "setting up the session: %s", fs_store_error(store, 0));
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

apr_status_t fs_store_prepare_all(fs_store_t *store, apr_pool_t *p, const char **perr)
{
    const fs_stmt_def_t *const *table;
    const fs_stmt_def_t *def;

    if (!store->prepared) store->prepared = apr_hash_make(p);
    for (table = statement_tables; *table; ++table) {
        for (def = *table; def->label; ++def) {
            apr_dbd_prepared_t *stmt = NULL;
            int err;
            if (!stmt_for_driver(def, store->driver)) continue;
            /* A retry after a partial failure must not prepare a label twice. */
            if (apr_hash_get(store->prepared, def->label, APR_HASH_KEY_STRING)) continue;
            err = apr_dbd_prepare(store->driver, p, store->handle, def->sql, def->label,
                                  &stmt);
            if (err) {
                *perr = apr_psprintf(p, "preparing %s: %s", def->label,
                                     fs_store_error(store, err));
                return APR_EGENERAL;
            }
            apr_hash_set(store->prepared, def->label, APR_HASH_KEY_STRING, stmt);
        }
    }
    return session_settings(store, p, perr);
}

void fs_store_forget_prepared(apr_hash_t *prepared)
{
    const fs_stmt_def_t *const *table;
    const fs_stmt_def_t *def;

    if (!prepared) return;
    for (table = statement_tables; *table; ++table) {
        for (def = *table; def->label; ++def) {
            apr_hash_set(prepared, def->label, APR_HASH_KEY_STRING, NULL);
        }
    }
}

int fs_store_prepared_complete(apr_hash_t *prepared, const apr_dbd_driver_t *driver)
{
    const fs_stmt_def_t *const *table;
    const fs_stmt_def_t *def;

    if (!prepared) return 0;
    for (table = statement_tables; *table; ++table) {
        for (def = *table; def->label; ++def) {
            if (!stmt_for_driver(def, driver)) continue;
            if (!apr_hash_get(prepared, def->label, APR_HASH_KEY_STRING)) return 0;
        }
    }
    return 1;
}

/* ---- shared with the other store files (fs_store_int.h) --------------------- */

apr_status_t fs_store_exec(fs_store_t *store, apr_pool_t *p, const char *label,
                           int *pnrows, int nargs, const char **args)
{
    return exec(store, p, label, pnrows, nargs, args);
}

apr_status_t fs_store_select(fs_store_t *store, apr_pool_t *p, const char *label,
                             int nargs, const char **args, int ncols,
                             apr_array_header_t **prows)
{
    return select_rows(store, p, label, nargs, args, ncols, prows);
}

apr_status_t fs_store_tx_start(fs_store_t *store, apr_pool_t *p,
                               apr_dbd_transaction_t **ptx)
{
    return tx_start(store, p, ptx);
}

apr_status_t fs_store_tx_end(fs_store_t *store, apr_pool_t *p, apr_dbd_transaction_t *tx,
                             apr_status_t rv)
{
    return tx_end(store, p, tx, rv);
}

const char *fs_store_i64(apr_pool_t *p, apr_int64_t v)
{
    return i64(p, v);
}

apr_int64_t fs_store_to_i64(const char *s)
{
    return to_i64(s);
}

fs_sub_t *fs_store_sub_from_row(apr_pool_t *p, const char **cols)
{
    return sub_from_row(p, cols);
}

/* ---- schema ------------------------------------------------------------- */

apr_status_t fs_store_schema_version(fs_store_t *store, apr_pool_t *p, int *pversion)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int err;

    /* Plain select: the statement cannot be prepared before its table exists. */
    *pversion = 0;
    err = apr_dbd_select(store->driver, p, store->handle, &res,
                         "SELECT version FROM fhirsub_schema WHERE id = 1", 1);
    if (err) return APR_EGENERAL;
    while (0 == apr_dbd_get_row(store->driver, p, res, &row, -1)) {
        const char *v = apr_dbd_get_entry(store->driver, row, 0);
        *pversion = v ? atoi(v) : 0;
    }
    return APR_SUCCESS;
}

static apr_status_t run_ddl(fs_store_t *store, apr_pool_t *p, const char *sql,
                            const char **perr)
{
    int nrows = 0;
    int err = apr_dbd_query(store->driver, store->handle, &nrows, sql);
    if (err) {
        *perr = apr_psprintf(p, "schema statement failed (%s): %.60s...",
                             fs_store_error(store, err), sql);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static int is_pgsql(const fs_store_t *store)
{
    return !strcmp(apr_dbd_name(store->driver), "pgsql");
}

/* v3 copies the counters, then drops their columns: on PostgreSQL no writer may bump
 * one in between (its increment would be lost, the next number taken twice). SQLite's
 * first write of the step takes the database's write lock anyway. */
static apr_status_t lock_for_copy(fs_store_t *store, apr_pool_t *p, int step,
                                  const char **perr)
{
    if (step != 3 || !is_pgsql(store)) return APR_SUCCESS;
    return run_ddl(store, p, "LOCK TABLE fhirsub_subscription IN EXCLUSIVE MODE", perr);
}

static apr_status_t apply_step(fs_store_t *store, apr_pool_t *p, int step,
                               const char **perr)
{
    const char *const *sql;
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;
    int current;

    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) {
        *perr = "cannot start the schema transaction";
        return rv;
    }
    /* Re-read inside the transaction: another process may have migrated meanwhile. */
    rv = fs_store_schema_version(store, p, &current);
    if (rv == APR_SUCCESS && current < step) {
        rv = lock_for_copy(store, p, step, perr);
        for (sql = schema_steps[step - 1]; *sql && rv == APR_SUCCESS; ++sql) {
            rv = run_ddl(store, p, *sql, perr);
        }
        /* v2: the subscriptions already there get their keys in the same transaction */
        if (rv == APR_SUCCESS && step == 2) rv = fs_subkey_backfill(store, p, perr);
        if (rv == APR_SUCCESS) {
            rv = run_ddl(store, p, apr_psprintf(p,
                "UPDATE fhirsub_schema SET version = %d, updated_ms = %" APR_INT64_T_FMT
                " WHERE id = 1", step, fs_time_to_ms(apr_time_now())), perr);
        }
    }
    return tx_end(store, p, tx, rv);
}

static apr_status_t migrate_attempt(fs_store_t *store, apr_pool_t *p, const char **perr)
{
    apr_status_t rv;
    int version = 0, step;
    const char *ignored;

    *perr = NULL;
    if (APR_SUCCESS != (rv = run_ddl(store, p, schema_bootstrap, perr))) return rv;
    if (APR_SUCCESS != (rv = fs_store_schema_version(store, p, &version))) {
        *perr = "cannot read the schema version";
        return rv;
    }
    if (version > FS_SCHEMA_VERSION) {
        *perr = apr_psprintf(p, "the database has schema version %d, newer than this "
                             "software's %d: upgrade mod_fhirsub", version,
                             FS_SCHEMA_VERSION);
        return APR_EGENERAL;
    }
    if (version == 0) {
        /* A concurrent insert of the same row fails harmlessly on the primary key. */
        run_ddl(store, p, "INSERT INTO fhirsub_schema (id, version, updated_ms)"
                " VALUES (1, 0, 0)", &ignored);
    }
    for (step = version + 1; step <= FS_SCHEMA_VERSION; ++step) {
        if (APR_SUCCESS != (rv = apply_step(store, p, step, perr))) return rv;
    }
    return APR_SUCCESS;
}

/* Processes starting together race to create the schema; the losers see a busy
 * database, "schema has changed" or a duplicate key, and succeed on a later try. */
apr_status_t fs_store_migrate(fs_store_t *store, apr_pool_t *p, const char **perr)
{
    apr_status_t rv = APR_EGENERAL;
    int attempt;

    for (attempt = 1; attempt <= FS_MIGRATE_ATTEMPTS; ++attempt) {
        if (APR_SUCCESS == (rv = migrate_attempt(store, p, perr))) return APR_SUCCESS;
        if (!strncmp(*perr ? *perr : "", "the database has schema version", 31)) break;
        apr_sleep(apr_time_from_msec(50 * attempt));
    }
    return rv;
}

/* ---- subscriptions ------------------------------------------------------ */

static fs_sub_t *sub_from_row(apr_pool_t *p, const char **c)
{
    fs_sub_t *s = apr_pcalloc(p, sizeof(*s));
    s->id = c[0];
    s->owner = c[1];
    s->status = c[2];
    s->channel_type = c[3];
    s->shape = (fs_sub_shape_t)to_i64(c[4]);
    s->topic = *c[5] ? c[5] : NULL;
    s->criteria = c[6];
    s->filters_json = c[7];
    s->content = c[8];
    s->content_type = c[9];
    s->heartbeat_period = to_i64(c[10]);
    s->timeout = to_i64(c[11]);
    s->max_count = to_i64(c[12]);
    s->end = fs_time_from_ms(to_i64(c[13]));
    s->base_url = c[14];
    s->events_since_start = to_i64(c[15]);
    s->last_delivery = fs_time_from_ms(to_i64(c[16]));
    s->error = c[17];
    s->version_id = to_i64(c[18]);
    s->created = fs_time_from_ms(to_i64(c[19]));
    s->updated = fs_time_from_ms(to_i64(c[20]));
    s->resource_json = c[22];
    return s;
}

apr_status_t fs_store_sub_insert(fs_store_t *store, apr_pool_t *p, const fs_sub_t *s)
{
    const char *args[] = {
        s->id, s->owner, s->status, s->channel_type, i64(p, s->shape),
        s->topic ? s->topic : "", s->criteria, s->filters_json, s->content,
        s->content_type, i64(p, s->heartbeat_period), i64(p, s->timeout),
        i64(p, s->max_count), i64(p, fs_time_to_ms(s->end)), s->base_url,
        s->error ? s->error : "", i64(p, s->version_id), i64(p, fs_time_to_ms(s->created)),
        i64(p, fs_time_to_ms(s->updated)), s->resource_json
    };
    const char *counter[] = {
        s->id, i64(p, s->events_since_start), i64(p, fs_time_to_ms(s->last_delivery))
    };
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) return rv;
    rv = exec(store, p, "fhirsub_sub_insert", NULL, sizeof(args) / sizeof(args[0]), args);
    if (rv == APR_SUCCESS) rv = exec(store, p, "fhirsub_sub_counter_insert", NULL, 3, counter);
    if (rv == APR_SUCCESS) rv = fs_subkey_write(store, p, s);
    return tx_end(store, p, tx, rv);
}

apr_status_t fs_store_sub_get(fs_store_t *store, apr_pool_t *p, const char *id,
                              fs_sub_t **psub)
{
    apr_array_header_t *rows;
    const char *args[] = { id };
    apr_status_t rv;

    *psub = NULL;
    rv = select_rows(store, p, "fhirsub_sub_get", 1, args, SUB_NCOLUMNS, &rows);
    if (rv != APR_SUCCESS) return rv;
    if (rows->nelts == 0) return APR_NOTFOUND;
    *psub = sub_from_row(p, APR_ARRAY_IDX(rows, 0, const char **));
    return APR_SUCCESS;
}

apr_status_t fs_store_sub_list_owner(fs_store_t *store, apr_pool_t *p, const char *owner,
                                     apr_array_header_t **psubs)
{
    apr_array_header_t *rows;
    const char *args[] = { owner };
    apr_status_t rv;
    int i;

    *psubs = apr_array_make(p, 4, sizeof(fs_sub_t *));
    rv = select_rows(store, p, "fhirsub_sub_list_owner", 1, args, SUB_NCOLUMNS, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        APR_ARRAY_PUSH(*psubs, fs_sub_t *) =
            sub_from_row(p, APR_ARRAY_IDX(rows, i, const char **));
    }
    return rv;
}

apr_status_t fs_store_sub_update(fs_store_t *store, apr_pool_t *p, const fs_sub_t *s,
                                 apr_int64_t old_version)
{
    const char *args[] = {
        s->status, s->channel_type, i64(p, s->shape), s->topic ? s->topic : "",
        s->criteria, s->filters_json, s->content, s->content_type,
        i64(p, s->heartbeat_period), i64(p, s->timeout), i64(p, s->max_count),
        i64(p, fs_time_to_ms(s->end)), i64(p, s->version_id),
        i64(p, fs_time_to_ms(s->updated)), s->resource_json, s->id, i64(p, old_version)
    };
    apr_dbd_transaction_t *tx = NULL;
    fs_sub_t *current;
    apr_status_t rv;
    int nrows = 0;

    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) return rv;
    rv = exec(store, p, "fhirsub_sub_update", &nrows, 17, args);
    if (rv == APR_SUCCESS && nrows > 0) rv = fs_subkey_write(store, p, s);
    rv = tx_end(store, p, tx, rv);
    if (rv != APR_SUCCESS || nrows > 0) return rv;
    rv = fs_store_sub_get(store, p, s->id, &current);
    return rv == APR_SUCCESS ? APR_EEXIST : rv;
}

apr_status_t fs_store_sub_set_status(fs_store_t *store, apr_pool_t *p, const char *id,
                                     const char *from_status, const char *to_status)
{
    const char *args[] = { to_status, id, from_status };
    return exec(store, p, "fhirsub_sub_set_status", NULL, 3, args);
}

/* What belongs to a subscription being deleted, after its counter row and its own row:
 * its events, grant links, index keys. */
static apr_status_t delete_dependents(fs_store_t *store, apr_pool_t *p, const char *id)
{
    static const char *const labels[] = {
        "fhirsub_event_delete_sub", "fhirsub_grant_unlink_sub", "fhirsub_sub_key_delete"
    };
    const char *args[] = { id };
    apr_status_t rv = APR_SUCCESS;
    apr_size_t i;
    for (i = 0; rv == APR_SUCCESS && i < sizeof(labels) / sizeof(labels[0]); ++i) {
        rv = exec(store, p, labels[i], NULL, 1, args);
    }
    return rv;
}

apr_status_t fs_store_sub_delete(fs_store_t *store, apr_pool_t *p, const char *id,
                                 const char *owner)
{
    const char *args_owner[] = { id, owner };
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;
    int nrows = 0;

    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) return rv;
    /* The counter row first. PostgreSQL: a recording that holds its lock is waited for,
     * and the events deleted below (a later statement, a later snapshot) then include
     * the ones it made: none is left behind. A recording that comes after finds no
     * counter row and numbers nothing. The notifier's marks lock counter rows before
     * subscription rows too: one order, no deadlock. */
    rv = exec(store, p, "fhirsub_sub_counter_delete", NULL, 1, args_owner);
    if (rv == APR_SUCCESS) rv = exec(store, p, "fhirsub_sub_delete", &nrows, 2, args_owner);
    if (rv == APR_SUCCESS && nrows == 0) rv = APR_NOTFOUND;
    if (rv == APR_SUCCESS) rv = delete_dependents(store, p, id);
    return tx_end(store, p, tx, rv);
}

/* ---- grants ------------------------------------------------------------- */

static apr_status_t insert_grant(fs_store_t *store, apr_pool_t *p, const fs_grant_t *g)
{
    const char *args[] = { g->id, g->owner, i64(p, fs_time_to_ms(g->issued)),
                           i64(p, fs_time_to_ms(g->expires)) };
    apr_status_t rv;
    int i;

    rv = exec(store, p, "fhirsub_grant_insert", NULL, 4, args);
    for (i = 0; rv == APR_SUCCESS && g->sub_ids && i < g->sub_ids->nelts; ++i) {
        const char *link[] = { g->id, APR_ARRAY_IDX(g->sub_ids, i, const char *) };
        rv = exec(store, p, "fhirsub_grant_link", NULL, 2, link);
    }
    return rv;
}

/* The subscription ids joined by spaces, or NULL when one is empty or has a space
 * (FHIR ids never do; the store takes any string). */
static const char *ids_joined(apr_pool_t *p, const apr_array_header_t *ids)
{
    const char *joined = "";
    int i;
    for (i = 0; ids && i < ids->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        if (!*id || strchr(id, ' ')) return NULL;
        joined = apr_pstrcat(p, joined, i ? " " : "", id, NULL);
    }
    return joined;
}

static apr_status_t insert_grant_linked(fs_store_t *store, apr_pool_t *p, const fs_grant_t *g,
                                        const char *ids)
{
    const char *args[] = { g->id, g->owner, i64(p, fs_time_to_ms(g->issued)),
                           i64(p, fs_time_to_ms(g->expires)), ids };
    return exec(store, p, "fhirsub_grant_insert_linked", NULL, 5, args);
}

apr_status_t fs_store_grant_insert_items(fs_store_t *store, apr_pool_t *p, void *const *items,
                                         int n)
{
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;
    int i;

    if (n == 1 && !strcmp(apr_dbd_name(store->driver), "pgsql")) {
        const char *ids = ids_joined(p, ((const fs_grant_t *)items[0])->sub_ids);
        if (ids) return insert_grant_linked(store, p, items[0], ids);
    }
    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) return rv;
    if (!strcmp(apr_dbd_name(store->driver), "pgsql")) {
        rv = exec(store, p, "fhirsub_grant_async", NULL, 0, NULL);
    }
    for (i = 0; rv == APR_SUCCESS && i < n; ++i) {
        rv = insert_grant(store, p, items[i]);
    }
    return tx_end(store, p, tx, rv);
}

apr_status_t fs_store_grant_insert_read_subs(fs_store_t *store, apr_pool_t *p,
                                            const fs_grant_t *g, apr_array_header_t **psubs)
{
    const char *ids = ids_joined(p, g->sub_ids);
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    *psubs = apr_array_make(p, g->sub_ids ? g->sub_ids->nelts : 1, sizeof(fs_sub_t *));
    if (strcmp(apr_dbd_name(store->driver), "pgsql") || !ids || !*ids) return APR_ENOTIMPL;
    {
        const char *args[] = { g->id, g->owner, i64(p, fs_time_to_ms(g->issued)),
                               i64(p, fs_time_to_ms(g->expires)), ids, ids, ids };
        rv = select_rows(store, p, "fhirsub_grant_insert_read_subs", 7, args, SUB_NCOLUMNS,
                         &rows);
    }
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        APR_ARRAY_PUSH(*psubs, fs_sub_t *) = sub_from_row(p, APR_ARRAY_IDX(rows, i, const char **));
    }
    return rv;
}

apr_status_t fs_store_grant_insert(fs_store_t *store, apr_pool_t *p, const fs_grant_t *g)
{
    void *item = (void *)g;
    return fs_store_grant_insert_items(store, p, &item, 1);
}

apr_status_t fs_store_grant_get(fs_store_t *store, apr_pool_t *p, const char *id,
                                fs_grant_t **pgrant)
{
    apr_array_header_t *rows, *links;
    const char *args[] = { id };
    const char **c;
    fs_grant_t *g;
    apr_status_t rv;
    int i;

    *pgrant = NULL;
    rv = select_rows(store, p, "fhirsub_grant_get", 1, args, 5, &rows);
    if (rv != APR_SUCCESS) return rv;
    if (rows->nelts == 0) return APR_NOTFOUND;
    c = APR_ARRAY_IDX(rows, 0, const char **);
    g = apr_pcalloc(p, sizeof(*g));
    g->id = c[0];
    g->owner = c[1];
    g->issued = fs_time_from_ms(to_i64(c[2]));
    g->expires = fs_time_from_ms(to_i64(c[3]));
    g->revoked = fs_time_from_ms(to_i64(c[4]));
    rv = select_rows(store, p, "fhirsub_grant_subs", 1, args, 1, &links);
    if (rv != APR_SUCCESS) return rv;
    g->sub_ids = apr_array_make(p, links->nelts, sizeof(const char *));
    for (i = 0; i < links->nelts; ++i) {
        APR_ARRAY_PUSH(g->sub_ids, const char *) =
            APR_ARRAY_IDX(links, i, const char **)[0];
    }
    *pgrant = g;
    return APR_SUCCESS;
}

/* Links, then the grants they belong to, by two statements of one argument, in one
 * transaction; *pcount (may be NULL): grant rows deleted. */
static apr_status_t delete_grants(fs_store_t *store, apr_pool_t *p, const char *links_label,
                                  const char *grants_label, const char *arg, int *pcount)
{
    const char *args[] = { arg };
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) return rv;
    rv = exec(store, p, links_label, NULL, 1, args);
    if (rv == APR_SUCCESS) rv = exec(store, p, grants_label, pcount, 1, args);
    return tx_end(store, p, tx, rv);
}

apr_status_t fs_store_grant_delete(fs_store_t *store, apr_pool_t *p, const char *id)
{
    return delete_grants(store, p, "fhirsub_grant_delete_links", "fhirsub_grant_delete", id,
                         NULL);
}

apr_status_t fs_store_grant_revoke(fs_store_t *store, apr_pool_t *p, const char *id,
                                   apr_time_t now, int *pcount)
{
    const char *args[] = { i64(p, fs_time_to_ms(now)), id };
    return exec(store, p, "fhirsub_grant_revoke", pcount, 2, args);
}

apr_status_t fs_store_grant_revoke_owner(fs_store_t *store, apr_pool_t *p,
                                         const char *owner, apr_time_t now, int *pcount)
{
    const char *args[] = { i64(p, fs_time_to_ms(now)), owner };
    return exec(store, p, "fhirsub_grant_revoke_owner", pcount, 2, args);
}

apr_status_t fs_store_grant_prune(fs_store_t *store, apr_pool_t *p, apr_time_t before,
                                  int *pcount)
{
    return delete_grants(store, p, "fhirsub_grant_prune_links", "fhirsub_grant_prune",
                         i64(p, fs_time_to_ms(before)), pcount);
}

/* ---- fhirsub-notifier ----------------------------------------------------- */

apr_status_t fs_store_events_after(fs_store_t *store, apr_pool_t *p, const char *sub_id,
                                   apr_int64_t after, int limit,
                                   apr_array_header_t **pevents)
{
    const char *args[] = { sub_id, i64(p, after), i64(p, limit > 0 ? limit : 1) };
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    *pevents = apr_array_make(p, 4, sizeof(fs_notify_event_t));
    rv = select_rows(store, p, "fhirsub_event_after", 3, args, 10, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        fs_store_event_from_row(apr_array_push(*pevents), APR_ARRAY_IDX(rows, i,
                                                                        const char **));
    }
    return rv;
}

void fs_store_event_from_row(fs_notify_event_t *ev, const char **c)
{
    ev->number = to_i64(c[0]);
    ev->timestamp = fs_time_from_ms(to_i64(c[1]));
    ev->resource_type = c[2];
    ev->resource_id = c[3];
    ev->version_id = c[4];
    ev->interaction = c[5];
    ev->request_method = c[6];
    ev->request_url = c[7];
    ev->response_status = c[8];
    ev->body = c[9];
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

apr_status_t fs_store_sub_mark_bound(fs_store_t *store, apr_pool_t *p,
                                     const apr_array_header_t *ids, apr_time_t now)
{
    const char *ms = i64(p, fs_time_to_ms(now));
    apr_array_header_t *sorted;
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;
    int i;

    if (ids->nelts == 0) return APR_SUCCESS;
    /* rows locked in id order, as the event recorder locks them: no deadlock */
    sorted = apr_array_copy(p, ids);
    qsort(sorted->elts, (size_t)sorted->nelts, sizeof(const char *), cmp_id);
    /* one transaction: one commit (one fsync, one SQLite write lock) for all */
    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) return rv;
    for (i = 0; rv == APR_SUCCESS && i < sorted->nelts; ++i) {
        const char *args[] = { ms, APR_ARRAY_IDX(sorted, i, const char *) };
        rv = exec(store, p, "fhirsub_sub_mark_bound", NULL, 2, args);
    }
    return tx_end(store, p, tx, rv);
}

/* The deliveries as the JSON array of [id, ms] the set-based statement reads. */
static const char *deliveries_json(apr_pool_t *p, const fs_delivery_t *d, int n)
{
    json_object *arr = json_object_new_array();
    const char *text;
    int i;

    for (i = 0; i < n; ++i) {
        json_object *one = json_object_new_array();
        json_object_array_add(one, json_object_new_string(d[i].sub_id));
        json_object_array_add(one, json_object_new_int64(fs_time_to_ms(d[i].when)));
        json_object_array_add(arr, one);
    }
    text = fs_json_str(p, arr);
    json_object_put(arr);
    return text;
}

/* PostgreSQL: bookkeeping whose commit need not wait for the WAL flush (a lost one is
 * said again by the next delivery), its counter rows locked first in the event
 * recorder's order (fs_event_lock_subs), then the subscription rows of those in error
 * (as a deletion: counter, then subscription): no deadlock. */
static apr_status_t deliveries_prepare_pgsql(fs_store_t *store, apr_pool_t *p,
                                             const fs_delivery_t *d, int n)
{
    apr_array_header_t *ids = apr_array_make(p, n, sizeof(const char *));
    apr_status_t rv;
    int i;

    for (i = 0; i < n; ++i) APR_ARRAY_PUSH(ids, const char *) = d[i].sub_id;
    rv = exec(store, p, "fhirsub_grant_async", NULL, 0, NULL);
    if (rv != APR_SUCCESS) return rv;
    return fs_event_lock_subs(store, p, fs_json_str_array(p, ids), n);
}

apr_status_t fs_store_sub_mark_delivered(fs_store_t *store, apr_pool_t *p,
                                         const fs_delivery_t *d, int n)
{
    int pg = is_pgsql(store);
    apr_dbd_transaction_t *tx = NULL;
    const char *args[2];
    apr_status_t rv;

    if (n <= 0) return APR_SUCCESS;
    args[0] = args[1] = deliveries_json(p, d, n);
    /* one statement and one commit for all: on SQLite each commit is a write lock and
     * an fsync, on PostgreSQL a statement per row was a round trip under row locks */
    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) return rv;
    if (pg) rv = deliveries_prepare_pgsql(store, p, d, n);
    if (rv == APR_SUCCESS) {
        rv = exec(store, p, pg ? "fhirsub_sub_mark_recovered_pgsql"
                               : "fhirsub_sub_mark_recovered_sqlite", NULL, pg ? 2 : 1, args);
    }
    if (rv == APR_SUCCESS) {
        rv = exec(store, p, pg ? "fhirsub_sub_mark_delivered_pgsql"
                               : "fhirsub_sub_mark_delivered_sqlite", NULL, pg ? 2 : 1, args);
    }
    return tx_end(store, p, tx, rv);
}

apr_status_t fs_store_sub_mark_error(fs_store_t *store, apr_pool_t *p, const char *id,
                                     const char *text)
{
    const char *args[] = { text, id };
    return exec(store, p, "fhirsub_sub_mark_error", NULL, 2, args);
}

apr_status_t fs_store_sub_clear_error(fs_store_t *store, apr_pool_t *p, const char *id)
{
    const char *args[] = { id };
    return exec(store, p, "fhirsub_sub_clear_error", NULL, 1, args);
}

apr_status_t fs_store_sub_list_unbound(fs_store_t *store, apr_pool_t *p, apr_time_t before,
                                       int shape, int limit, apr_array_header_t **psubs)
{
    const char *ms = i64(p, fs_time_to_ms(before));
    const char *args[] = { ms, ms, i64(p, shape), i64(p, shape), i64(p, limit > 0 ? limit : 1) };
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    *psubs = apr_array_make(p, 4, sizeof(fs_sub_t *));
    rv = select_rows(store, p, "fhirsub_sub_list_unbound", 5, args, 2, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        const char **c = APR_ARRAY_IDX(rows, i, const char **);
        fs_sub_t *s = apr_pcalloc(p, sizeof(*s));
        s->id = c[0];
        s->owner = c[1];
        APR_ARRAY_PUSH(*psubs, fs_sub_t *) = s;
    }
    return rv;
}

apr_status_t fs_store_sub_delete_unbound(fs_store_t *store, apr_pool_t *p, const char *id,
                                         apr_time_t before, int *pdeleted)
{
    const char *ms = i64(p, fs_time_to_ms(before));
    const char *args[] = { id, ms, id, ms };
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;
    int nrows = 0;

    *pdeleted = 0;
    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) return rv;
    /* the condition again: a bind since the listing keeps the subscription; the counter
     * row first, as in fs_store_sub_delete */
    rv = exec(store, p, "fhirsub_sub_counter_delete_unbound", &nrows, 4, args);
    if (rv == APR_SUCCESS && nrows > 0) rv = exec(store, p, "fhirsub_sub_delete_id", NULL, 1, args);
    if (rv == APR_SUCCESS && nrows > 0) rv = delete_dependents(store, p, id);
    rv = tx_end(store, p, tx, rv);
    if (rv == APR_SUCCESS) *pdeleted = nrows > 0;
    return rv;
}

/* ---- retention (fhirsub-notifier) ------------------------------------------------- */

apr_status_t fs_store_prune_subs(fs_store_t *store, apr_pool_t *p, const char *after_id,
                                 int limit, apr_array_header_t **psubs)
{
    const char *args[] = { after_id ? after_id : "", i64(p, limit > 0 ? limit : 1) };
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    *psubs = apr_array_make(p, 4, sizeof(fs_prune_sub_t));
    rv = select_rows(store, p, "fhirsub_prune_subs", 2, args, 4, &rows);
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        const char **c = APR_ARRAY_IDX(rows, i, const char **);
        fs_prune_sub_t *s = apr_array_push(*psubs);
        s->id = c[0];
        s->events_since_start = to_i64(c[1]);
        s->last_bound = fs_time_from_ms(to_i64(c[2]));
        s->last_delivery = fs_time_from_ms(to_i64(c[3]));
    }
    return rv;
}

apr_status_t fs_store_events_prune(fs_store_t *store, apr_pool_t *p, const char *sub_id,
                                   const fs_prune_rule_t *rule, int limit, int *pdeleted)
{
    const char *max = i64(p, rule->max_number), *older = i64(p, rule->older_ms);
    const char *upto = i64(p, rule->upto_number), *keep = i64(p, rule->keep_after_ms);
    const char *find[] = { sub_id, max, older, upto, keep, i64(p, limit > 0 ? limit : 1) };
    const char *del[] = { sub_id, NULL, NULL, older, upto, keep };
    apr_array_header_t *rows;
    apr_status_t rv;

    *pdeleted = 0;
    /* a read finds the batch, a range delete of the same rule removes it: the write is
     * one short statement on the primary key, whatever the table's size */
    rv = select_rows(store, p, "fhirsub_event_prune_find", 6, find, 1, &rows);
    if (rv != APR_SUCCESS || rows->nelts == 0) return rv;
    del[1] = APR_ARRAY_IDX(rows, 0, const char **)[0];
    del[2] = APR_ARRAY_IDX(rows, rows->nelts - 1, const char **)[0];
    return exec(store, p, "fhirsub_event_prune_range", pdeleted, 6, del);
}

/* Delete the change rows listed (id first) that still have no event, in one transaction:
 * one commit, the write lock held for a few rows. */
static apr_status_t delete_orphans(fs_store_t *store, apr_pool_t *p,
                                   const apr_array_header_t *rows, int *pdeleted)
{
    apr_dbd_transaction_t *tx = NULL;
    apr_status_t rv;
    int i, n, total = 0;

    if (APR_SUCCESS != (rv = tx_start(store, p, &tx))) return rv;
    for (i = 0; rv == APR_SUCCESS && i < rows->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(rows, i, const char **)[0];
        const char *args[] = { id, id };
        n = 0;
        rv = exec(store, p, "fhirsub_change_delete_orphan", &n, 2, args);
        total += n;
    }
    rv = tx_end(store, p, tx, rv);
    *pdeleted = rv == APR_SUCCESS ? total : 0;
    return rv;
}

apr_status_t fs_store_changes_prune(fs_store_t *store, apr_pool_t *p, fs_prune_mark_t *mark,
                                    int limit, int *pdeleted)
{
    const char *ms = i64(p, mark->created_ms);
    const char *find[] = { ms, ms, mark->id, i64(p, limit > 0 ? limit : 1) };
    apr_array_header_t *rows;
    const char **last;
    apr_status_t rv;

    *pdeleted = 0;
    rv = select_rows(store, p, "fhirsub_change_orphans", 4, find, 2, &rows);
    if (rv != APR_SUCCESS) return rv;
    mark->done = rows->nelts < limit;
    if (rows->nelts == 0) return APR_SUCCESS;
    if (APR_SUCCESS != (rv = delete_orphans(store, p, rows, pdeleted))) return rv;
    last = APR_ARRAY_IDX(rows, rows->nelts - 1, const char **);
    mark->created_ms = to_i64(last[1]);
    apr_cpystrn(mark->id, last[0], sizeof(mark->id));
    return APR_SUCCESS;
}
