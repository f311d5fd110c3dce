#include <poll.h>
#include <string.h>
#include <apr_optional.h>
#include <apr_optional_hooks.h>
#include <apr_thread_mutex.h>
#include <httpd.h>
#include <http_log.h>
#include <apr_dbd.h>
#include <mod_dbd.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "mod_fhirsub_config.h"
#include "fs_group.h"
#include "mod_fhirsub_store.h"

APLOG_USE_MODULE(fhirsub);

/* How long an SQLite writer waits for the lock, and how long between its tries. */
#define FHIRSUB_SQLITE_BUSY_MS 5000
#define FHIRSUB_SQLITE_BUSY_STEP_MS 10

/* apr-util's sqlite3 driver holds one process-wide mutex around every call (exported
 * by libaprutil, declared only in its private apr_dbd_internal.h). */
apr_status_t apr_dbd_mutex_lock(void);
apr_status_t apr_dbd_mutex_unlock(void);

/* Wait for SQLite's write lock without holding the driver's mutex: sqlite3's own
 * busy timeout would sleep with it held, so the thread of this same process that
 * holds the write transaction could not finish it (writes stalled in 5 s steps). */
static int busy_wait(void *baton, int count)
{
    (void)baton;
    if (count * FHIRSUB_SQLITE_BUSY_STEP_MS >= FHIRSUB_SQLITE_BUSY_MS) return 0;
    apr_dbd_mutex_unlock();
    apr_sleep(apr_time_from_msec(FHIRSUB_SQLITE_BUSY_STEP_MS));
    apr_dbd_mutex_lock();
    return 1;
}

/* The store handed to a request, with the mod_dbd connection under it (for recovery). */
typedef struct {
    fs_store_t store;   /* first: fhirsub_store_recover() casts back */
    ap_dbd_t *dbd;
} fhirsub_store_conn;

/* Pool userdata key: the PostgreSQL backend our statements were prepared on. */
#define FHIRSUB_PG_BACKEND_KEY "fhirsub:pg-backend"

static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;
static fs_group_t *grant_group;      /* grants issued at once share a commit */
static apr_thread_mutex_t *migrate_mutex;
static int service_enabled;          /* some location has FhirSub On */
static volatile int schema_ready;    /* this process saw the current schema */

void fhirsub_store_enable(void)
{
    service_enabled = 1;
}

void fhirsub_store_child_init(apr_pool_t *pchild, server_rec *s)
{
    if (APR_SUCCESS != fs_group_create(&grant_group, pchild, FHIRSUB_GRANT_BATCH_MAX)) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FHIRSUB_LOGNO(10628)
                     "no group commit for grants: each token commits its own");
    }
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    if (APR_SUCCESS != apr_thread_mutex_create(&migrate_mutex, APR_THREAD_MUTEX_DEFAULT,
                                               pchild)) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FHIRSUB_LOGNO(10620)
                     "cannot create the schema mutex");
    }
}

/* SQLite: wait for the write lock instead of failing, and use WAL so readers never
 * block the writer (set through the native handle: DBDInitSQL stops at PRAGMAs). */
static void tune_sqlite(apr_pool_t *p, dbd_cfg_t *cfg, ap_dbd_t *dbd)
{
    sqlite3 *db = apr_dbd_native_handle(dbd->driver, dbd->handle);
    char *err = NULL;
    (void)p;
    if (!db) return;
    sqlite3_busy_handler(db, busy_wait, NULL);
    if (SQLITE_OK != sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, &err)) {
        /* WAL is a property of the file: another process switching it meanwhile
         * holds the lock we would need, and its switch is as good as ours. */
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, cfg->server, FHIRSUB_LOGNO(10623)
                     "SQLite journal mode not switched to WAL here: %s", err ? err : "?");
        sqlite3_free(err);
    }
}

