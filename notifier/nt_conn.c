#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "fs_notify.h"
#include "nt_log.h"
#include "nt_session.h"
#include "nt_watch.h"
#include "nt_conn.h"

/* Grace for a closing connection to take its last messages and the close frame. */
#define NT_CLOSE_GRACE_SECS 5
/* Reassembly buffers above this are released after each message. */
#define NT_RX_KEEP 4096

static lws_usec_t usec_until(apr_time_t when)
{
    apr_time_t now = apr_time_now();
    return when > now ? (lws_usec_t)(when - now) : 1;
}

/* ---- timers (nt_timer.h): one heap, one lws_sul at its earliest due time ------- */

static void arm_timers(nt_server_t *srv);

static void timers_cb(lws_sorted_usec_list_t *sul)
{
    nt_server_t *srv = lws_container_of(sul, nt_server_t, timers_sul);
    nt_timer_t *t;

    srv->timers_armed = 0;
    while ((t = nt_timers_take_due(&srv->timers, (apr_int64_t)lws_now_usecs()))) t->fn(t);
    arm_timers(srv);
}

/* Arm the lws_sul for the earliest due time, unless it is armed for that or earlier
 * (after a cancel it may fire for nothing, then follows the heap): re-arming walks lws's
 * own sorted list, so it happens at most once per firing, not once per bind. */
static void arm_timers(nt_server_t *srv)
{
    apr_int64_t next = nt_timers_next_due(&srv->timers);
    apr_int64_t now = (apr_int64_t)lws_now_usecs();

    if (!next || (srv->timers_armed && srv->timers_armed <= next)) return;
    srv->timers_armed = next;
    lws_sul_schedule(srv->ctx, 0, &srv->timers_sul, timers_cb,
                     (lws_usec_t)(next > now ? next - now : 1));
}

/* Run fn on t in `in` microseconds. */
static void timer_in(nt_server_t *srv, nt_timer_t *t, nt_timer_fn *fn, lws_usec_t in)
{
    if (APR_SUCCESS != nt_timer_schedule(&srv->timers, t, fn,
                                         (apr_int64_t)(lws_now_usecs() + in))) {
        nt_log(FS_LOG_ERR, "FS20310: out of memory for a timer: it will not fire");
        return;
    }
    arm_timers(srv);
}

static void timer_cancel(nt_server_t *srv, nt_timer_t *t)
{
    nt_timer_cancel(&srv->timers, t);
}

void nt_conn_timers_stop(nt_server_t *srv)
{
    lws_sul_cancel(&srv->timers_sul);
    srv->timers_armed = 0;
    nt_timers_free(&srv->timers);
}

/* ---- bind timeout ------------------------------------------------------------- */

static void bind_timer_cb(nt_timer_t *t)
{
    nt_conn_t *c = lws_container_of(t, nt_conn_t, bind_timer);
    if (c->nbindings > 0 || c->closing) return;
    if (c->pending > 0) {
        /* a bind is on its way: its result decides */
        timer_in(c->srv, &c->bind_timer, bind_timer_cb,
                         (lws_usec_t)c->srv->conf->bind_timeout);
        return;
    }
    nt_log(FS_LOG_INFO, "FS20301: " NT_CONN_FMT " held no binding for %.1f s: closed",
           NT_CONN_ARGS(c), (double)c->srv->conf->bind_timeout / APR_USEC_PER_SEC);
    nt_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "no-binding");
}

static void arm_bind_timer(nt_conn_t *c)
{
    timer_in(c->srv, &c->bind_timer, bind_timer_cb,
                     (lws_usec_t)c->srv->conf->bind_timeout);
}

/* ---- open / closed ------------------------------------------------------------ */

void nt_conn_open(nt_server_t *srv, nt_conn_t *c, struct lws *wsi)
{
    char addr[64] = "", xff[64] = "";

    memset(c, 0, sizeof(*c));
    c->srv = srv;
    c->wsi = wsi;
    c->id = ++srv->next_conn_id;
    lws_get_peer_simple(wsi, addr, sizeof(addr));
    if (lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) > 0) {
        apr_snprintf(c->peer, sizeof(c->peer), "%s, for %s", addr, xff);
    }
    else {
        apr_snprintf(c->peer, sizeof(c->peer), "%s", addr);
    }
    nt_queue_init(&c->queue, (size_t)srv->conf->send_queue_messages,
                  srv->conf->send_queue_bytes);
    apr_hash_set(srv->conns, &c->id, sizeof(c->id), c);
    ++srv->nconns;
    ++srv->metrics.connections_total;
    arm_bind_timer(c);
    nt_log(FS_LOG_INFO, "FS20302: " NT_CONN_FMT " opened", NT_CONN_ARGS(c));
}

