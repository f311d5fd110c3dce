/* nt_conn: one websocket connection and its bindings (service thread only).
 *
 * A connection carries any number of bindings (up to MaxBindingsPerConnection),
 * one per subscription; a binding remembers the grant that allowed it, when it
 * expires and its cursor: the highest event number this connection was sent (or
 * told about by the handshake). Each binding has two timers (nt_timer): its heartbeat
 * (at the subscription's period, skipped while other notifications flow) and its
 * expiry. A connection holding no binding for BindTimeout is closed.
 *
 * Outbound messages wait in a bounded queue (nt_queue) and leave one lws_write per
 * SERVER_WRITEABLE. When the queue is full, event notifications wait in the database
 * (the binding's cursor stays behind and a later scan reads them again), heartbeats
 * and pongs are dropped; a client whose queue stays full for SlowClientTimeout is
 * cut off. Reading pauses
 * (lws_rx_flow_control) while the queue is over half full or the connection has
 * several database jobs in flight, so a flooding client slows down itself only.
 * Inbound messages are reassembled from fragments up to MaxMessageSize. */
#ifndef NT_CONN_H
#define NT_CONN_H

#include <apr_time.h>
#include <libwebsockets.h>

#include "nt_queue.h"
#include "nt_timer.h"

typedef struct nt_server_t nt_server_t;
typedef struct nt_watch_t nt_watch_t;
typedef struct nt_conn_t nt_conn_t;

typedef struct nt_binding_t {
    nt_conn_t *conn;
    nt_watch_t *watch;                 /* the subscription */
    struct nt_binding_t *conn_next;    /* next binding of the connection */
    struct nt_binding_t *watch_next;   /* next binding of the subscription */
    char *grant_id;                    /* the grant (token jti) that allows it */
    apr_time_t expires;                /* when that grant ends */
    apr_int64_t cursor;                /* highest event number sent or reported */
    apr_time_t last_sent;              /* last notification sent (heartbeat suppression) */
    int blocked;                       /* an event found the queue full: wait for room */
    int held;                          /* nt_watch delivery only: skips the rest of a scan */
    nt_timer_t heartbeat;
    nt_timer_t expiry;
} nt_binding_t;

/* lws per-session data (zeroed by lws) */
struct nt_conn_t {
    nt_server_t *srv;
    struct lws *wsi;
    apr_uint64_t id;                   /* for logs and for jobs that outlive it */
    char peer[96];                     /* address (and X-Forwarded-For) for logs */
    int json;                          /* spoke the JSON dialect (Medplum) */
    nt_binding_t *bindings;
    int nbindings;
    int pending;                       /* database jobs in flight */
    nt_queue_t queue;
    unsigned char *rx;                 /* message being reassembled */
    size_t rx_len, rx_cap;
    int rx_paused;
    int stalled;                       /* a message found the queue full (SlowClientTimeout runs) */
    int closing;                       /* close requested: close_code/close_reason */
    int close_code;
    char close_reason[124];
    nt_timer_t bind_timer;
    nt_timer_t stall_timer;
    nt_timer_t close_timer;
};

/* What a full queue means for a message. */
typedef enum {
    NT_SEND_MUST,      /* handshakes, OperationOutcomes: the client is cut off */
    NT_SEND_OPTIONAL,  /* heartbeats, pongs: dropped */
    NT_SEND_EVENT      /* event notifications: refused; the binding waits for room, its
                          backlog stays in the database and is read again later */
} nt_send_t;

/* ESTABLISHED / CLOSED */
/* Stop the connections' and bindings' timers (before the context goes). */
void nt_conn_timers_stop(nt_server_t *srv);

void nt_conn_open(nt_server_t *srv, nt_conn_t *c, struct lws *wsi);
void nt_conn_closed(nt_conn_t *c);

/* RECEIVE: a chunk; final when it ends a message. -1 = close (reason set). */
int nt_conn_rx(nt_conn_t *c, const void *in, size_t len, int final, int binary);

/* SERVER_WRITEABLE: send one message, or the close. -1 = close now. */
int nt_conn_writable(nt_conn_t *c);

/* Queue a message (a new reference is taken): 0, or -1 when it was not queued
 * (closing connection, or a full queue: see nt_send_t). A queue that stays full for
 * SlowClientTimeout cuts the client off. */
int nt_conn_send(nt_conn_t *c, nt_msg_t *m, nt_send_t how);
/* The same for a new message of text[0..len) and that kind. */
int nt_conn_send_text(nt_conn_t *c, nt_msg_kind_t kind, const char *text, size_t len,
                      nt_send_t how);

/* Close with a status code and a short reason (RFC 6455 close frame) once the
 * messages already queued went out (at most a few seconds); nothing new is queued. */
void nt_conn_close(nt_conn_t *c, int code, const char *reason);

/* Re-evaluate rx flow control (queue level, jobs in flight). */
void nt_conn_update_flow(nt_conn_t *c);

/* "connection 12 (127.0.0.1)" for log lines */
#define NT_CONN_FMT "connection %" APR_UINT64_T_FMT " (%s)"
#define NT_CONN_ARGS(c) (c)->id, (c)->peer

/* ---- bindings ---- */
nt_binding_t *nt_conn_find_binding(nt_conn_t *c, const char *sub_id);
/* A new binding of c to w at cursor; NULL when out of memory. */
nt_binding_t *nt_binding_add(nt_conn_t *c, nt_watch_t *w, const char *grant_id,
                             apr_time_t expires, apr_int64_t cursor);
/* A new token for an existing binding: the later expiry wins. */
void nt_binding_renew(nt_binding_t *b, const char *grant_id, apr_time_t expires);
/* Detach and free; a connection left without bindings starts its BindTimeout. */
void nt_binding_remove(nt_binding_t *b);

/* The subscription's heartbeat period changed: heartbeats follow the new one from now
 * (starting them when it was 0). */
void nt_binding_heartbeat_restart(nt_binding_t *b);

#endif
