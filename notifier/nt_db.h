/* nt_db: the database worker thread. Every piece of work that may block -- SQL on
 * the shared database (the apr_dbd sqlite3 driver sleeps 100 ms per busy retry),
 * token verification, building notification Bundles, waiting for wake-ups -- runs
 * here, never in the libwebsockets service thread.
 *
 * The service thread submits jobs (nt_db_submit: a mutex-protected list plus an
 * eventfd that wakes the worker's poll); the worker runs them in order, fills in
 * their results and hands them back (nt_db_results), waking the service loop
 * through the `wake` callback (lws_cancel_service). Wake-ups may merge: the
 * service thread drains every result each time.
 *
 * The worker also listens for "new events" signals and reports them as
 * NT_JOB_WAKE results: a UDP datagram on WakeListen (SQLite: sent by httpd after
 * its commit) and, on PostgreSQL, LISTEN fhirsub_event on a dedicated libpq
 * connection (re-LISTENed and reported as "everything" after a reconnect). It
 * deletes websocket subscriptions left unbound for ExpireUnbound, runs the
 * retention passes (nt_prune) one short step at a time between jobs, and probes the
 * database when idle (every few seconds) so that the health check tells the truth.
 *
 * Each job owns an APR pool (a child of the global pool, whose allocator is
 * mutex-protected) that holds the request and the result; whoever ends the job
 * destroys it. Only one thread uses a job at a time. */
#ifndef NT_DB_H
#define NT_DB_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "fs_store.h"
#include "fs_sub.h"
#include "nt_config.h"
#include "nt_msg.h"

typedef enum {
    NT_JOB_BIND,       /* verify a token, its grant and subscriptions; build handshakes */
    NT_JOB_UNBIND,     /* verify a token's signature; name its grant */
    NT_JOB_SCAN,       /* read events above cursors; build event notifications */
    NT_JOB_REFRESH,    /* re-check bound subscriptions and grants; mark them bound */
    NT_JOB_DELIVERED,  /* record deliveries (last_delivery_ms, error -> active) */
    NT_JOB_SUB_ERROR,  /* record a delivery failure (active -> error) */
    NT_JOB_PRUNE,      /* a retention pass (no result): delete old events and changes */
    NT_JOB_WAKE        /* result only: new events may exist */
} nt_job_kind_t;

typedef struct nt_scan_item_t {
    const char *sub_id;           /* SCAN: the subscription to read; PRUNE: one bound here */
    apr_int64_t after;            /* SCAN: events above this number; PRUNE: the lowest
                                     cursor of its bindings (nothing above it may go) */
    apr_int64_t max_count;        /* SCAN: events per Bundle as last seen (read size) */
    apr_array_header_t *cuts;     /* SCAN: apr_int64_t cursors of its bindings (nt_batch) */
    struct nt_watch_t *watch;     /* SCAN, service thread only: the watch it was made for
                                     (in flight until the result is applied: not freed) */
} nt_scan_item_t;


typedef struct nt_sub_state_t {
    const char *sub_id;
    fs_sub_t *sub;                /* the row (without its resource JSON), NULL if refused */
    const char *reason;           /* why it cannot be bound, NULL = fine */
    const char *handshake;        /* BIND: the handshake Bundle text */
} nt_sub_state_t;

typedef struct nt_grant_state_t {
    const char *grant_id;
    const char *reason;           /* why its bindings end */
} nt_grant_state_t;

typedef struct nt_event_text_t {
    apr_int64_t first;            /* the lowest event number it carries ... */
    apr_int64_t number;           /* ... and the highest (its events-since-start) */
    int nevents;                  /* how many events it carries */
    apr_time_t recorded;          /* when its oldest event was recorded */
    nt_msg_t *msg;                /* the event-notification Bundle, ready to queue (built
                                     on the worker; the job's pool holds a reference) */
} nt_event_text_t;

typedef struct nt_scan_result_t {
    const char *sub_id;
    fs_sub_t *sub;                /* the row when events were found, else NULL */
    int gone;                     /* the subscription no longer exists */
    apr_int64_t after;            /* the scan read events above this number */
    apr_array_header_t *events;   /* nt_event_text_t, ascending numbers */
    int more;                     /* more events wait beyond this batch */
} nt_scan_result_t;

typedef struct nt_job_t {
    struct nt_job_t *next;
    apr_pool_t *pool;             /* owns the job, its request and its result */
    nt_job_kind_t kind;
    apr_uint64_t seq;             /* results: posted in this order (1, 2, ...) */
    /* ---- request ---- */
    apr_uint64_t conn_id;         /* BIND/UNBIND: the connection asking */
    int json;                     /* BIND/UNBIND: the frame was JSON */
    const char *token;            /* BIND/UNBIND */
    apr_array_header_t *items;    /* SCAN, PRUNE: nt_scan_item_t; REFRESH: const char* sub
                                     ids; DELIVERED: fs_delivery_t */
    apr_uint64_t seen_seq;        /* PRUNE: the last result the service thread applied
                                     before it listed the bindings in items */
    apr_array_header_t *grant_ids;/* REFRESH: const char* */
    const char *sub_id;           /* SUB_ERROR */
    const char *text;             /* SUB_ERROR */
    /* ---- result ---- */
    int failed;                   /* BIND/UNBIND refused */
    int unavailable;              /* the database could not be used */
    const char *reason;           /* BIND/UNBIND refusal: short code (close reason) */
    const char *detail;           /* BIND/UNBIND refusal: a sentence */
    const char *grant_id;         /* BIND/UNBIND: the token's jti */
    const char *user;             /* BIND: the token's user */
    apr_time_t expires;           /* BIND: min(token exp, grant expiry) */
    apr_array_header_t *subs;     /* BIND (all fine on success), REFRESH: nt_sub_state_t */
    apr_array_header_t *grants;   /* REFRESH: nt_grant_state_t, failing grants only */
    apr_array_header_t *scans;    /* SCAN: nt_scan_result_t */
    apr_array_header_t *wake_ids; /* WAKE: const char* ids; NULL = all subscriptions */
} nt_job_t;

typedef struct nt_db_t nt_db_t;

/* Called by the worker (from its thread) after it queued results. */
typedef void nt_db_wake_fn(void *baton);

/* Open the wake-up socket, start the worker thread and its first database
 * connection. Fails (with *perr) only on configuration problems: a missing
 * apr_dbd driver, a wake-up address that cannot be bound. */
apr_status_t nt_db_start(nt_db_t **pdb, apr_pool_t *p, const nt_config_t *conf,
                         nt_db_wake_fn *wake, void *baton, const char **perr);

/* A new job of kind with its own pool; NULL when out of memory. */
nt_job_t *nt_job_new(nt_job_kind_t kind);
void nt_job_free(nt_job_t *job);

/* Queue a job (ownership passes to the worker). After nt_db_stop the job is freed. */
void nt_db_submit(nt_db_t *db, nt_job_t *job);

/* Every finished job, oldest first, linked through next; the caller frees them. */
nt_job_t *nt_db_results(nt_db_t *db);

/* The worker's state as the health check and the metrics see it. */
typedef struct nt_db_health_t {
    int up;                       /* connected, on the schema, statements prepared */
    apr_uint64_t errors;          /* times the database was found unavailable */
    apr_time_t last_round;        /* when the worker last went round its loop */
    int queued;                   /* jobs submitted and not yet taken */
} nt_db_health_t;

/* A consistent copy of it (any thread). */
void nt_db_health(nt_db_t *db, nt_db_health_t *h);

/* Stop and join the worker; free what is still queued either way. */
void nt_db_stop(nt_db_t *db);

#endif
