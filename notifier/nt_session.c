#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "fs_fhir.h"
#include "fs_json.h"
#include "fs_oo.h"
#include "fs_time.h"
#include "nt_bind.h"
#include "nt_log.h"
#include "nt_session.h"

/* How often deliveries are written to the database (last_delivery_ms). */
#define NT_FLUSH_INTERVAL apr_time_from_sec(1)
/* 1013 Try Again Later (RFC 6455 registry; lws has no name for it). */
#define NT_CLOSE_TRY_AGAIN 1013

static const char PONG[] = "{\"type\":\"pong\"}";

void nt_session_init(nt_server_t *srv, apr_pool_t *p, const nt_config_t *conf)
{
    memset(srv, 0, sizeof(*srv));
    srv->conf = conf;
    srv->pool = p;
    srv->conns = apr_hash_make(p);
    srv->watches = apr_hash_make(p);
    nt_metrics_init(&srv->metrics);
    apr_pool_create(&srv->delivered_pool, p);
    srv->delivered = apr_hash_make(srv->delivered_pool);
}

static nt_conn_t *conn_get(nt_server_t *srv, apr_uint64_t id)
{
    return apr_hash_get(srv->conns, &id, sizeof(id));
}

/* ---- refusals --------------------------------------------------------------------- */

/* The OperationOutcome issue code for a refusal reason. */
static const char *oo_code(const char *reason)
{
    if (!strcmp(reason, "server-unavailable")) return "transient";
    if (!strcmp(reason, "subscription-not-found") || !strcmp(reason, "subscription-deleted")) {
        return "not-found";
    }
    if (!strncmp(reason, "subscription-", 13) || !strcmp(reason, "too-many-bindings")) {
        return "business-rule";
    }
    if (!strcmp(reason, "unsupported-message") || !strcmp(reason, "malformed-message")) {
        return "invalid";
    }
    return "security";
}

static void send_outcome(nt_conn_t *c, const char *reason, const char *detail)
{
    apr_pool_t *p = NULL;
    const char *text;

    apr_pool_create(&p, c->srv->pool);
    text = fs_json_str(p, fs_oo_make(p, oo_code(reason),
                                     apr_psprintf(p, "%s: %s", reason, detail)));
    nt_conn_send_text(c, NT_MSG_OTHER, text, strlen(text), NT_SEND_MUST);
    apr_pool_destroy(p);
}

/* The bind rule (see nt_session.h): JSON clients get an OperationOutcome; text
 * clients are closed with 1008 when nothing else is bound on the connection, else
 * the refusal is logged and the other bindings continue. */
static void refuse(nt_conn_t *c, int json, const char *reason, const char *detail)
{
    int unavailable = !strcmp(reason, "server-unavailable");

    if (c->closing) return;
    if (json) {
        nt_log(FS_LOG_NOTICE, "FS20201: " NT_CONN_FMT ": refused (%s: %s); "
               "OperationOutcome sent", NT_CONN_ARGS(c), reason, detail);
        send_outcome(c, reason, detail);
    }
    else if (c->nbindings == 0) {
        nt_log(FS_LOG_NOTICE, "FS20202: " NT_CONN_FMT ": refused (%s: %s); no other binding: "
               "closing", NT_CONN_ARGS(c), reason, detail);
        nt_conn_close(c, unavailable ? NT_CLOSE_TRY_AGAIN : LWS_CLOSE_STATUS_POLICY_VIOLATION,
                      reason);
    }
    else {
        nt_log(FS_LOG_NOTICE, "FS20203: " NT_CONN_FMT ": refused (%s: %s); its %d other "
               "binding(s) continue", NT_CONN_ARGS(c), reason, detail, c->nbindings);
    }
}

