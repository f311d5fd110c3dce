#include <string.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "nt_metrics.h"
#include "nt_session.h"

#ifndef FHIRSUB_VERSION
#define FHIRSUB_VERSION "unknown"
#endif

static const double LAG_BOUNDS[NT_LAG_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};
/* the same as le="" labels (apr's %g drops the leading zero) */
static const char *const LAG_LABELS[NT_LAG_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60"
};

static const char *const KIND_NAMES[NT_MSG_EVENT + 1] = {
    "other", "handshake", "heartbeat", "event-notification"
};

void nt_metrics_init(nt_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
    m->started = apr_time_now();
}

void nt_metrics_sent(nt_metrics_t *m, const nt_msg_t *msg, apr_time_t now)
{
    double lag;
    int i;

    ++m->sent[msg->kind];
    if (msg->kind != NT_MSG_EVENT) return;
    m->events_delivered += (apr_uint64_t)(msg->nevents > 0 ? msg->nevents : 1);
    if (!msg->recorded) return;
    /* httpd's clock recorded the event: another machine's may be a little ahead */
    lag = msg->recorded < now ? (double)(now - msg->recorded) / APR_USEC_PER_SEC : 0;
    for (i = 0; i < NT_LAG_BUCKETS && lag > LAG_BOUNDS[i]; ++i) { /* find the bucket */ }
    if (i < NT_LAG_BUCKETS) ++m->lag_bucket[i];
    ++m->lag_count;
    m->lag_sum += lag;
}

/* ---- gauges from the live structures ----------------------------------------------- */

typedef struct live_t {
    apr_uint64_t bindings, waiting, queued_messages, queued_bytes;
    apr_uint64_t subscriptions, pending;
} live_t;

static void count_live(nt_server_t *srv, live_t *l)
{
    apr_hash_index_t *hi;

    memset(l, 0, sizeof(*l));
    for (hi = apr_hash_first(NULL, srv->conns); hi; hi = apr_hash_next(hi)) {
        const nt_conn_t *c = apr_hash_this_val(hi);
        const nt_binding_t *b;
        l->bindings += (apr_uint64_t)c->nbindings;
        l->queued_messages += c->queue.count;
        l->queued_bytes += c->queue.bytes;
        for (b = c->bindings; b; b = b->conn_next) l->waiting += b->blocked ? 1 : 0;
    }
    for (hi = apr_hash_first(NULL, srv->watches); hi; hi = apr_hash_next(hi)) {
        const nt_watch_t *w = apr_hash_this_val(hi);
        const nt_binding_t *b;
        apr_int64_t low;
        if (!w->bindings || !w->sub) continue;
        ++l->subscriptions;
        for (low = w->bindings->cursor, b = w->bindings; b; b = b->watch_next) {
            if (b->cursor < low) low = b->cursor;
        }
        /* as far as the last read of the row knows */
        if (w->sub->events_since_start > low) {
            l->pending += (apr_uint64_t)(w->sub->events_since_start - low);
        }
    }
}

/* ---- exposition ------------------------------------------------------------------- */

typedef struct out_t {
    apr_pool_t *p;
    apr_array_header_t *lines;
} out_t;

