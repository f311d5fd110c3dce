#include <errno.h>
#include <stdarg.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <apr_dbd.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "fs_fhir.h"
#include "fs_json.h"
#include "fs_notify.h"
#include "fs_notify_text.h"
#include "fs_scan.h"
#include "fs_store.h"
#include "fs_token.h"
#include "nt_batch.h"
#include "nt_log.h"
#include "nt_db.h"
#include "nt_prune.h"

/* How long the worker waits before trying a lost database again. */
#define NT_DB_RETRY apr_time_from_sec(2)
/* How often the worker looks around (reconnects, sweeps) when nothing happens. */
#define NT_DB_TICK_MS 500
/* Most subscription ids one wake-up may name before it counts as "any". */
#define NT_WAKE_MAX_IDS 1000
/* How often the worker checks that the database still answers (nt_db_health). */
#define NT_DB_PROBE apr_time_from_sec(5)
/* Most unbound subscriptions deleted per sweep (the next sweep continues). */
#define NT_SWEEP_BATCH 500
#define NT_SQLITE_BUSY_MS 5000

struct nt_db_t {
    const nt_config_t *conf;
    apr_pool_t *pool;              /* the worker's own (created before it starts) */
    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;          /* guards the lists and `stopping` */
    nt_job_t *jobs, *jobs_tail;    /* {lock} submitted, not yet taken */
    nt_job_t *results, *results_tail; /* {lock} finished, not yet collected */
    int stopping;                  /* {lock} */
    int stopped;                   /* {lock} the worker has ended: submit frees */
    int njobs;                     /* {lock} length of `jobs` */
    int up;                        /* {lock} the store is ready */
    apr_uint64_t errors;           /* {lock} times it was found unavailable */
    apr_time_t last_round;         /* {lock} the worker's last loop */
    int efd;                       /* eventfd: "jobs waiting" / "stop" */
    int wake_fd;                   /* UDP wake-up socket, -1 = none */
    nt_db_wake_fn *wake;
    void *wake_baton;
    const apr_dbd_driver_t *driver;
    /* ---- worker thread only ---- */
    apr_pool_t *dbpool;            /* lives as long as the connection */
    fs_store_t store;              /* handle NULL = not connected */
    apr_time_t next_open;          /* no reconnect before */
    int db_down_logged;
    PGconn *pg;                    /* LISTEN connection (pgsql) */
    apr_time_t next_pg;
    int pg_down_logged;
    apr_time_t next_sweep;
    apr_time_t next_probe;
    apr_uint64_t seq;              /* results posted so far (only the worker posts) */
    nt_prune_t *prune;             /* the retention pass under way, NULL = none */
    nt_floors_t floors;            /* binds the service thread may not have applied */
};

/* ---- jobs ---------------------------------------------------------------------- */

nt_job_t *nt_job_new(nt_job_kind_t kind)
{
    apr_pool_t *p = NULL;
    nt_job_t *job;
    if (APR_SUCCESS != apr_pool_create(&p, NULL)) return NULL;
    job = apr_pcalloc(p, sizeof(*job));
    job->pool = p;
    job->kind = kind;
    return job;
}

void nt_job_free(nt_job_t *job)
{
    if (job) apr_pool_destroy(job->pool);
}

static void free_list(nt_job_t *job)
{
    while (job) {
        nt_job_t *next = job->next;
        nt_job_free(job);
        job = next;
    }
}

static void append(nt_job_t **head, nt_job_t **tail, nt_job_t *job)
{
    job->next = NULL;
    if (*tail) (*tail)->next = job;
    else *head = job;
    *tail = job;
}