void nt_session_binding_lost(nt_binding_t *b, const char *reason, const char *detail)
{
    nt_conn_t *c = b->conn;
    char id[FS_FHIR_ID_MAX + 1], text[512];

    apr_cpystrn(id, b->watch->sub_id, sizeof(id));
    nt_binding_remove(b);
    if (c->closing) return;
    nt_log(FS_LOG_NOTICE, "FS20204: " NT_CONN_FMT ": Subscription/%s unbound: %s (%s)",
           NT_CONN_ARGS(c), id, reason, detail);
    if (c->json) {
        apr_snprintf(text, sizeof(text), "Subscription/%s: %s", id, detail);
        send_outcome(c, reason, text);
    }
    if (c->nbindings == 0) {
        /* nothing left to hear on this connection: make the client reconnect */
        nt_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, reason);
    }
}

/* ---- frames ----------------------------------------------------------------------- */

static void submit_bind(nt_conn_t *c, nt_job_kind_t kind, int json, const char *token)
{
    nt_job_t *job = nt_job_new(kind);
    if (!job) {
        refuse(c, json, "server-unavailable", "out of memory");
        return;
    }
    job->conn_id = c->id;
    job->json = json;
    job->token = apr_pstrdup(job->pool, token);
    ++c->pending;
    nt_conn_update_flow(c);
    nt_db_submit(c->srv->db, job);
}

void nt_session_frame(nt_conn_t *c, const char *data, size_t len)
{
    apr_pool_t *p = NULL;
    nt_frame_t f;

    if (c->closing) return;
    apr_pool_create(&p, c->srv->pool);
    nt_frame_parse(&f, p, data, len);
    if (f.json) c->json = 1;
    switch (f.type) {
    case NT_FRAME_PING:
        nt_conn_send_text(c, NT_MSG_OTHER, PONG, sizeof(PONG) - 1, NT_SEND_OPTIONAL);
        break;
    case NT_FRAME_BIND:
    case NT_FRAME_UNBIND:
        submit_bind(c, f.type == NT_FRAME_BIND ? NT_JOB_BIND : NT_JOB_UNBIND, f.json, f.token);
        break;
    case NT_FRAME_UNKNOWN:
        refuse(c, f.json, "unsupported-message", f.error);
        break;
    default:
        refuse(c, f.json, "malformed-message", f.error);
        break;
    }
    apr_pool_destroy(p);
}

void nt_session_url_token(nt_conn_t *c, const char *token)
{
    nt_log(FS_LOG_NOTICE, "FS20205: " NT_CONN_FMT ": binding token in the URL (?token=); "
           "tokens in URLs end up in logs: send 'bind-with-token <token>' instead",
           NT_CONN_ARGS(c));
    submit_bind(c, NT_JOB_BIND, 0, token);
}

/* ---- results ---------------------------------------------------------------------- */

static void bind_done(nt_server_t *srv, nt_job_t *job)
{
    nt_conn_t *c = conn_get(srv, job->conn_id);
    apr_time_t now = apr_time_now();
    int i;

    if (!c) return;   /* the connection went meanwhile */
    --c->pending;
    nt_conn_update_flow(c);
    if (c->closing) return;
    if (job->failed) {
        ++srv->metrics.binds_refused;
        refuse(c, job->json, job->reason, job->detail);
        return;
    }
    ++srv->metrics.binds_accepted;
    for (i = 0; i < job->subs->nelts; ++i) {
        const nt_sub_state_t *st = &APR_ARRAY_IDX(job->subs, i, nt_sub_state_t);
        nt_binding_t *b = nt_conn_find_binding(c, st->sub_id);
        nt_watch_t *w;

        if (!b && c->nbindings >= srv->conf->max_bindings) {
            --srv->metrics.binds_accepted;
            ++srv->metrics.binds_refused;
            refuse(c, job->json, "too-many-bindings", apr_psprintf(job->pool,
                   "one connection carries at most %d subscriptions",
                   srv->conf->max_bindings));
            break;
        }
        if (!(w = nt_watch_attach(srv, st->sub))) break;
        if (b) {
            nt_binding_renew(b, job->grant_id, job->expires);
        }
        else if (!(b = nt_binding_add(c, w, job->grant_id, job->expires,
                                      st->sub->events_since_start))) {
            nt_watch_release(srv, w);
            break;
        }
        /* a handshake for every bind, renewals included (Medplum's client waits for
         * it); it reports N events since start, live delivery continues above N */
        nt_conn_send_text(c, NT_MSG_HANDSHAKE, st->handshake, strlen(st->handshake),
                          NT_SEND_MUST);
        b->last_sent = now;
        nt_log(FS_LOG_INFO, "FS20206: " NT_CONN_FMT ": Subscription/%s bound (grant %s of "
               "%s, until %s, from event %" APR_INT64_T_FMT ")", NT_CONN_ARGS(c),
               st->sub_id, job->grant_id, job->user, fs_time_instant(job->pool, job->expires),
               b->cursor);
        /* events recorded before the handshake was read are still to come */
        nt_watch_mark_one(srv, w);
    }
}

