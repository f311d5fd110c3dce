/* nt_session: the notifier's state in the libwebsockets service thread and what
 * happens on it: client frames (bind, unbind, ping), database results (binds
 * refused or accepted, revalidation, wake-ups), the periodic timers (polling,
 * revalidation, delivery bookkeeping, retention passes) and the shutdown.
 *
 * The bind rule (docs/NOTIFIER.md): a refused bind-with-token is never silently
 * ignored and never sent as a non-Bundle frame to a client that did not speak
 * JSON. A JSON-dialect client (Medplum) gets an OperationOutcome frame and keeps
 * its connection; a text-dialect client is closed with 1008 and the reason (e.g.
 * "expired-token") when the connection holds no other binding, else the refusal
 * is logged and its other bindings continue. A connection whose last binding
 * ends (expiry, revocation, deleted subscription) is closed with 1008 and the
 * reason, so that clients reconnect instead of going deaf. */
#ifndef NT_SESSION_H
#define NT_SESSION_H

#include <apr_hash.h>
#include <apr_pools.h>
#include <libwebsockets.h>

#include "nt_config.h"
#include "nt_conn.h"
#include "nt_db.h"
#include "nt_metrics.h"
#include "nt_watch.h"

/* Most database jobs a connection may have in flight before reading pauses. */
#define NT_MAX_PENDING_JOBS 4

struct nt_server_t {
    const nt_config_t *conf;
    apr_pool_t *pool;                  /* service thread: lives as long as the server */
    struct lws_context *ctx;
    nt_db_t *db;
    apr_hash_t *conns;                 /* &conn->id -> nt_conn_t* */
    apr_hash_t *watches;               /* sub id -> nt_watch_t* */
    apr_pool_t *delivered_pool;        /* holds `delivered`; cleared at each flush */
    apr_hash_t *delivered;             /* sub id -> apr_time_t* (not yet recorded) */
    apr_uint64_t next_conn_id;
    apr_uint64_t seen_seq;             /* the last database result applied */
    int nconns;
    int refresh_inflight;
    int scan_scheduled;
    int shutting_down;
    nt_metrics_t metrics;              /* counters (GET /metrics) */
    lws_sorted_usec_list_t poll_timer;
    lws_sorted_usec_list_t refresh_timer;
    lws_sorted_usec_list_t flush_timer;
    lws_sorted_usec_list_t scan_timer;
    lws_sorted_usec_list_t prune_timer;
    nt_timers_t timers;                /* connections' and bindings' timers (nt_conn.c) */
    lws_sorted_usec_list_t timers_sul; /* armed at their earliest due time */
    apr_int64_t timers_armed;          /* that time (lws_now_usecs), 0 when not armed */
};

void nt_session_init(nt_server_t *srv, apr_pool_t *p, const nt_config_t *conf);

/* Start the periodic timers (once the lws context exists). */
void nt_session_start(nt_server_t *srv);

/* A complete text message from a client. */
void nt_session_frame(nt_conn_t *c, const char *data, size_t len);

/* A ?token= on the websocket URL: a text-dialect bind. */
void nt_session_url_token(nt_conn_t *c, const char *token);

/* Collect the database worker's results (EVENT_WAIT_CANCELLED). */
void nt_session_results(nt_server_t *srv);

/* An event notification of sub_id went out. */
void nt_session_delivered(nt_server_t *srv, const char *sub_id);

/* A client of sub_id was cut off (too slow): the subscription turns `error`. */
void nt_session_sub_error(nt_server_t *srv, const char *sub_id, const char *text);

/* A binding ended on the server's side (expired, revoked, deleted...). */
void nt_session_binding_lost(nt_binding_t *b, const char *reason, const char *detail);

/* Close every connection with 1001 and refuse new ones. */
void nt_session_shutdown(nt_server_t *srv);

/* Cancel the timers (before the context goes). */
void nt_session_stop(nt_server_t *srv);

#endif
