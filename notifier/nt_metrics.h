/* nt_metrics: what the notifier counts, its Prometheus text exposition (GET /metrics) and
 * its health answer (GET /healthz).
 *
 * The counters belong to the service thread (they are bumped where the thing happens:
 * nt_conn, nt_session, nt_ws); gauges are computed when scraped from the connections and
 * watches, and the database worker's state comes from nt_db_health. docs/NOTIFIER.md,
 * "Health and metrics", lists every series. */
#ifndef NT_METRICS_H
#define NT_METRICS_H

#include <apr_pools.h>
#include <apr_time.h>

#include "nt_msg.h"

/* Upper bounds (seconds) of the delivery-lag histogram's buckets; +Inf is implied. */
#define NT_LAG_BUCKETS 13

typedef struct nt_metrics_t {
    apr_time_t started;
    apr_uint64_t connections_total;    /* websocket connections accepted */
    apr_uint64_t upgrades_refused;     /* upgrades refused (path, MaxConnections, shutdown) */
    apr_uint64_t binds_accepted;       /* bind requests that bound (renewals included) */
    apr_uint64_t binds_refused;        /* bind requests refused, whatever the reason */
    apr_uint64_t sent[NT_MSG_EVENT + 1]; /* messages written to clients, by nt_msg_kind_t */
    apr_uint64_t events_delivered;     /* events in the event notifications written */
    apr_uint64_t slow_clients;         /* connections cut off for a full send queue */
    apr_uint64_t wakeups;              /* wake-ups (UDP, NOTIFY) received */
    apr_uint64_t lag_bucket[NT_LAG_BUCKETS]; /* deliveries by lag, not cumulative */
    apr_uint64_t lag_count;
    double lag_sum;                    /* seconds */
} nt_metrics_t;

typedef struct nt_server_t nt_server_t;

void nt_metrics_init(nt_metrics_t *m);

/* Message msg was written to a client at `now`. */
void nt_metrics_sent(nt_metrics_t *m, const nt_msg_t *msg, apr_time_t now);

/* The Prometheus text exposition (format 0.0.4) of srv, allocated in p. */
const char *nt_metrics_render(nt_server_t *srv, apr_pool_t *p);

/* 200 with "ok" when the service loop runs (it answers), the database is ready and its
 * worker went round its loop within NT_WORKER_STALL; else 503 and the reason. */
unsigned int nt_metrics_health(nt_server_t *srv, apr_pool_t *p, const char **ptext);

/* A worker busier than this on one round counts as stalled. */
#define NT_WORKER_STALL apr_time_from_sec(30)

#endif