static void poke(nt_db_t *db)
{
    apr_uint64_t one = 1;
    if (write(db->efd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
        nt_log(FS_LOG_ERR, "FS20101: cannot wake the database worker: %s", strerror(errno));
    }
}

void nt_db_submit(nt_db_t *db, nt_job_t *job)
{
    int stopped;
    if (!db) {
        nt_job_free(job);
        return;
    }
    pthread_mutex_lock(&db->lock);
    stopped = db->stopped || db->stopping;
    if (!stopped) {
        append(&db->jobs, &db->jobs_tail, job);
        ++db->njobs;
    }
    pthread_mutex_unlock(&db->lock);
    if (stopped) nt_job_free(job);
    else poke(db);
}

nt_job_t *nt_db_results(nt_db_t *db)
{
    nt_job_t *list;
    pthread_mutex_lock(&db->lock);
    list = db->results;
    db->results = db->results_tail = NULL;
    pthread_mutex_unlock(&db->lock);
    return list;
}

void nt_db_health(nt_db_t *db, nt_db_health_t *h)
{
    pthread_mutex_lock(&db->lock);
    h->up = db->up;
    h->errors = db->errors;
    h->last_round = db->last_round;
    h->queued = db->njobs;
    pthread_mutex_unlock(&db->lock);
}

static void set_up(nt_db_t *db, int up)
{
    pthread_mutex_lock(&db->lock);
    if (!up) ++db->errors;
    db->up = up;
    pthread_mutex_unlock(&db->lock);
}

static void post_result(nt_db_t *db, nt_job_t *job)
{
    pthread_mutex_lock(&db->lock);
    job->seq = ++db->seq;
    append(&db->results, &db->results_tail, job);
    pthread_mutex_unlock(&db->lock);
    db->wake(db->wake_baton);
}

/* ---- the store connection --------------------------------------------------------- */

static void tune_sqlite(nt_db_t *db)
{
    sqlite3 *native = apr_dbd_native_handle(db->driver, db->store.handle);
    char *err = NULL;
    if (!native) return;
    /* wait for httpd's writers instead of failing; WAL so readers never block them */
    sqlite3_busy_timeout(native, NT_SQLITE_BUSY_MS);
    if (SQLITE_OK != sqlite3_exec(native, "PRAGMA journal_mode=WAL", NULL, NULL, &err)) {
        nt_log(FS_LOG_DEBUG, "FS20102: SQLite journal mode not switched to WAL here: %s",
               err ? err : "?");
        sqlite3_free(err);
    }
}

/* libpq prints the server's notices (and its FATAL goodbye at shutdown) to stderr by
 * itself: give them a log line with a number instead. */
static void one_line(char *out, size_t size, const char *text);

static void pg_notice(void *arg, const char *message)
{
    char text[1024];
    (void)arg;
    one_line(text, sizeof(text), message);
    nt_log(FS_LOG_NOTICE, "FS20111: PostgreSQL says: %s", text);
}

static void close_store(nt_db_t *db)
{
    if (db->store.handle) apr_dbd_close(db->driver, db->store.handle);
    if (db->dbpool) apr_pool_destroy(db->dbpool);
    db->dbpool = NULL;
    memset(&db->store, 0, sizeof(db->store));
}

static void store_down(nt_db_t *db, const char *what, const char *why)
{
    if (!db->db_down_logged) {
        nt_log(FS_LOG_ERR, "FS20103: database (%s) unavailable: %s: %s; retrying every %d s",
               db->conf->db_driver, what, why ? why : "unknown error",
               (int)apr_time_sec(NT_DB_RETRY));
        db->db_down_logged = 1;
    }
    set_up(db, 0);
    close_store(db);
    db->next_open = apr_time_now() + NT_DB_RETRY;
}

/* Connected, on the current schema, every statement prepared: 1; else 0. */
static int ensure_store(nt_db_t *db)
{
    const char *err = NULL;
    apr_dbd_t *handle = NULL;

    if (db->store.handle) return 1;
    if (apr_time_now() < db->next_open) return 0;
    if (APR_SUCCESS != apr_pool_create(&db->dbpool, db->pool)) return 0;
    if (apr_dbd_open_ex(db->driver, db->dbpool, db->conf->db_params, &handle, &err)
        || !handle) {
        store_down(db, "cannot connect", err);
        return 0;
    }
    db->store.driver = db->driver;
    db->store.handle = handle;
    if (!strcmp(db->conf->db_driver, "sqlite3")) tune_sqlite(db);
    else PQsetNoticeProcessor(apr_dbd_native_handle(db->driver, handle), pg_notice, NULL);
    if (APR_SUCCESS != fs_store_migrate(&db->store, db->dbpool, &err)) {
        store_down(db, "schema", err);
        return 0;
    }
    if (APR_SUCCESS != fs_store_prepare_all(&db->store, db->dbpool, &err)) {
        store_down(db, "preparing statements", err);
        return 0;
    }
    nt_log(FS_LOG_NOTICE, "FS20104: database ready (%s)%s", db->conf->db_driver,
           db->db_down_logged ? " again" : "");
    db->db_down_logged = 0;
    set_up(db, 1);
    return 1;
}

/* When idle too, find out whether the database still answers: connect again when it
 * is down (at most every NT_DB_RETRY), else read the schema version every NT_DB_PROBE. */
static void probe_store(nt_db_t *db)
{
    apr_time_t now = apr_time_now();
    apr_pool_t *p = NULL;
    int version = 0;

    if (now < db->next_probe) return;
    db->next_probe = now + NT_DB_PROBE;
    if (!db->store.handle) {
        db->next_probe = now + NT_DB_RETRY;
        ensure_store(db);
        return;
    }
    if (APR_SUCCESS != apr_pool_create(&p, db->pool)) return;
    if (APR_SUCCESS != fs_store_schema_version(&db->store, p, &version)) {
        store_down(db, "probe", "the schema version cannot be read");
    }
    apr_pool_destroy(p);
}

/* A store call failed for another reason than "not found": the connection may be
 * broken (or, on pgsql, reset and without its prepared statements). Start anew. */
static void store_failed(nt_db_t *db, nt_job_t *job)
{
    job->unavailable = 1;
    store_down(db, "query failed", "see the previous line");
}

/* ---- BIND / UNBIND -------------------------------------------------------------- */

static void refuse(nt_job_t *job, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(nt_job_t *job, const char *reason, const char *fmt, ...)
{
    va_list ap;
    job->failed = 1;
    job->reason = reason;
    va_start(ap, fmt);
    job->detail = apr_pvsprintf(job->pool, fmt, ap);
    va_end(ap);
}

static int in_list(const apr_array_header_t *list, const char *s)
{
    int i;
    for (i = 0; list && i < list->nelts; ++i) {
        if (!strcmp(APR_ARRAY_IDX(list, i, const char *), s)) return 1;
    }
    return 0;
}

static int bindable_status(const fs_sub_t *sub, apr_time_t now)
{
    const char *st = fs_sub_effective_status(sub, now);
    /* `error` is ours to set when delivery failed; binding again is the way out */
    return !strcmp(st, "active") || !strcmp(st, "error");
}

static const char *token_detail(fs_token_error_t e)
{
    switch (e) {
    case FS_TOKEN_MALFORMED: return "the token is not a compact JWS";
    case FS_TOKEN_BAD_ALG: return "the token's algorithm is not the configured one";
    case FS_TOKEN_BAD_SIGNATURE: return "the token's signature does not verify";
    case FS_TOKEN_EXPIRED: return "the token has expired; get a new one with "
                                  "$get-ws-binding-token";
    case FS_TOKEN_NOT_YET_VALID: return "the token is not valid yet";
    default: return "the token's claims are not ours";
    }
}

/* Check one subscription of a grant; refuse the job and return NULL when it fails. */
static fs_sub_t *bind_sub(nt_db_t *db, nt_job_t *job, const fs_grant_t *grant,
                          const char *id, apr_time_t now)
{
    fs_sub_t *sub = NULL;
    apr_status_t rv;

    if (!in_list(grant->sub_ids, id)) {
        /* deleting a subscription unlinks it from its grants */
        refuse(job, "subscription-not-found", "Subscription/%s no longer exists", id);
        return NULL;
    }
    rv = fs_store_sub_get(&db->store, job->pool, id, &sub);
    if (rv == APR_NOTFOUND) {
        refuse(job, "subscription-not-found", "Subscription/%s no longer exists", id);
        return NULL;
    }
    if (rv != APR_SUCCESS) {
        store_failed(db, job);
        return NULL;
    }
    if (strcmp(sub->owner, job->user)) {
        /* same answer as a missing one: existence is not leaked */
        nt_log(FS_LOG_WARNING, "FS20105: grant %s of %s names Subscription/%s of another "
               "user: refused", grant->id, job->user, id);
        refuse(job, "subscription-not-found", "Subscription/%s no longer exists", id);
        return NULL;
    }
    if (strcmp(sub->channel_type, "websocket")) {
        refuse(job, "subscription-not-websocket", "Subscription/%s does not use the "
               "websocket channel", id);
        return NULL;
    }
    if (!bindable_status(sub, now)) {
        refuse(job, "subscription-not-active", "Subscription/%s is %s", id,
               fs_sub_effective_status(sub, now));
        return NULL;
    }
    return sub;
}

static void run_bind(nt_db_t *db, nt_job_t *job)
{
    apr_pool_t *p = job->pool;
    apr_time_t now = apr_time_now();
    fs_token_claims_t *claims = NULL;
    fs_token_error_t terr = FS_TOKEN_OK;
    fs_grant_t *grant = NULL;
    apr_array_header_t *ids;
    apr_status_t rv;
    int i;

    rv = fs_token_verify(&claims, &terr, p, db->conf->key, job->token, now);
    if (rv != APR_SUCCESS && job->kind == NT_JOB_UNBIND && terr == FS_TOKEN_EXPIRED) {
        /* unbinding an expired token is fine: only its signature matters */
        rv = fs_token_verify(&claims, &terr, p, db->conf->key, job->token, 0);
    }
    if (rv != APR_SUCCESS) {
        refuse(job, fs_token_error_reason(terr), "%s", token_detail(terr));
        return;
    }
    job->grant_id = claims->jti;
    job->user = claims->user;
    if (job->kind == NT_JOB_UNBIND) return;

    if (!ensure_store(db)) {
        job->unavailable = 1;
        refuse(job, "server-unavailable", "the subscription database is unavailable; "
               "retry later");
        return;
    }
    rv = fs_store_grant_get(&db->store, p, claims->jti, &grant);
    if (rv == APR_NOTFOUND) {
        refuse(job, "unknown-grant", "the token's grant is not known here");
        return;
    }
    if (rv != APR_SUCCESS) {
        store_failed(db, job);
        refuse(job, "server-unavailable", "the subscription database is unavailable; "
               "retry later");
        return;
    }
    if (grant->revoked) {
        refuse(job, "grant-revoked", "the token was revoked");
        return;
    }
    if (grant->expires <= now) {
        refuse(job, "expired-token", "the token has expired; get a new one with "
               "$get-ws-binding-token");
        return;
    }
    if (strcmp(grant->owner, claims->user)) {
        refuse(job, "invalid-claims", "the token's claims are not ours");
        return;
    }
    if (claims->subscription_ids->nelts > db->conf->max_bindings) {
        refuse(job, "too-many-bindings", "one connection carries at most %d subscriptions",
               db->conf->max_bindings);
        return;
    }

    job->expires = claims->expires < grant->expires ? claims->expires : grant->expires;
    job->subs = apr_array_make(p, claims->subscription_ids->nelts, sizeof(nt_sub_state_t));
    ids = apr_array_make(p, claims->subscription_ids->nelts, sizeof(const char *));
    for (i = 0; i < claims->subscription_ids->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(claims->subscription_ids, i, const char *);
        nt_sub_state_t *st;
        fs_sub_t *sub;
        if (in_list(ids, id)) continue;
        if (!(sub = bind_sub(db, job, grant, id, now))) {
            if (job->unavailable) {
                refuse(job, "server-unavailable", "the subscription database is "
                       "unavailable; retry later");
            }
            return;
        }
        sub->resource_json = NULL;   /* not needed for notifications */
        st = apr_array_push(job->subs);
        memset(st, 0, sizeof(*st));
        st->sub_id = sub->id;
        st->sub = sub;
        APR_ARRAY_PUSH(ids, const char *) = id;
    }
    /* bound again: a subscription in error (its last client was too slow) recovers */
    for (i = 0; i < job->subs->nelts; ++i) {
        nt_sub_state_t *st = &APR_ARRAY_IDX(job->subs, i, nt_sub_state_t);
        if (!strcmp(st->sub->status, "error")
            && APR_SUCCESS == fs_store_sub_clear_error(&db->store, p, st->sub_id)) {
            st->sub->status = "active";
            st->sub->error = "";
        }
        st->handshake = fs_json_str(p, fs_notify_handshake(p, st->sub, now));
    }
    if (APR_SUCCESS != fs_store_sub_mark_bound(&db->store, p, ids, now)) {
        /* not fatal: only the unbound-expiry sweep reads it */
        store_failed(db, job);
        job->unavailable = 0;
    }
}

/* ---- SCAN ---------------------------------------------------------------------------- */

/* Events read per scan: EventBatch rounded up to whole Bundles of max_count, so that a
 * long backlog is not cut into short Bundles at the end of each batch. */
static int scan_limit(int batch, apr_int64_t max_count)
{
    apr_int64_t m = max_count > 1 ? max_count : 1;
    return (int)(((batch + m - 1) / m) * m);
}

static apr_status_t msg_cleanup(void *m)
{
    nt_msg_unref(m);
    return APR_SUCCESS;
}

/* The Bundle as the message the service thread queues as it is, held by the job's pool
 * (no copy there); NULL when out of memory. */
static nt_msg_t *bundle_msg(apr_pool_t *p, const nt_scan_result_t *r,
                            const nt_event_text_t *t, const char *text, apr_size_t size)
{
    nt_msg_t *m = nt_msg_new_event(text, size, r->sub_id);
    if (!m) return NULL;
    m->event_number = t->number;
    m->nevents = t->nevents;
    m->recorded = t->recorded;
    apr_pool_cleanup_register(p, m, msg_cleanup, apr_pool_cleanup_null);
    return m;
}

/* The events as Bundles of at most max_count, never spanning a binding's cursor. */
static void build_bundles(apr_pool_t *p, fs_notify_writer_t *writer, nt_scan_result_t *r,
                          const nt_scan_item_t *item, const apr_array_header_t *events,
                          apr_time_t now)
{
    const fs_notify_event_t *evs = (const fs_notify_event_t *)events->elts;
    apr_int64_t *numbers = apr_palloc(p, sizeof(*numbers) * (apr_size_t)events->nelts);
    const apr_array_header_t *cuts = item->cuts;
    const char *text;
    apr_size_t size;
    int i, len;

    for (i = 0; i < events->nelts; ++i) numbers[i] = evs[i].number;
    for (i = 0; i < events->nelts; i += len) {
        nt_event_text_t *t = apr_array_push(r->events);

        len = nt_batch_len(numbers + i, events->nelts - i, r->sub->max_count,
                           cuts ? (const apr_int64_t *)cuts->elts : NULL,
                           cuts ? cuts->nelts : 0);
        t->first = evs[i].number;
        t->number = evs[i + len - 1].number;
        t->nevents = len;
        t->recorded = evs[i].timestamp;
        /* written as text, the change's part once per job (fs_notify_text) */
        size = fs_notify_text(writer, r->sub, FS_NOTIFY_EVENT, evs + i, len, now, &text);
        if (!(t->msg = bundle_msg(p, r, t, text, size))) {
            --r->events->nelts;   /* out of memory: the rest waits for the next scan */
            r->more = 1;
            return;
        }
    }
}

/* The rows of the subscriptions that have events (id -> fs_sub_t*). */
static apr_status_t rows_with_events(nt_db_t *db, apr_pool_t *p, const fs_scan_read_t *reads,
                                     int n, apr_hash_t **psubs)
{
    apr_array_header_t *ids = apr_array_make(p, n, sizeof(const char *));
    int i;
    for (i = 0; i < n; ++i) {
        if (reads[i].events->nelts) APR_ARRAY_PUSH(ids, const char *) = reads[i].sub_id;
    }
    return fs_scan_subs(&db->store, p, ids, psubs);
}

/* Every subscription of the job read with two statements (fs_scan), not two each. */
static void run_scan(nt_db_t *db, nt_job_t *job)
{
    apr_pool_t *p = job->pool;
    apr_time_t now = apr_time_now();
    int i, n = job->items->nelts;
    fs_scan_read_t *reads = apr_pcalloc(p, sizeof(*reads) * (apr_size_t)(n > 0 ? n : 1));
    apr_hash_t *subs = NULL;
    apr_pool_t *scratch = NULL;
    fs_notify_writer_t *writer;

    job->scans = apr_array_make(p, n, sizeof(nt_scan_result_t));
    if (!ensure_store(db)) {
        job->unavailable = 1;
        return;
    }
    for (i = 0; i < n; ++i) {
        const nt_scan_item_t *item = &APR_ARRAY_IDX(job->items, i, nt_scan_item_t);
        reads[i].sub_id = item->sub_id;
        reads[i].after = item->after;
        reads[i].limit = scan_limit(db->conf->event_batch, item->max_count) + 1;
    }
    if (APR_SUCCESS != fs_scan_events_after(&db->store, p, reads, n)
        || APR_SUCCESS != rows_with_events(db, p, reads, n, &subs)) {
        store_failed(db, job);
        return;
    }
    apr_pool_create(&scratch, p);
    writer = fs_notify_writer_make(scratch);   /* its cache: this job's changes */
    for (i = 0; i < n; ++i) {
        const nt_scan_item_t *item = &APR_ARRAY_IDX(job->items, i, nt_scan_item_t);
        apr_array_header_t *events = reads[i].events;
        int limit = reads[i].limit - 1;
        nt_scan_result_t *r = apr_array_push(job->scans);

        memset(r, 0, sizeof(*r));
        r->sub_id = item->sub_id;
        r->after = item->after;
        r->events = apr_array_make(p, events->nelts, sizeof(nt_event_text_t));
        if (events->nelts == 0) continue;
        if (events->nelts > limit) {
            r->more = 1;
            events->nelts = limit;
        }
        if (!(r->sub = apr_hash_get(subs, item->sub_id, APR_HASH_KEY_STRING))) {
            r->gone = 1;
            continue;
        }
        r->sub->resource_json = NULL;
        build_bundles(p, writer, r, item, events, now);
    }
    apr_pool_destroy(scratch);
}

/* ---- REFRESH, DELIVERED, SUB_ERROR ------------------------------------------------ */

static void run_refresh(nt_db_t *db, nt_job_t *job)
{
    apr_pool_t *p = job->pool;
    apr_time_t now = apr_time_now();
    apr_array_header_t *fine;
    int i;

    job->subs = apr_array_make(p, job->items->nelts, sizeof(nt_sub_state_t));
    job->grants = apr_array_make(p, 4, sizeof(nt_grant_state_t));
    fine = apr_array_make(p, job->items->nelts, sizeof(const char *));
    if (!ensure_store(db)) {
        job->unavailable = 1;
        return;
    }
    for (i = 0; i < job->items->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(job->items, i, const char *);
        nt_sub_state_t *st = apr_array_push(job->subs);
        apr_status_t rv;

        memset(st, 0, sizeof(*st));
        st->sub_id = id;
        rv = fs_store_sub_get(&db->store, p, id, &st->sub);
        if (rv == APR_NOTFOUND) {
            st->reason = "subscription-deleted";
            continue;
        }
        if (rv != APR_SUCCESS) {
            store_failed(db, job);
            return;
        }
        st->sub->resource_json = NULL;
        if (strcmp(st->sub->channel_type, "websocket")) {
            st->reason = "subscription-not-websocket";
        }
        else if (!bindable_status(st->sub, now)) {
            st->reason = !strcmp(fs_sub_effective_status(st->sub, now), "off")
                         ? "subscription-off" : "subscription-not-active";
        }
        else {
            APR_ARRAY_PUSH(fine, const char *) = id;
        }
    }
    for (i = 0; i < job->grant_ids->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(job->grant_ids, i, const char *);
        fs_grant_t *grant = NULL;
        apr_status_t rv = fs_store_grant_get(&db->store, p, id, &grant);
        const char *reason = NULL;

        if (rv == APR_NOTFOUND) reason = "unknown-grant";
        else if (rv != APR_SUCCESS) {
            store_failed(db, job);
            return;
        }
        else if (grant->revoked) reason = "grant-revoked";
        if (reason) {
            nt_grant_state_t *g = apr_array_push(job->grants);
            g->grant_id = id;
            g->reason = reason;
        }
    }
    if (APR_SUCCESS != fs_store_sub_mark_bound(&db->store, p, fine, now)) {
        store_failed(db, job);
    }
}

/* Deliveries per transaction (one statement): SQLite writers (httpd's recorders) wait
 * for the lock no longer than one short batch; one commit per delivery took a quarter
 * of the notifier's time fanning out to 10,000 subscriptions. */
#define NT_DELIVERED_BATCH 2048

static void run_delivered(nt_db_t *db, nt_job_t *job)
{
    const fs_delivery_t *d = (const fs_delivery_t *)job->items->elts;
    int i, n;

    if (!ensure_store(db)) return;   /* best effort: the next delivery says it again */
    for (i = 0; i < job->items->nelts; i += n) {
        n = job->items->nelts - i < NT_DELIVERED_BATCH ? job->items->nelts - i
                                                        : NT_DELIVERED_BATCH;
        if (APR_SUCCESS != fs_store_sub_mark_delivered(&db->store, job->pool, d + i, n)) {
            store_failed(db, job);
            return;
        }
    }
}

static void run_sub_error(nt_db_t *db, nt_job_t *job)
{
    if (!ensure_store(db)) return;
    if (APR_SUCCESS != fs_store_sub_mark_error(&db->store, job->pool, job->sub_id,
                                               job->text)) {
        store_failed(db, job);
    }
}

/* ---- unbound subscriptions --------------------------------------------------------- */

static void sweep_unbound(nt_db_t *db)
{
    const nt_config_t *c = db->conf;
    apr_time_t now = apr_time_now(), before = now - c->expire_unbound;
    apr_array_header_t *subs = NULL;
    apr_pool_t *p = NULL;
    int i, deleted = 0;

    if (!c->expire_unbound || now < db->next_sweep) return;
    /* a quarter of the allowance, but at least once a minute with short allowances */
    db->next_sweep = now + (c->expire_unbound / 4 < apr_time_from_sec(60)
                            ? c->expire_unbound / 4 : apr_time_from_sec(60));
    if (!ensure_store(db)) return;
    apr_pool_create(&p, db->pool);
    if (APR_SUCCESS != fs_store_sub_list_unbound(&db->store, p, before,
                                                 c->expire_unbound_shape, NT_SWEEP_BATCH,
                                                 &subs)) {
        store_down(db, "listing unbound subscriptions", "see the previous line");
        goto leave;
    }
    for (i = 0; i < subs->nelts; ++i) {
        const fs_sub_t *s = APR_ARRAY_IDX(subs, i, const fs_sub_t *);
        if (APR_SUCCESS != fs_store_sub_delete_unbound(&db->store, p, s->id, before,
                                                       &deleted)) {
            store_down(db, "deleting an unbound subscription", "see the previous line");
            goto leave;
        }
        if (deleted) {
            nt_log(FS_LOG_NOTICE, "FS20106: Subscription/%s of %s deleted: no websocket "
                   "bound it for %.0f s (ExpireUnbound)", s->id, s->owner,
                   (double)c->expire_unbound / APR_USEC_PER_SEC);
        }
    }
    if (subs->nelts == NT_SWEEP_BATCH) db->next_sweep = now; /* more are waiting */
leave:
    apr_pool_destroy(p);
}

/* ---- retention -------------------------------------------------------------------- */

/* A PRUNE job starts a pass unless one is under way (its listing is older, but cursors
 * only grow and the binds since are noted: it stays on the safe side). */
static void start_prune(nt_db_t *db, nt_job_t *job)
{
    if (!db->prune) {
        nt_floors_forget(&db->floors, db->pool, job->seen_seq);
        db->prune = nt_prune_start(db->pool, db->conf, job, &db->floors);
    }
    nt_job_free(job);
}

/* Binds about to be answered: their cursors are protected until the service thread
 * lists them itself (the result gets the next sequence number). */
static void note_bind(nt_db_t *db, const nt_job_t *job)
{
    if (job->kind == NT_JOB_BIND && !job->failed && nt_config_prunes(db->conf)) {
        nt_floors_note(&db->floors, db->pool, job, db->seq + 1);
    }
}

/* One bounded step of the pass, between jobs. */
static void prune_step(nt_db_t *db)
{
    int rc;

    if (!db->prune || !ensure_store(db)) return;
    if ((rc = nt_prune_step(db->prune, &db->store)) > 0) return;
    nt_prune_end(db->prune, rc == 0 ? 1 : 0);
    db->prune = NULL;
    if (rc < 0) store_down(db, "pruning events", "see the previous line");
}

/* ---- wake-ups -------------------------------------------------------------------- */

/* Add the ids of payload to the WAKE job; an empty or odd payload means "all". */
static void wake_payload(nt_job_t *wake, const char *payload, apr_size_t len)
{
    char *copy, *tok, *state = NULL;
    int n = 0;

    if (!wake->items) return;   /* already "all" */
    if (len == 0 || len > FS_NOTIFY_PAYLOAD_MAX) goto all;
    copy = apr_pstrmemdup(wake->pool, payload, len);
    for (tok = apr_strtok(copy, " ,\t\r\n", &state); tok;
         tok = apr_strtok(NULL, " ,\t\r\n", &state)) {
        if (!fs_fhir_id_valid(tok) || wake->items->nelts >= NT_WAKE_MAX_IDS) goto all;
        APR_ARRAY_PUSH(wake->items, const char *) = tok;
        ++n;
    }
    if (n > 0) return;
all:
    wake->items = NULL;
}

static void read_udp(nt_db_t *db, nt_job_t *wake, int *pwoken)
{
    char buf[FS_NOTIFY_PAYLOAD_MAX + 100];
    ssize_t n;
    while ((n = recv(db->wake_fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
        wake_payload(wake, buf, (apr_size_t)n);
        *pwoken = 1;
    }
}

/* libpq's messages span lines ("...\n\tThis probably means..."): one log line each. */
static void one_line(char *out, size_t size, const char *text)
{
    size_t n = 0;
    int space = 0;
    for (; text && *text && n + 1 < size; ++text) {
        if (apr_isspace(*text)) {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < size) out[n++] = ' ';
        space = 0;
        out[n++] = *text;
    }
    out[n] = '\0';
}

static void pg_drop(nt_db_t *db, const char *why)
{
    char reason[512];

    if (!db->pg_down_logged) {
        one_line(reason, sizeof(reason), why);
        nt_log(FS_LOG_WARNING, "FS20107: LISTEN connection to PostgreSQL lost or refused "
               "(%s); polling every %.1f s until it is back", reason,
               (double)db->conf->poll_interval / APR_USEC_PER_SEC);
        db->pg_down_logged = 1;
    }
    if (db->pg) PQfinish(db->pg);
    db->pg = NULL;
    db->next_pg = apr_time_now() + NT_DB_RETRY;
}

/* (Re)connect and LISTEN; after a reconnect notifications may have been missed, so
 * the caller is told to rescan everything. */
static void pg_connect(nt_db_t *db, nt_job_t *wake, int *pwoken)
{
    PGresult *res;

    if (db->pg || strcmp(db->conf->db_driver, "pgsql") || apr_time_now() < db->next_pg) return;
    db->pg = PQconnectdb(db->conf->db_params);
    if (PQstatus(db->pg) != CONNECTION_OK) {
        pg_drop(db, PQerrorMessage(db->pg));
        return;
    }
    res = PQexec(db->pg, "LISTEN " FS_NOTIFY_CHANNEL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        PQclear(res);
        pg_drop(db, PQerrorMessage(db->pg));
        return;
    }
    PQclear(res);
    PQsetnonblocking(db->pg, 1);
    PQsetNoticeProcessor(db->pg, pg_notice, NULL);
    nt_log(FS_LOG_INFO, "FS20108: listening for " FS_NOTIFY_CHANNEL " notifications%s",
           db->pg_down_logged ? " again" : "");
    if (db->pg_down_logged) {
        wake->items = NULL;
        *pwoken = 1;
    }
    db->pg_down_logged = 0;
}

static void read_pg(nt_db_t *db, nt_job_t *wake, int *pwoken)
{
    PGnotify *n;
    if (!PQconsumeInput(db->pg)) {
        pg_drop(db, PQerrorMessage(db->pg));
        wake->items = NULL;
        *pwoken = 1;
        return;
    }
    while ((n = PQnotifies(db->pg))) {
        wake_payload(wake, n->extra ? n->extra : "", n->extra ? strlen(n->extra) : 0);
        *pwoken = 1;
        PQfreemem(n);
    }
}

/* ---- the worker ---------------------------------------------------------------- */

static void run_job(nt_db_t *db, nt_job_t *job)
{
    switch (job->kind) {
    case NT_JOB_BIND:
    case NT_JOB_UNBIND: run_bind(db, job); break;
    case NT_JOB_SCAN: run_scan(db, job); break;
    case NT_JOB_REFRESH: run_refresh(db, job); break;
    case NT_JOB_DELIVERED: run_delivered(db, job); break;
    case NT_JOB_SUB_ERROR: run_sub_error(db, job); break;
    default: break;
    }
}

static void *worker_main(void *arg)
{
    nt_db_t *db = arg;
    nt_job_t *jobs, *job, *wake = NULL;
    int woken, stopping;

    ensure_store(db);
    for (;;) {
        struct pollfd fds[3];
        nfds_t nfds = 0;
        int pg_index = -1, udp_index = -1;
        apr_uint64_t count;

        if (!wake && (wake = nt_job_new(NT_JOB_WAKE))) {
            wake->items = apr_array_make(wake->pool, 4, sizeof(const char *));
        }
        woken = 0;
        if (wake) pg_connect(db, wake, &woken);
        fds[nfds].fd = db->efd;
        fds[nfds++].events = POLLIN;
        if (db->wake_fd >= 0) {
            udp_index = (int)nfds;
            fds[nfds].fd = db->wake_fd;
            fds[nfds++].events = POLLIN;
        }
        if (db->pg) {
            pg_index = (int)nfds;
            fds[nfds].fd = PQsocket(db->pg);
            fds[nfds++].events = POLLIN;
        }
        /* a retention pass under way continues at once, one step per round */
        if (!woken && poll(fds, nfds, db->prune && db->store.handle ? 0 : NT_DB_TICK_MS) > 0) {
            if (fds[0].revents) {
                if (read(db->efd, &count, sizeof(count)) < 0) { /* nothing: non-blocking */ }
            }
            if (wake && udp_index >= 0 && fds[udp_index].revents) read_udp(db, wake, &woken);
            if (wake && pg_index >= 0 && db->pg && fds[pg_index].revents) {
                read_pg(db, wake, &woken);
            }
        }
        if (woken && wake) {
            post_result(db, wake);
            wake = NULL;
        }

        pthread_mutex_lock(&db->lock);
        jobs = db->jobs;
        db->jobs = db->jobs_tail = NULL;
        db->njobs = 0;
        db->last_round = apr_time_now();
        stopping = db->stopping;
        pthread_mutex_unlock(&db->lock);
        if (stopping) {
            /* bookkeeping still reaches the database; answers would reach nobody */
            while ((job = jobs)) {
                jobs = job->next;
                if (job->kind == NT_JOB_DELIVERED || job->kind == NT_JOB_SUB_ERROR) {
                    run_job(db, job);
                }
                nt_job_free(job);
            }
            break;
        }
        while ((job = jobs)) {
            jobs = job->next;
            run_job(db, job);
            if (job->kind == NT_JOB_DELIVERED || job->kind == NT_JOB_SUB_ERROR) {
                nt_job_free(job);
            }
            else if (job->kind == NT_JOB_PRUNE) {
                start_prune(db, job);
            }
            else {
                note_bind(db, job);
                post_result(db, job);
            }
        }
        sweep_unbound(db);
        prune_step(db);
        probe_store(db);
    }
    nt_prune_end(db->prune, -1);
    db->prune = NULL;
    nt_job_free(wake);
    close_store(db);
    if (db->pg) PQfinish(db->pg);
    db->pg = NULL;
    return NULL;
}

/* ---- start and stop --------------------------------------------------------------- */

static apr_status_t open_wake_socket(nt_db_t *db, apr_pool_t *p, const char **perr)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    int fd = -1, err;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
    apr_snprintf(port, sizeof(port), "%d", db->conf->wake_port);
    if ((err = getaddrinfo(db->conf->wake_host, port, &hints, &res))) {
        *perr = apr_psprintf(p, "WakeListen %s:%s: %s", db->conf->wake_host, port,
                             gai_strerror(err));
        return APR_EINVAL;
    }
    fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen)) {
        *perr = apr_psprintf(p, "WakeListen %s:%s: %s", db->conf->wake_host, port,
                             strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return APR_EINVAL;
    }
    freeaddrinfo(res);
    db->wake_fd = fd;
    return APR_SUCCESS;
}

apr_status_t nt_db_start(nt_db_t **pdb, apr_pool_t *p, const nt_config_t *conf,
                         nt_db_wake_fn *wake, void *baton, const char **perr)
{
    nt_db_t *db = apr_pcalloc(p, sizeof(*db));
    apr_status_t rv;

    *pdb = NULL;
    *perr = NULL;
    db->conf = conf;
    db->wake = wake;
    db->wake_baton = baton;
    db->wake_fd = -1;
    db->efd = -1;
    db->last_round = apr_time_now();
    pthread_mutex_init(&db->lock, NULL);
    if (APR_SUCCESS != (rv = apr_dbd_init(p))
        || APR_SUCCESS != (rv = apr_dbd_get_driver(p, conf->db_driver, &db->driver))) {
        *perr = apr_psprintf(p, "apr_dbd driver %s cannot be loaded%s", conf->db_driver,
                             rv == APR_EDSOOPEN ? ": install libaprutil1-dbd-sqlite3 or "
                             "libaprutil1-dbd-pgsql" : "");
        goto fail;
    }
    if ((db->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        *perr = apr_psprintf(p, "eventfd: %s", strerror(errno));
        rv = APR_FROM_OS_ERROR(errno);
        goto fail;
    }
    if (conf->wake_host && APR_SUCCESS != (rv = open_wake_socket(db, p, perr))) goto fail;
    if (APR_SUCCESS != (rv = apr_pool_create(&db->pool, p))) goto fail;
    if (pthread_create(&db->thread, NULL, worker_main, db)) {
        *perr = "cannot start the database worker thread";
        rv = APR_EGENERAL;
        goto fail;
    }
    db->thread_started = 1;
    *pdb = db;
    return APR_SUCCESS;
fail:
    if (db->efd >= 0) close(db->efd);
    if (db->wake_fd >= 0) close(db->wake_fd);
    pthread_mutex_destroy(&db->lock);
    return rv ? rv : APR_EGENERAL;
}

void nt_db_stop(nt_db_t *db)
{
    if (!db) return;
    pthread_mutex_lock(&db->lock);
    db->stopping = 1;
    pthread_mutex_unlock(&db->lock);
    poke(db);
    if (db->thread_started) pthread_join(db->thread, NULL);
    db->thread_started = 0;
    pthread_mutex_lock(&db->lock);
    db->stopped = 1;
    free_list(db->jobs);
    free_list(db->results);
    db->jobs = db->jobs_tail = db->results = db->results_tail = NULL;
    pthread_mutex_unlock(&db->lock);
    if (db->efd >= 0) close(db->efd);
    if (db->wake_fd >= 0) close(db->wake_fd);
    db->efd = db->wake_fd = -1;
    apr_pool_destroy(db->pool);
    db->pool = NULL;
}