void nt_conn_closed(nt_conn_t *c)
{
    if (!c->srv) return;   /* never opened */
    while (c->bindings) nt_binding_remove(c->bindings);
    timer_cancel(c->srv, &c->bind_timer);
    timer_cancel(c->srv, &c->stall_timer);
    timer_cancel(c->srv, &c->close_timer);
    nt_queue_clear(&c->queue);
    free(c->rx);
    c->rx = NULL;
    apr_hash_set(c->srv->conns, &c->id, sizeof(c->id), NULL);
    --c->srv->nconns;
    nt_log(FS_LOG_INFO, "FS20303: " NT_CONN_FMT " closed", NT_CONN_ARGS(c));
    c->srv = NULL;
}

/* ---- sending ------------------------------------------------------------------ */

/* The close did not complete in time (a client that reads nothing never lets the
 * last messages and the close frame out): drop the connection. */
static void close_timer_cb(nt_timer_t *t)
{
    nt_conn_t *c = lws_container_of(t, nt_conn_t, close_timer);
    nt_log(FS_LOG_INFO, "FS20309: " NT_CONN_FMT " did not take its close in %d s: dropped",
           NT_CONN_ARGS(c), NT_CLOSE_GRACE_SECS);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void nt_conn_close(nt_conn_t *c, int code, const char *reason)
{
    if (c->closing) return;
    c->closing = 1;
    c->close_code = code;
    apr_cpystrn(c->close_reason, reason, sizeof(c->close_reason));
    timer_cancel(c->srv, &c->bind_timer);
    lws_callback_on_writable(c->wsi);
    /* a client that does not read may never make us writable */
    timer_in(c->srv, &c->close_timer, close_timer_cb,
                     (lws_usec_t)NT_CLOSE_GRACE_SECS * LWS_US_PER_SEC);
    nt_log(FS_LOG_INFO, "FS20304: " NT_CONN_FMT " closing: %d %s", NT_CONN_ARGS(c), code,
           reason);
}

void nt_conn_update_flow(nt_conn_t *c)
{
    int high = nt_queue_high(&c->queue) || c->pending >= NT_MAX_PENDING_JOBS;
    int low = nt_queue_low(&c->queue) && c->pending < NT_MAX_PENDING_JOBS;

    if (!c->wsi || c->closing) return;
    if (high && !c->rx_paused) {
        c->rx_paused = 1;
        lws_rx_flow_control(c->wsi, 0);
    }
    else if (low && c->rx_paused) {
        c->rx_paused = 0;
        lws_rx_flow_control(c->wsi, 1);
    }
}

/* The client let its queue stay full: cut it off. */
static void cull(nt_conn_t *c)
{
    nt_binding_t *b;
    nt_log(FS_LOG_WARNING, "FS20305: " NT_CONN_FMT " too slow: its send queue stayed "
           "full for %.1f s (%lu messages, %lu bytes); disconnected", NT_CONN_ARGS(c),
           (double)c->srv->conf->slow_client_timeout / APR_USEC_PER_SEC,
           (unsigned long)c->queue.count, (unsigned long)c->queue.bytes);
    ++c->srv->metrics.slow_clients;
    for (b = c->bindings; b; b = b->conn_next) {
        nt_session_sub_error(c->srv, b->watch->sub_id, "the websocket client did not keep "
                             "up with its notifications and was disconnected");
    }
    nt_queue_clear(&c->queue);
    nt_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "too-slow");
}

static void stall_timer_cb(nt_timer_t *t)
{
    nt_conn_t *c = lws_container_of(t, nt_conn_t, stall_timer);
    if (c->stalled && !c->closing) cull(c);
}

/* The queue is full: from now on the client has SlowClientTimeout to drain it. */
static void stall(nt_conn_t *c)
{
    if (c->stalled) return;
    c->stalled = 1;
    nt_log(FS_LOG_DEBUG, "FS20308: " NT_CONN_FMT " send queue full (%lu messages, %lu "
           "bytes)", NT_CONN_ARGS(c), (unsigned long)c->queue.count,
           (unsigned long)c->queue.bytes);
    timer_in(c->srv, &c->stall_timer, stall_timer_cb,
                     (lws_usec_t)c->srv->conf->slow_client_timeout);
}