static void unbind_done(nt_server_t *srv, nt_job_t *job)
{
    nt_conn_t *c = conn_get(srv, job->conn_id);
    nt_binding_t *b, *next;
    int n = 0;

    if (!c) return;
    --c->pending;
    nt_conn_update_flow(c);
    if (c->closing) return;
    if (job->failed) {
        if (job->json) {
            refuse(c, 1, job->reason, job->detail);
        }
        else {
            nt_log(FS_LOG_NOTICE, "FS20207: " NT_CONN_FMT ": unbind refused (%s: %s)",
                   NT_CONN_ARGS(c), job->reason, job->detail);
        }
        return;
    }
    /* only this connection's bindings of that grant; none is fine (Medplum unbinds
     * the tokens of its previous connection on the new one) */
    for (b = c->bindings; b; b = next) {
        next = b->conn_next;
        if (!strcmp(b->grant_id, job->grant_id)) {
            nt_binding_remove(b);
            ++n;
        }
    }
    nt_log(FS_LOG_INFO, "FS20208: " NT_CONN_FMT ": unbind of grant %s: %d binding(s) "
           "removed", NT_CONN_ARGS(c), job->grant_id, n);
}

static void refresh_done(nt_server_t *srv, nt_job_t *job)
{
    apr_hash_index_t *hi;
    int i;

    srv->refresh_inflight = 0;
    if (job->unavailable) return;
    for (i = 0; i < job->subs->nelts; ++i) {
        const nt_sub_state_t *st = &APR_ARRAY_IDX(job->subs, i, nt_sub_state_t);
        nt_watch_t *w = nt_watch_get(srv, st->sub_id);
        if (!w) continue;
        if (st->reason) {
            const char *detail = apr_psprintf(job->pool, "the subscription is %s",
                                 st->sub ? st->sub->status : "deleted");
            /* held while its bindings go, or the last one would free it under us */
            ++w->inflight;
            while (w->bindings) nt_session_binding_lost(w->bindings, st->reason, detail);
            --w->inflight;
            nt_watch_release(srv, w);
        }
        else {
            nt_watch_update(w, st->sub);
        }
    }
    for (i = 0; i < job->grants->nelts; ++i) {
        const nt_grant_state_t *g = &APR_ARRAY_IDX(job->grants, i, nt_grant_state_t);
        for (hi = apr_hash_first(NULL, srv->conns); hi; hi = apr_hash_next(hi)) {
            nt_conn_t *c = apr_hash_this_val(hi);
            nt_binding_t *b, *next;
            for (b = c->bindings; b; b = next) {
                next = b->conn_next;
                if (!strcmp(b->grant_id, g->grant_id)) {
                    nt_session_binding_lost(b, g->reason, "the binding token was revoked");
                }
            }
        }
    }
}

