#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "nt_log.h"
#include "nt_session.h"
#include "nt_watch.h"

/* Subscriptions per SCAN job: keeps one job's SQL (and its result) bounded. Not fewer:
 * each result costs the service thread a turn of its loop, whose poll() walks every
 * connection (a third of its time at 10,000 subscriptions with 64 per job). */
#define NT_SCAN_CHUNK 1024

nt_watch_t *nt_watch_get(nt_server_t *srv, const char *sub_id)
{
    return apr_hash_get(srv->watches, sub_id, APR_HASH_KEY_STRING);
}

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* Copies s to *at (moving it on); NULL stays NULL. */
static const char *put_str(char **at, const char *s)
{
    char *d = *at;
    size_t n = str_size(s);
    if (!n) return NULL;
    memcpy(d, s, n);
    *at += n;
    return d;
}

/* What notifications need of the row, in one allocation: a pool per watch would hold
 * 8 KiB per bound subscription. The resource JSON and filters stay behind. */
static fs_sub_t *copy_sub(const fs_sub_t *s)
{
    size_t size = sizeof(*s) + str_size(s->id) + str_size(s->owner) + str_size(s->status) +
                  str_size(s->channel_type) + str_size(s->topic) + str_size(s->criteria) +
                  str_size(s->content) + str_size(s->content_type) + str_size(s->base_url) +
                  str_size(s->error);
    fs_sub_t *d = malloc(size);
    char *at;

    if (!d) return NULL;
    *d = *s;
    at = (char *)(d + 1);
    d->id = put_str(&at, s->id);
    d->owner = put_str(&at, s->owner);
    d->status = put_str(&at, s->status);
    d->channel_type = put_str(&at, s->channel_type);
    d->topic = put_str(&at, s->topic);
    d->criteria = put_str(&at, s->criteria);
    d->content = put_str(&at, s->content);
    d->content_type = put_str(&at, s->content_type);
    d->base_url = put_str(&at, s->base_url);
    d->error = put_str(&at, s->error);
    d->filters_json = "[]";
    d->resource_json = NULL;
    return d;
}

void nt_watch_update(nt_watch_t *w, const fs_sub_t *sub)
{
    fs_sub_t *copy = copy_sub(sub);
    int period_changed;
    nt_binding_t *b;

    if (!copy) return;
    if (w->sub && w->sub->events_since_start > copy->events_since_start) {
        copy->events_since_start = w->sub->events_since_start;
    }
    period_changed = w->sub && w->sub->heartbeat_period != copy->heartbeat_period;
    free(w->sub);
    w->sub = copy;
    /* a timer runs only while the period is above 0: a new period needs a new one */
    for (b = w->bindings; period_changed && b; b = b->watch_next) {
        nt_binding_heartbeat_restart(b);
    }
}

nt_watch_t *nt_watch_attach(nt_server_t *srv, const fs_sub_t *sub)
{
    nt_watch_t *w = nt_watch_get(srv, sub->id);
    if (!w) {
        if (!(w = calloc(1, sizeof(*w))) || !(w->sub_id = strdup(sub->id))) {
            free(w);
            return NULL;
        }
        apr_hash_set(srv->watches, w->sub_id, APR_HASH_KEY_STRING, w);
    }
    nt_watch_update(w, sub);
    return w->sub ? w : NULL;
}

void nt_watch_release(nt_server_t *srv, nt_watch_t *w)
{
    if (w->nbindings > 0 || w->inflight) return;
    apr_hash_set(srv->watches, w->sub_id, APR_HASH_KEY_STRING, NULL);
    free(w->sub);
    free(w->sub_id);
    free(w);
}

/* ---- scans ----------------------------------------------------------------------- */

/* Where a scan starts: the lowest cursor of the bindings that can take events now
 * (a binding waiting for room must not hold the others back); -1 = none can. */
static apr_int64_t lowest_cursor(const nt_watch_t *w)
{
    const nt_binding_t *b;
    apr_int64_t low = -1;
    for (b = w->bindings; b; b = b->watch_next) {
        if (b->blocked || b->conn->closing) continue;
        if (low < 0 || b->cursor < low) low = b->cursor;
    }
    return low;
}

static int has_cut(const apr_array_header_t *cuts, apr_int64_t cursor)
{
    int i;
    for (i = 0; i < cuts->nelts; ++i) {
        if (APR_ARRAY_IDX(cuts, i, apr_int64_t) == cursor) return 1;
    }
    return 0;
}

/* The distinct cursors of those bindings: Bundles are cut there (nt_batch). */
static apr_array_header_t *cursor_cuts(apr_pool_t *p, const nt_watch_t *w)
{
    apr_array_header_t *cuts = apr_array_make(p, 2, sizeof(apr_int64_t));
    const nt_binding_t *b;

    for (b = w->bindings; b; b = b->watch_next) {
        if (b->blocked || b->conn->closing || has_cut(cuts, b->cursor)) continue;
        APR_ARRAY_PUSH(cuts, apr_int64_t) = b->cursor;
    }
    return cuts;
}

static void add_scan_item(nt_job_t *job, nt_watch_t *w, apr_int64_t after)
{
    nt_scan_item_t *item = apr_array_push(job->items);
    item->sub_id = apr_pstrdup(job->pool, w->sub_id);
    item->after = after;
    item->max_count = w->sub->max_count;
    item->cuts = cursor_cuts(job->pool, w);
    item->watch = w;
    w->dirty = 0;
    w->inflight = 1;
}