/* Room again: bindings that waited read their backlog from the database. */
static void unstall(nt_conn_t *c)
{
    nt_binding_t *b;
    c->stalled = 0;
    timer_cancel(c->srv, &c->stall_timer);
    for (b = c->bindings; b; b = b->conn_next) {
        if (b->blocked) {
            b->blocked = 0;
            nt_watch_mark_one(c->srv, b->watch);
        }
    }
}

int nt_conn_send(nt_conn_t *c, nt_msg_t *m, nt_send_t how)
{
    if (c->closing || !c->srv) return -1;
    if (nt_queue_push(&c->queue, m)) {
        if (how == NT_SEND_MUST) cull(c);
        else stall(c);
        return -1;
    }
    nt_conn_update_flow(c);
    lws_callback_on_writable(c->wsi);
    return 0;
}

int nt_conn_send_text(nt_conn_t *c, nt_msg_kind_t kind, const char *text, size_t len,
                      nt_send_t how)
{
    nt_msg_t *m = nt_msg_new(text, len);
    int rv;
    if (!m) return -1;
    m->kind = kind;
    rv = nt_conn_send(c, m, how);
    nt_msg_unref(m);
    return rv;
}

int nt_conn_writable(nt_conn_t *c)
{
    nt_msg_t *m;
    int n;

    if (!c->srv) return 0;
    if (!(m = nt_queue_peek(&c->queue))) {
        if (!c->closing) return 0;
        /* what was queued before the close went out first */
        lws_close_reason(c->wsi, (enum lws_close_status)c->close_code,
                         (unsigned char *)c->close_reason, strlen(c->close_reason));
        return -1;
    }
    n = lws_write(c->wsi, nt_msg_payload(m), m->len, LWS_WRITE_TEXT);
    if (n < (int)m->len) {
        nt_log(FS_LOG_INFO, "FS20306: " NT_CONN_FMT " write failed; closing",
               NT_CONN_ARGS(c));
        return -1;
    }
    nt_metrics_sent(&c->srv->metrics, m, apr_time_now());
    if (m->sub_id) nt_session_delivered(c->srv, m->sub_id);
    nt_queue_pop(&c->queue);
    if (c->stalled && nt_queue_low(&c->queue)) unstall(c);
    nt_conn_update_flow(c);
    if (nt_queue_peek(&c->queue) || c->closing) lws_callback_on_writable(c->wsi);
    return 0;
}

/* ---- receiving ---------------------------------------------------------------- */

static int refuse_rx(nt_conn_t *c, int code, const char *reason, const char *why)
{
    nt_log(FS_LOG_NOTICE, "FS20307: " NT_CONN_FMT ": %s; closed with %d %s",
           NT_CONN_ARGS(c), why, code, reason);
    lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)reason,
                     strlen(reason));
    return -1;
}