void nt_session_results(nt_server_t *srv)
{
    nt_job_t *job, *next;

    if (!srv->db) return;
    for (job = nt_db_results(srv->db); job; job = next) {
        next = job->next;
        switch (job->kind) {
        case NT_JOB_BIND: bind_done(srv, job); break;
        case NT_JOB_UNBIND: unbind_done(srv, job); break;
        case NT_JOB_SCAN: nt_watch_scan_done(srv, job); break;
        case NT_JOB_REFRESH: refresh_done(srv, job); break;
        case NT_JOB_WAKE:
            ++srv->metrics.wakeups;
            nt_watch_mark(srv, job->items);
            break;
        default: break;
        }
        srv->seen_seq = job->seq;
        nt_job_free(job);
    }
}

/* ---- delivery bookkeeping ----------------------------------------------------------- */

void nt_session_delivered(nt_server_t *srv, const char *sub_id)
{
    apr_time_t *when = apr_hash_get(srv->delivered, sub_id, APR_HASH_KEY_STRING);
    if (!when) {
        when = apr_palloc(srv->delivered_pool, sizeof(*when));
        apr_hash_set(srv->delivered, apr_pstrdup(srv->delivered_pool, sub_id),
                     APR_HASH_KEY_STRING, when);
    }
    *when = apr_time_now();
}

void nt_session_sub_error(nt_server_t *srv, const char *sub_id, const char *text)
{
    nt_job_t *job = nt_job_new(NT_JOB_SUB_ERROR);
    if (!job) return;
    job->sub_id = apr_pstrdup(job->pool, sub_id);
    job->text = apr_pstrdup(job->pool, text);
    nt_db_submit(srv->db, job);
}

static void flush_cb(lws_sorted_usec_list_t *sul)
{
    nt_server_t *srv = lws_container_of(sul, nt_server_t, flush_timer);
    apr_hash_index_t *hi;
    nt_job_t *job;

    if (apr_hash_count(srv->delivered) && (job = nt_job_new(NT_JOB_DELIVERED))) {
        job->items = apr_array_make(job->pool, (int)apr_hash_count(srv->delivered),
                                    sizeof(fs_delivery_t));
        for (hi = apr_hash_first(NULL, srv->delivered); hi; hi = apr_hash_next(hi)) {
            fs_delivery_t *d = apr_array_push(job->items);
            d->sub_id = apr_pstrdup(job->pool, apr_hash_this_key(hi));
            d->when = *(apr_time_t *)apr_hash_this_val(hi);
        }
        nt_db_submit(srv->db, job);
        apr_pool_clear(srv->delivered_pool);
        srv->delivered = apr_hash_make(srv->delivered_pool);
    }
    lws_sul_schedule(srv->ctx, 0, &srv->flush_timer, flush_cb, NT_FLUSH_INTERVAL);
}

/* ---- periodic work ------------------------------------------------------------------ */

static void poll_cb(lws_sorted_usec_list_t *sul)
{
    nt_server_t *srv = lws_container_of(sul, nt_server_t, poll_timer);
    /* the fallback when no wake-up came (or was configured) */
    nt_watch_mark(srv, NULL);
    lws_sul_schedule(srv->ctx, 0, &srv->poll_timer, poll_cb,
                     (lws_usec_t)srv->conf->poll_interval);
}