static apr_status_t migrate_once(apr_pool_t *p, server_rec *s, fs_store_t *store)
{
    const char *err = NULL;
    apr_status_t rv = APR_SUCCESS;

    if (schema_ready) return APR_SUCCESS;
    if (migrate_mutex) apr_thread_mutex_lock(migrate_mutex);
    if (!schema_ready) {
        if (APR_SUCCESS == (rv = fs_store_migrate(store, p, &err))) {
            schema_ready = 1;
        }
        else {
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, FHIRSUB_LOGNO(10621)
                         "database schema setup failed: %s", err ? err : "unknown");
        }
    }
    if (migrate_mutex) apr_thread_mutex_unlock(migrate_mutex);
    return rv;
}

static PGconn *pg_conn(ap_dbd_t *dbd)
{
    if (strcmp(apr_dbd_name(dbd->driver), "pgsql")) return NULL;
    return apr_dbd_native_handle(dbd->driver, dbd->handle);
}

/* PostgreSQL keeps prepared statements per server session. A connection that libpq
 * reset (apr_dbd_check_conn does so when mod_dbd hands it out after the server
 * restarted) is a new session without them: remember which one ours are on. */
static void note_backend(ap_dbd_t *dbd)
{
    PGconn *conn = pg_conn(dbd);
    int *pid;
    if (!conn) return;
    pid = apr_palloc(dbd->pool, sizeof(*pid));
    *pid = PQbackendPID(conn);
    apr_pool_userdata_set(pid, FHIRSUB_PG_BACKEND_KEY, NULL, dbd->pool);
}

static int statements_lost(ap_dbd_t *dbd)
{
    PGconn *conn = pg_conn(dbd);
    void *pid = NULL;
    if (!conn) return 0;
    apr_pool_userdata_get(&pid, FHIRSUB_PG_BACKEND_KEY, dbd->pool);
    return !pid || *(int *)pid != PQbackendPID(conn);
}

/* Schema, then our statements, on one connection; p lives as long as it. */
static apr_status_t setup_connection(apr_pool_t *p, server_rec *s, ap_dbd_t *dbd)
{
    fs_store_t store;
    const char *err = NULL;
    apr_status_t rv;

    memset(&store, 0, sizeof(store));
    store.driver = dbd->driver;
    store.handle = dbd->handle;
    store.prepared = dbd->prepared;
    /* noted before preparing: a partial setup retried on the same session must keep
     * (and skip) the statements it did prepare */
    note_backend(dbd);
    if (APR_SUCCESS != (rv = migrate_once(p, s, &store))) return rv;
    if (APR_SUCCESS != (rv = fs_store_prepare_all(&store, p, &err))) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, FHIRSUB_LOGNO(10624)
                     "cannot prepare the mod_fhirsub statements: %s", err);
    }
    return rv;
}

static apr_status_t post_connect(apr_pool_t *p, dbd_cfg_t *cfg, ap_dbd_t *dbd)
{
    if (!service_enabled) return APR_SUCCESS;
    if (!strcmp(apr_dbd_name(dbd->driver), "sqlite3")) tune_sqlite(p, cfg, dbd);
    return setup_connection(p, cfg->server, dbd);
}

void fhirsub_store_register_hooks(void)
{
    APR_OPTIONAL_HOOK(dbd, post_connect, post_connect, NULL, NULL, APR_HOOK_MIDDLE);
}

/* Our statements on this connection: prepared again when setup failed when it was
 * opened (database busy or down then) or its session is new (a reset). The connection
 * is ours alone for this request. */
static apr_status_t ensure_statements(request_rec *r, ap_dbd_t *dbd)
{
    if (statements_lost(dbd)) fs_store_forget_prepared(dbd->prepared);
    if (fs_store_prepared_complete(dbd->prepared, dbd->driver)) return APR_SUCCESS;
    return setup_connection(dbd->pool, r->server, dbd);
}

/* A PostgreSQL connection whose server went away (restart, failover): reset it and
 * prepare our statements on the new session. 1 = it was lost and is usable again. */