int nt_conn_rx(nt_conn_t *c, const void *in, size_t len, int final, int binary)
{
    size_t max = (size_t)c->srv->conf->max_message_size;

    if (c->closing) return 0;
    if (binary) {
        return refuse_rx(c, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "binary-not-supported",
                         "binary message");
    }
    if (c->rx_len + len > max) {
        char why[80];
        apr_snprintf(why, sizeof(why), "message above MaxMessageSize (%lu bytes)",
                     (unsigned long)max);
        return refuse_rx(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message-too-big", why);
    }
    if (c->rx_len + len + 1 > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 1024;
        unsigned char *rx;
        while (cap < c->rx_len + len + 1) cap *= 2;
        if (cap > max + 1) cap = max + 1;
        if (!(rx = realloc(c->rx, cap))) {
            return refuse_rx(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out-of-memory",
                             "out of memory");
        }
        c->rx = rx;
        c->rx_cap = cap;
    }
    if (len) memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (!final) return 0;
    c->rx[c->rx_len] = '\0';
    len = c->rx_len;
    c->rx_len = 0;
    nt_session_frame(c, (const char *)c->rx, len);
    if (c->srv && c->rx_cap > NT_RX_KEEP) {
        free(c->rx);
        c->rx = NULL;
        c->rx_cap = 0;
    }
    return 0;
}

/* ---- bindings ----------------------------------------------------------------- */

nt_binding_t *nt_conn_find_binding(nt_conn_t *c, const char *sub_id)
{
    nt_binding_t *b;
    for (b = c->bindings; b; b = b->conn_next) {
        if (!strcmp(b->watch->sub_id, sub_id)) return b;
    }
    return NULL;
}

static void heartbeat_cb(nt_timer_t *t)
{
    nt_binding_t *b = lws_container_of(t, nt_binding_t, heartbeat);
    nt_conn_t *c = b->conn;
    nt_watch_t *w = b->watch;
    apr_interval_time_t period = apr_time_from_sec(w->sub->heartbeat_period);
    apr_time_t now = apr_time_now();
    apr_pool_t *p = NULL;
    const char *text;

    if (period <= 0) return;
    if (now - b->last_sent >= period - apr_time_from_msec(50) && !c->closing) {
        /* nothing went out for a whole period: say we are alive */
        apr_pool_create(&p, c->srv->pool);
        text = fs_json_str(p, fs_notify_heartbeat(p, w->sub, now));
        nt_conn_send_text(c, NT_MSG_HEARTBEAT, text, strlen(text), NT_SEND_OPTIONAL);
        apr_pool_destroy(p);
        b->last_sent = now;
    }
    timer_in(c->srv, &b->heartbeat, heartbeat_cb,
                     usec_until(b->last_sent + period));
}

static void expiry_cb(nt_timer_t *t)
{
    nt_binding_t *b = lws_container_of(t, nt_binding_t, expiry);
    nt_session_binding_lost(b, "token-expired", "the binding token expired; bind a new "
                            "one before it does");
}

static void schedule_heartbeat(nt_binding_t *b)
{
    apr_int64_t period = b->watch->sub->heartbeat_period;
    if (period > 0) {
        timer_in(b->conn->srv, &b->heartbeat, heartbeat_cb,
                         (lws_usec_t)apr_time_from_sec(period));
    }
}

void nt_binding_heartbeat_restart(nt_binding_t *b)
{
    timer_cancel(b->conn->srv, &b->heartbeat);
    schedule_heartbeat(b);
}

nt_binding_t *nt_binding_add(nt_conn_t *c, nt_watch_t *w, const char *grant_id,
                             apr_time_t expires, apr_int64_t cursor)
{
    nt_binding_t *b = calloc(1, sizeof(*b));
    if (!b || !(b->grant_id = strdup(grant_id))) {
        free(b);
        return NULL;
    }
    b->conn = c;
    b->watch = w;
    b->expires = expires;
    b->cursor = cursor;
    b->last_sent = apr_time_now();
    b->conn_next = c->bindings;
    c->bindings = b;
    ++c->nbindings;
    b->watch_next = w->bindings;
    w->bindings = b;
    ++w->nbindings;
    timer_cancel(c->srv, &c->bind_timer);
    timer_in(c->srv, &b->expiry, expiry_cb, usec_until(expires));
    schedule_heartbeat(b);
    return b;
}

void nt_binding_renew(nt_binding_t *b, const char *grant_id, apr_time_t expires)
{
    char *id;
    if (expires <= b->expires || !(id = strdup(grant_id))) return;
    free(b->grant_id);
    b->grant_id = id;
    b->expires = expires;
    timer_in(b->conn->srv, &b->expiry, expiry_cb, usec_until(expires));
}

void nt_binding_remove(nt_binding_t *b)
{
    nt_conn_t *c = b->conn;
    nt_watch_t *w = b->watch;
    nt_binding_t **pp;

    timer_cancel(b->conn->srv, &b->heartbeat);
    timer_cancel(b->conn->srv, &b->expiry);
    for (pp = &c->bindings; *pp; pp = &(*pp)->conn_next) {
        if (*pp == b) {
            *pp = b->conn_next;
            --c->nbindings;
            break;
        }
    }
    for (pp = &w->bindings; *pp; pp = &(*pp)->watch_next) {
        if (*pp == b) {
            *pp = b->watch_next;
            --w->nbindings;
            break;
        }
    }
    free(b->grant_id);
    free(b);
    nt_watch_release(c->srv, w);
    if (c->nbindings == 0 && !c->closing) arm_bind_timer(c);
}