static void refresh_cb(lws_sorted_usec_list_t *sul)
{
    nt_server_t *srv = lws_container_of(sul, nt_server_t, refresh_timer);
    apr_hash_index_t *hi;
    apr_hash_t *grants;
    nt_job_t *job;

    lws_sul_schedule(srv->ctx, 0, &srv->refresh_timer, refresh_cb,
                     (lws_usec_t)srv->conf->revalidate_interval);
    if (srv->refresh_inflight || !apr_hash_count(srv->watches)) return;
    if (!(job = nt_job_new(NT_JOB_REFRESH))) return;
    job->items = apr_array_make(job->pool, (int)apr_hash_count(srv->watches),
                                sizeof(const char *));
    job->grant_ids = apr_array_make(job->pool, 4, sizeof(const char *));
    grants = apr_hash_make(job->pool);
    for (hi = apr_hash_first(NULL, srv->watches); hi; hi = apr_hash_next(hi)) {
        nt_watch_t *w = apr_hash_this_val(hi);
        nt_binding_t *b;
        APR_ARRAY_PUSH(job->items, const char *) = apr_pstrdup(job->pool, w->sub_id);
        for (b = w->bindings; b; b = b->watch_next) {
            if (!apr_hash_get(grants, b->grant_id, APR_HASH_KEY_STRING)) {
                const char *g = apr_pstrdup(job->pool, b->grant_id);
                apr_hash_set(grants, g, APR_HASH_KEY_STRING, g);
                APR_ARRAY_PUSH(job->grant_ids, const char *) = g;
            }
        }
    }
    srv->refresh_inflight = 1;
    nt_db_submit(srv->db, job);
}

/* The subscriptions bound here and the lowest cursor of their bindings (blocked ones
 * included: their backlog must stay), for a retention pass on the worker. */
static void prune_cb(lws_sorted_usec_list_t *sul)
{
    nt_server_t *srv = lws_container_of(sul, nt_server_t, prune_timer);
    apr_hash_index_t *hi;
    nt_job_t *job;

    lws_sul_schedule(srv->ctx, 0, &srv->prune_timer, prune_cb,
                     (lws_usec_t)srv->conf->prune_interval);
    if (srv->shutting_down || !(job = nt_job_new(NT_JOB_PRUNE))) return;
    job->seen_seq = srv->seen_seq;
    job->items = apr_array_make(job->pool, (int)apr_hash_count(srv->watches) + 1,
                                sizeof(nt_scan_item_t));
    for (hi = apr_hash_first(NULL, srv->watches); hi; hi = apr_hash_next(hi)) {
        nt_watch_t *w = apr_hash_this_val(hi);
        nt_scan_item_t *item;
        nt_binding_t *b;
        if (!w->bindings) continue;
        item = apr_array_push(job->items);
        memset(item, 0, sizeof(*item));
        item->sub_id = apr_pstrdup(job->pool, w->sub_id);
        item->after = w->bindings->cursor;
        for (b = w->bindings; b; b = b->watch_next) {
            if (b->cursor < item->after) item->after = b->cursor;
        }
    }
    nt_db_submit(srv->db, job);
}

void nt_session_start(nt_server_t *srv)
{
    if (nt_config_prunes(srv->conf)) {
        lws_sul_schedule(srv->ctx, 0, &srv->prune_timer, prune_cb,
                         (lws_usec_t)srv->conf->prune_interval);
    }
    lws_sul_schedule(srv->ctx, 0, &srv->poll_timer, poll_cb,
                     (lws_usec_t)srv->conf->poll_interval);
    lws_sul_schedule(srv->ctx, 0, &srv->refresh_timer, refresh_cb,
                     (lws_usec_t)srv->conf->revalidate_interval);
    lws_sul_schedule(srv->ctx, 0, &srv->flush_timer, flush_cb, NT_FLUSH_INTERVAL);
}

void nt_session_shutdown(nt_server_t *srv)
{
    apr_hash_index_t *hi;
    srv->shutting_down = 1;
    for (hi = apr_hash_first(NULL, srv->conns); hi; hi = apr_hash_next(hi)) {
        nt_conn_close(apr_hash_this_val(hi), LWS_CLOSE_STATUS_GOINGAWAY, "server-shutdown");
    }
}

void nt_session_stop(nt_server_t *srv)
{
    /* the last deliveries still reach the database (the worker runs them first) */
    flush_cb(&srv->flush_timer);
    lws_sul_cancel(&srv->poll_timer);
    lws_sul_cancel(&srv->refresh_timer);
    lws_sul_cancel(&srv->flush_timer);
    lws_sul_cancel(&srv->prune_timer);
    nt_conn_timers_stop(srv);
    nt_watch_stop(srv);
}