static void scan_cb(lws_sorted_usec_list_t *sul)
{
    nt_server_t *srv = lws_container_of(sul, nt_server_t, scan_timer);
    apr_hash_index_t *hi;
    nt_job_t *job = NULL;

    srv->scan_scheduled = 0;
    if (srv->shutting_down) return;
    for (hi = apr_hash_first(NULL, srv->watches); hi; hi = apr_hash_next(hi)) {
        nt_watch_t *w = apr_hash_this_val(hi);
        apr_int64_t after;
        if (!w->dirty || w->inflight || w->nbindings == 0) continue;
        if ((after = lowest_cursor(w)) < 0) continue;   /* stays dirty until room */
        if (!job) {
            if (!(job = nt_job_new(NT_JOB_SCAN))) return;
            job->items = apr_array_make(job->pool, NT_SCAN_CHUNK, sizeof(nt_scan_item_t));
        }
        add_scan_item(job, w, after);
        if (job->items->nelts == NT_SCAN_CHUNK) {
            nt_db_submit(srv->db, job);
            job = NULL;
        }
    }
    if (job) nt_db_submit(srv->db, job);
}

static void schedule_scan(nt_server_t *srv)
{
    if (srv->scan_scheduled || srv->shutting_down) return;
    srv->scan_scheduled = 1;
    /* at the next turn of the loop: the wake-ups drained together make one scan, and
     * those arriving while it runs one more (inflight); waiting longer only adds latency */
    lws_sul_schedule(srv->ctx, 0, &srv->scan_timer, scan_cb, 0);
}

void nt_watch_mark_one(nt_server_t *srv, nt_watch_t *w)
{
    w->dirty = 1;
    schedule_scan(srv);
}

void nt_watch_mark(nt_server_t *srv, const apr_array_header_t *ids)
{
    apr_hash_index_t *hi;
    int i, any = 0;

    if (!ids) {
        for (hi = apr_hash_first(NULL, srv->watches); hi; hi = apr_hash_next(hi)) {
            ((nt_watch_t *)apr_hash_this_val(hi))->dirty = 1;
            any = 1;
        }
    }
    else {
        for (i = 0; i < ids->nelts; ++i) {
            nt_watch_t *w = nt_watch_get(srv, APR_ARRAY_IDX(ids, i, const char *));
            if (w) {
                w->dirty = 1;
                any = 1;
            }
        }
    }
    if (any) schedule_scan(srv);
}

/* Whether binding b takes Bundle ev of scan result r. A binding that had part of it,
 * or whose cursor lies below what the scan read (it was waiting for room), is held for
 * the rest of this result and the watch is scanned again from its cursor: it never
 * gets an event twice nor skips one. */
static int takes(nt_watch_t *w, nt_binding_t *b, const nt_scan_result_t *r,
                 const nt_event_text_t *ev)
{
    if (b->blocked || b->held || b->conn->closing || ev->number <= b->cursor) return 0;
    if (ev->first <= b->cursor || b->cursor < r->after) {
        b->held = 1;
        w->dirty = 1;
        return 0;
    }
    return 1;
}

static void deliver(nt_watch_t *w, const nt_scan_result_t *r)
{
    apr_time_t now = apr_time_now();
    nt_binding_t *b;
    int i;

    for (b = w->bindings; b; b = b->watch_next) b->held = 0;
    for (i = 0; i < r->events->nelts; ++i) {
        const nt_event_text_t *ev = &APR_ARRAY_IDX(r->events, i, nt_event_text_t);
        nt_msg_t *m = ev->msg;   /* the job's until it is freed: queues take their own */
        for (b = w->bindings; b; b = b->watch_next) {
            /* cursors only grow: each binding gets each event once, in order; one that
             * finds its queue full waits (blocked) and later reads on from its cursor */
            if (!takes(w, b, r, ev)) continue;
            if (nt_conn_send(b->conn, m, NT_SEND_EVENT)) {
                b->blocked = !b->conn->closing;
                continue;
            }
            b->cursor = ev->number;
            b->last_sent = now;
        }
    }
}

void nt_watch_scan_done(nt_server_t *srv, nt_job_t *job)
{
    int i;

    /* one result per item, in their order; each item's watch is still there (in flight) */
    for (i = 0; !job->unavailable && job->scans && i < job->scans->nelts; ++i) {
        const nt_scan_result_t *r = &APR_ARRAY_IDX(job->scans, i, nt_scan_result_t);
        nt_watch_t *w = APR_ARRAY_IDX(job->items, i, nt_scan_item_t).watch;
        if (r->gone) {
            while (w->bindings) {
                nt_session_binding_lost(w->bindings, "subscription-deleted",
                                        "the subscription was deleted");
            }
            continue;
        }
        if (r->sub) nt_watch_update(w, r->sub);
        deliver(w, r);
        if (r->more) w->dirty = 1;
    }
    /* in flight until here, so no watch went away while its result was applied */
    for (i = 0; i < job->items->nelts; ++i) {
        nt_watch_t *w = APR_ARRAY_IDX(job->items, i, nt_scan_item_t).watch;
        w->inflight = 0;
        if (job->unavailable) {
            w->dirty = 1;          /* the next PollInterval tries again */
        }
        else if (w->dirty) {
            schedule_scan(srv);
        }
        nt_watch_release(srv, w);
    }
}

void nt_watch_stop(nt_server_t *srv)
{
    lws_sul_cancel(&srv->scan_timer);
    srv->scan_scheduled = 0;
}