static int reconnect_lost(request_rec *r, ap_dbd_t *dbd)
{
    PGconn *conn = pg_conn(dbd);

    if (!conn || PQstatus(conn) != CONNECTION_BAD) return 0;
    PQreset(conn);
    if (PQstatus(conn) != CONNECTION_OK || APR_SUCCESS != ensure_statements(r, dbd)) return 0;
    ap_log_rerror(APLOG_MARK, APLOG_NOTICE, 0, r, FHIRSUB_LOGNO(10626)
                  "the PostgreSQL connection was lost (server restarted?): reconnected");
    return 1;
}

/* A server that shut down told the idle connection so, then closed it: reading what
 * is pending (the notice, then the end of stream), without waiting, lets libpq notice
 * before we send a statement. An idle session is sent nothing else unasked. */
static void notice_closed(ap_dbd_t *dbd)
{
    PGconn *conn = pg_conn(dbd);
    struct pollfd pfd;
    int i;

    if (!conn) return;
    pfd.fd = PQsocket(conn);
    pfd.events = POLLIN;
    for (i = 0; i < 4 && PQstatus(conn) == CONNECTION_OK && poll(&pfd, 1, 0) > 0; ++i) {
        PQconsumeInput(conn);
    }
}

fs_store_t *fhirsub_store_acquire(request_rec *r)
{
    ap_dbd_t *dbd;
    fhirsub_store_conn *sc;

    if (!dbd_acquire || !(dbd = dbd_acquire(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FHIRSUB_LOGNO(10622)
                      "no database connection from mod_dbd (check DBDriver/DBDParams "
                      "and that the database is reachable and writable)");
        return NULL;
    }
    notice_closed(dbd);
    /* mod_dbd's own check may have reset it silently: ensure_statements sees that too */
    if (!reconnect_lost(r, dbd) && APR_SUCCESS != ensure_statements(r, dbd)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FHIRSUB_LOGNO(10625)
                      "this database connection has no mod_fhirsub statements "
                      "(schema setup failed, see earlier errors)");
        return NULL;
    }
    sc = apr_pcalloc(r->pool, sizeof(*sc));
    sc->store.driver = dbd->driver;
    sc->store.handle = dbd->handle;
    sc->store.prepared = dbd->prepared;
    sc->dbd = dbd;
    return &sc->store;
}

/* SQLite: `synchronous` belongs to the connection, cannot change inside a transaction
 * and, prepared, would act when compiled rather than run: set it through the native
 * handle. In WAL mode a later FULL commit syncs the log with every frame before it,
 * so the relaxed grants never weaken what follows. */
static int set_synchronous(fs_store_t *store, int full)
{
    sqlite3 *db;
    if (strcmp(apr_dbd_name(store->driver), "sqlite3")) return SQLITE_NOTFOUND;
    if (!(db = apr_dbd_native_handle(store->driver, store->handle))) return SQLITE_MISUSE;
    return sqlite3_exec(db, full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                        NULL, NULL, NULL);
}

/* An fs_group_fn: grants in one transaction, relaxed on SQLite (set_synchronous). */
static apr_status_t insert_grants(fs_store_t *store, apr_pool_t *p, void *const *items, int n)
{
    int relaxed = SQLITE_OK == set_synchronous(store, 0);
    apr_status_t rv = fs_store_grant_insert_items(store, p, items, n);

    if (relaxed && SQLITE_OK != set_synchronous(store, 1)) {
        ap_log_perror(APLOG_MARK, APLOG_ERR, 0, p, FHIRSUB_LOGNO(10627)
                      "cannot make this SQLite connection synchronous again: "
                      "events recorded on it may not survive a power loss");
    }
    return rv;
}

apr_status_t fhirsub_store_grant_insert(request_rec *r, fs_store_t *store,
                                        const fs_grant_t *grant)
{
    /* SQLite has one writer at a time: grants issued at once share its commit. On
     * PostgreSQL they touch no common row and commit side by side. */
    int sqlite = !strcmp(apr_dbd_name(store->driver), "sqlite3");
    return fs_group_run(sqlite ? grant_group : NULL, insert_grants, r->server, store, r->pool,
                        (void *)grant);
}

int fhirsub_store_recover(request_rec *r, fs_store_t *store)
{
    return reconnect_lost(r, ((fhirsub_store_conn *)store)->dbd);
}