static void family(out_t *o, const char *name, const char *type, const char *help)
{
    APR_ARRAY_PUSH(o->lines, const char *) =
        apr_psprintf(o->p, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(out_t *o, const char *name, const char *labels, apr_uint64_t value)
{
    APR_ARRAY_PUSH(o->lines, const char *) =
        apr_psprintf(o->p, "%s%s %" APR_UINT64_T_FMT "\n", name, labels ? labels : "", value);
}

static void one(out_t *o, const char *name, const char *type, const char *help,
                apr_uint64_t value)
{
    family(o, name, type, help);
    sample(o, name, NULL, value);
}

static void render_lag(out_t *o, const nt_metrics_t *m)
{
    const char *name = "fhirsub_notifier_delivery_lag_seconds";
    apr_uint64_t cumulative = 0;
    int i;

    family(o, name, "histogram", "Time from the recording of an event to the write of its "
           "event notification to a client (the oldest event of each notification).");
    for (i = 0; i < NT_LAG_BUCKETS; ++i) {
        cumulative += m->lag_bucket[i];
        sample(o, "fhirsub_notifier_delivery_lag_seconds_bucket",
               apr_psprintf(o->p, "{le=\"%s\"}", LAG_LABELS[i]), cumulative);
    }
    sample(o, "fhirsub_notifier_delivery_lag_seconds_bucket", "{le=\"+Inf\"}", m->lag_count);
    APR_ARRAY_PUSH(o->lines, const char *) =
        apr_psprintf(o->p, "%s_sum %.6f\n", name, m->lag_sum);
    sample(o, "fhirsub_notifier_delivery_lag_seconds_count", NULL, m->lag_count);
}

static void render_counters(out_t *o, const nt_metrics_t *m)
{
    int k;

    one(o, "fhirsub_notifier_connections_total", "counter",
        "Websocket connections accepted.", m->connections_total);
    one(o, "fhirsub_notifier_upgrades_refused_total", "counter",
        "Websocket upgrades refused (another path, MaxConnections, shutting down).",
        m->upgrades_refused);
    family(o, "fhirsub_notifier_binds_total", "counter",
           "Bind requests (bind-with-token, ?token=) by result; renewals count as bound.");
    sample(o, "fhirsub_notifier_binds_total", "{result=\"bound\"}", m->binds_accepted);
    sample(o, "fhirsub_notifier_binds_total", "{result=\"refused\"}", m->binds_refused);
    family(o, "fhirsub_notifier_messages_sent_total", "counter",
           "Messages written to clients by type (event-notification: the deliveries).");
    for (k = NT_MSG_HANDSHAKE; k <= NT_MSG_EVENT; ++k) {
        sample(o, "fhirsub_notifier_messages_sent_total",
               apr_psprintf(o->p, "{type=\"%s\"}", KIND_NAMES[k]), m->sent[k]);
    }
    sample(o, "fhirsub_notifier_messages_sent_total", "{type=\"other\"}", m->sent[NT_MSG_OTHER]);
    one(o, "fhirsub_notifier_events_delivered_total", "counter",
        "Events carried by the event notifications written (once per client).",
        m->events_delivered);
    one(o, "fhirsub_notifier_slow_clients_total", "counter",
        "Connections cut off because their send queue stayed full (1008 too-slow).",
        m->slow_clients);
    one(o, "fhirsub_notifier_wakeups_total", "counter",
        "Wake-ups received (UDP datagrams from httpd, PostgreSQL notifications).", m->wakeups);
    render_lag(o, m);
}

static void render_gauges(out_t *o, nt_server_t *srv, const nt_db_health_t *h)
{
    live_t l;

    count_live(srv, &l);
    one(o, "fhirsub_notifier_connections", "gauge", "Open websocket connections.",
        (apr_uint64_t)srv->nconns);
    one(o, "fhirsub_notifier_bindings", "gauge", "Subscriptions bound on open connections.",
        l.bindings);
    one(o, "fhirsub_notifier_bindings_waiting", "gauge",
        "Bindings whose events wait in the database for room in their send queue.", l.waiting);
    one(o, "fhirsub_notifier_subscriptions_bound", "gauge",
        "Distinct subscriptions with at least one binding here.", l.subscriptions);
    one(o, "fhirsub_notifier_events_pending", "gauge",
        "Events of bound subscriptions not yet sent to every binding here, as far as the "
        "last read of each subscription knows.", l.pending);
    one(o, "fhirsub_notifier_send_queue_messages", "gauge",
        "Messages waiting in the connections' send queues.", l.queued_messages);
    one(o, "fhirsub_notifier_send_queue_bytes", "gauge",
        "Bytes waiting in the connections' send queues.", l.queued_bytes);
    one(o, "fhirsub_notifier_database_up", "gauge",
        "1 when the database connection is ready, else 0.", (apr_uint64_t)h->up);
    one(o, "fhirsub_notifier_database_errors_total", "counter",
        "Times the database was found unavailable (failed connects, queries, probes).",
        h->errors);
    one(o, "fhirsub_notifier_database_jobs_queued", "gauge",
        "Jobs waiting for the database worker.", (apr_uint64_t)h->queued);
}

const char *nt_metrics_render(nt_server_t *srv, apr_pool_t *p)
{
    out_t o = { p, apr_array_make(p, 64, sizeof(const char *)) };
    nt_db_health_t h;

    memset(&h, 0, sizeof(h));
    if (srv->db) nt_db_health(srv->db, &h);
    family(&o, "fhirsub_notifier_info", "gauge", "Version and database driver.");
    APR_ARRAY_PUSH(o.lines, const char *) =
        apr_psprintf(p, "fhirsub_notifier_info{version=\"%s\",database=\"%s\"} 1\n",
                     FHIRSUB_VERSION, srv->conf->db_driver);
    family(&o, "fhirsub_notifier_start_time_seconds", "gauge",
           "When the notifier started (Unix time).");
    APR_ARRAY_PUSH(o.lines, const char *) =
        apr_psprintf(p, "fhirsub_notifier_start_time_seconds %" APR_TIME_T_FMT "\n",
                     apr_time_sec(srv->metrics.started));
    render_gauges(&o, srv, &h);
    render_counters(&o, &srv->metrics);
    return apr_array_pstrcat(p, o.lines, 0);
}

unsigned int nt_metrics_health(nt_server_t *srv, apr_pool_t *p, const char **ptext)
{
    apr_time_t now = apr_time_now();
    nt_db_health_t h;

    if (srv->shutting_down || !srv->db) {
        *ptext = "shutting down\n";
        return 503;
    }
    nt_db_health(srv->db, &h);
    if (now - h.last_round > NT_WORKER_STALL) {
        *ptext = apr_psprintf(p, "database worker stalled for %" APR_TIME_T_FMT " s\n",
                              apr_time_sec(now - h.last_round));
        return 503;
    }
    if (!h.up) {
        *ptext = "database unavailable\n";
        return 503;
    }
    *ptext = "ok\n";
    return 200;
}
