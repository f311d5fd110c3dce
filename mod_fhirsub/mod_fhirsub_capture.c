#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "fs_change.h"
#include "fs_event.h"
#include "fs_filter_cache.h"
#include "fs_group.h"
#include "fs_json.h"
#include "fs_match.h"
#include "fs_subkey.h"
#include "fs_topic.h"
#include "mod_fhirsub_config.h"
#include "mod_fhirsub_copy.h"
#include "mod_fhirsub_prior.h"
#include "mod_fhirsub_store.h"
#include "mod_fhirsub_wake.h"
#include "mod_fhirsub_capture.h"

extern module AP_MODULE_DECLARE_DATA fhirsub_module;

APLOG_USE_MODULE(fhirsub);

#define CAPTURE_IN "FHIRSUB_CAPTURE_IN"
#define CAPTURE_OUT "FHIRSUB_CAPTURE_OUT"

typedef struct capture_ctx {
    const fhirsub_dir_conf *conf;  /* the location's configuration */
    const char *path;              /* below the base, with the query */
    fhirsub_copy *req;             /* what the client sent */
    fhirsub_copy *resp;            /* what the FHIR server answered */
    int resp_encoded;              /* answer has a Content-Encoding: not readable */
    apr_bucket_brigade *held;      /* body read ahead, not yet handed on; NULL: none */
    apr_array_header_t *priors;    /* fs_prior_t*: versions read before the write */
} capture_ctx;

/* ---- the request body ------------------------------------------------------ */

/* Move (or, to peek, copy) the held buckets up to readbytes into bb. */
static apr_status_t take_held(capture_ctx *ctx, apr_bucket_brigade *bb, apr_off_t readbytes,
                              int peek)
{
    apr_bucket *end, *e, *next;
    apr_status_t rv = apr_brigade_partition(ctx->held, readbytes, &end);

    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE) return rv;   /* INCOMPLETE: all of it */
    for (e = APR_BRIGADE_FIRST(ctx->held); e != end; e = next) {
        next = APR_BUCKET_NEXT(e);
        if (peek) {
            apr_bucket *copy;
            if (APR_SUCCESS != (rv = apr_bucket_copy(e, &copy))) return rv;
            APR_BRIGADE_INSERT_TAIL(bb, copy);
        } else {
            APR_BUCKET_REMOVE(e);
            APR_BRIGADE_INSERT_TAIL(bb, e);
        }
    }
    return APR_SUCCESS;
}

/* Hand the body read ahead to the handler exactly as the filters below gave it; after
 * that the filters below serve (and are copied) again. */
static apr_status_t serve_held(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                               apr_read_type_e block, apr_off_t readbytes)
{
    capture_ctx *ctx = f->ctx;

    if (APR_BRIGADE_EMPTY(ctx->held)) {
        ctx->held = NULL;
        return ap_get_brigade(f, bb, mode, block, readbytes);   /* ourselves, unheld */
    }
    switch (mode) {
    case AP_MODE_READBYTES: return take_held(ctx, bb, readbytes, 0);
    case AP_MODE_SPECULATIVE: return take_held(ctx, bb, readbytes, 1);
    case AP_MODE_GETLINE: return apr_brigade_split_line(bb, ctx->held, block, HUGE_STRING_LEN);
    case AP_MODE_EXHAUSTIVE:
        APR_BRIGADE_CONCAT(bb, ctx->held);
        return APR_SUCCESS;
    default: return APR_ENOTIMPL;
    }
}

static apr_status_t capture_in(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                               apr_read_type_e block, apr_off_t readbytes)
{
    capture_ctx *ctx = f->ctx;
    apr_status_t rv;

    if (ctx->held) return serve_held(f, bb, mode, block, readbytes);
    rv = ap_get_brigade(f->next, bb, mode, block, readbytes);
    if (rv == APR_SUCCESS && mode == AP_MODE_READBYTES) {
        fhirsub_copy_brigade(ctx->req, f->r->pool, bb);
    }
    return rv;
}

/* Keep bb's buckets beyond this read: into r's pool. */
static apr_status_t set_aside(request_rec *r, apr_bucket_brigade *bb)
{
    apr_bucket *e;
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = APR_BUCKET_NEXT(e)) {
        apr_status_t rv = apr_bucket_setaside(e, r->pool);
        if (rv == APR_ENOTIMPL) {   /* read it into memory, then it can be */
            const char *data;
            apr_size_t len;
            rv = apr_bucket_read(e, &data, &len, APR_BLOCK_READ);
            if (rv == APR_SUCCESS) rv = apr_bucket_setaside(e, r->pool);
        }
        if (rv != APR_SUCCESS) return rv;
    }
    return APR_SUCCESS;
}

/* Read the body ahead, up to the capture bound (a Bundle's entries decide which versions
 * to read before it is forwarded); CAPTURE_IN hands it on unchanged. *pbody: the parsed
 * body, or NULL when it is no JSON object or larger than the bound. Fails as reading the
 * body failed (too large, client gone...). */
static apr_status_t read_ahead(request_rec *r, capture_ctx *ctx, json_object **pbody)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_status_t rv = APR_SUCCESS;
    json_object *j = NULL;
    const char *err;
    int eos = 0;

    *pbody = NULL;
    ctx->held = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    while (!eos && !ctx->req->overflow) {
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ,
                            HUGE_STRING_LEN);
        if (rv == APR_SUCCESS) rv = set_aside(r, bb);
        if (rv != APR_SUCCESS) return rv;
        fhirsub_copy_brigade(ctx->req, r->pool, bb);
        eos = !APR_BRIGADE_EMPTY(bb) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb));
        APR_BRIGADE_CONCAT(ctx->held, bb);
    }
    if (eos && !ctx->req->overflow && ctx->req->len
        && APR_SUCCESS == fs_json_parse(&j, r->pool, ctx->req->data, ctx->req->len, &err)
        && json_object_is_type(j, json_type_object)) {
        *pbody = j;
    }
    return APR_SUCCESS;
}

static apr_status_t capture_out(ap_filter_t *f, apr_bucket_brigade *bb)
{
    capture_ctx *ctx = f->ctx;
    request_rec *r = f->r;

    if (ap_is_HTTP_SUCCESS(r->status)) {
        if (apr_table_get(r->headers_out, "Content-Encoding")) ctx->resp_encoded = 1;
        else fhirsub_copy_brigade(ctx->resp, r->pool, bb);
    }
    return ap_pass_brigade(f->next, bb);
}

static fs_interaction_t interaction_of(const char *name)
{
    if (!strcmp(name, "create")) return FS_INTERACTION_CREATE;
    if (!strcmp(name, "delete")) return FS_INTERACTION_DELETE;
    return FS_INTERACTION_UPDATE;
}

int fhirsub_capture_start(request_rec *r, const fhirsub_dir_conf *c, const char *rel)
{
    capture_ctx *ctx;
    json_object *bundle = NULL;
    apr_size_t max = fhirsub_conf_capture_max(c);
    apr_status_t rv;

    if (r->main || (r->method_number != M_POST && r->method_number != M_PUT
                    && r->method_number != M_PATCH && r->method_number != M_DELETE)) {
        return DECLINED;
    }
    ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    ctx->conf = c;
    /* Conditional writes (PUT Patient?identifier=...) are told by their query. */
    ctx->path = r->args ? apr_pstrcat(r->pool, rel, "?", r->args, NULL) : rel;
    ctx->req = fhirsub_copy_make(r->pool, max);
    ctx->resp = fhirsub_copy_make(r->pool, max);
    /* A POST to the base is a transaction or batch: its entries are in the body. */
    if (r->method_number == M_POST && !*rel && ap_request_has_body(r)
        && APR_SUCCESS != (rv = read_ahead(r, ctx, &bundle))) {
        /* What the FHIR server's handler would answer (the input filters may have
         * answered already, e.g. 413 over LimitRequestBody): nothing was forwarded. */
        return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
    }
    ctx->priors = fhirsub_prior_read(r, c, ctx->path, bundle);
    ap_set_module_config(r->request_config, &fhirsub_module, ctx);
    ap_add_input_filter(CAPTURE_IN, ctx, r, r->connection);
    ap_add_output_filter(CAPTURE_OUT, ctx, r, r->connection);
    return DECLINED;
}

/* ---- recording, after the answer went out --------------------------------- */

/* Per process: parsed subscription filters (fs_filter_cache.h) and the group commit
 * of event recordings (fs_group.h); either may be NULL (slower, same results). */
static fs_filter_cache_t *filter_cache;
static fs_group_t *event_group;

void fhirsub_capture_child_init(apr_pool_t *pchild, server_rec *s)
{
    apr_status_t rv = fs_filter_cache_create(&filter_cache, pchild,
                                             FHIRSUB_FILTER_CACHE_MAX);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, FHIRSUB_LOGNO(10667)
                     "no cache for subscription filters: each write parses them again");
    }
    rv = fs_group_create(&event_group, pchild, FHIRSUB_EVENT_BATCH_MAX);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, FHIRSUB_LOGNO(10668)
                     "no group commit for events: each write commits its own");
    }
}

/* The index keys of the changes' resources (fs_subkey.h) as the candidate query takes
 * them; NULL when a change's resource is unknown (a delete whose version before was not
 * read, an answer without body) or holds too many: then every candidate is read. */
static const char *changes_keys(apr_pool_t *p, const apr_array_header_t *changes)
{
    fs_subkey_set_t *keys = fs_subkey_set_make(p);
    int i;

    for (i = 0; i < changes->nelts; ++i) {
        const fs_change_t *c = APR_ARRAY_IDX(changes, i, const fs_change_t *);
        json_object *focus = strcmp(c->interaction, "delete") ? c->resource : c->previous;
        if (!focus || APR_SUCCESS != fs_subkey_set_add(keys, focus)) return NULL;
    }
    return fs_subkey_set_json(keys);
}

/* The live subscriptions the changes may concern (fs_event_candidate_subs). */
static apr_status_t candidate_subs(request_rec *r, const capture_ctx *ctx,
                                   fs_store_t *store, const apr_array_header_t *changes,
                                   apr_array_header_t **psubs)
{
    apr_array_header_t *types = apr_array_make(r->pool, 1, sizeof(const char *));
    apr_hash_t *seen = apr_hash_make(r->pool);
    int i;

    for (i = 0; i < changes->nelts; ++i) {
        const char *type = APR_ARRAY_IDX(changes, i, const fs_change_t *)->resource_type;
        if (!type || apr_hash_get(seen, type, APR_HASH_KEY_STRING)) continue;
        apr_hash_set(seen, type, APR_HASH_KEY_STRING, type);
        APR_ARRAY_PUSH(types, const char *) = type;
    }
    return fs_event_candidate_subs(store, r->pool, ctx->conf->topics, types,
                                   changes_keys(r->pool, changes), psubs);
}

/* Subscription ids (const char*) among subs whose criteria the change meets. */
static apr_array_header_t *matching_ids(request_rec *r, const capture_ctx *ctx,
                                        apr_array_header_t *subs, const fs_change_t *c)
{
    apr_array_header_t *ids = apr_array_make(r->pool, 4, sizeof(const char *));
    fs_match_change_t change;
    int i;

    memset(&change, 0, sizeof(change));
    change.resource_type = c->resource_type;
    change.id = c->resource_id;
    change.interaction = interaction_of(c->interaction);
    change.current = c->resource;
    change.previous = c->previous;
    for (i = 0; i < subs->nelts; ++i) {
        const fs_sub_t *sub = APR_ARRAY_IDX(subs, i, const fs_sub_t *);
        const fs_topic_t *topic = (sub->topic && ctx->conf->topics)
                                  ? fs_topics_get(ctx->conf->topics, sub->topic) : NULL;
        const apr_array_header_t *filters = NULL;
        const char *err = NULL;
        if (sub->topic && !topic) continue;   /* topic not loaded at this location */
        if (APR_SUCCESS != fs_filter_cache_get(filter_cache, r->pool, sub, &filters, &err)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FHIRSUB_LOGNO(10660)
                          "Subscription/%s has unreadable filters: %s", sub->id, err);
            continue;
        }
        if (fs_match_subscription(sub, topic, filters, &change)) {
            APR_ARRAY_PUSH(ids, const char *) = sub->id;
        }
    }
    return ids;
}

static apr_array_header_t *derive_changes(request_rec *r, const capture_ctx *ctx)
{
    apr_array_header_t *changes = NULL;
    fs_capture_t cap;

    memset(&cap, 0, sizeof(cap));
    cap.method = r->method;
    cap.path = ctx->path;
    cap.status = r->status;
    cap.location = apr_table_get(r->headers_out, "Location");
    cap.etag = apr_table_get(r->headers_out, "ETag");
    cap.req_body = ctx->req->data;
    cap.req_len = ctx->req->len;
    cap.req_complete = !ctx->req->overflow;
    cap.resp_body = ctx->resp->data;
    cap.resp_len = ctx->resp->len;
    cap.resp_complete = !ctx->resp->overflow && !ctx->resp_encoded;
    cap.priors = ctx->priors;
    if (APR_INCOMPLETE == fs_change_derive(&changes, r->pool, &cap, apr_time_now())) {
        /* The search before a conditional delete failed: what it deleted is unknown. */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FHIRSUB_LOGNO(10665)
                      "%s %s: a conditional delete succeeded, but the resources it deleted "
                      "could not all be found before it: their events are missing",
                      r->method, ctx->path);
    }
    return changes;
}

static void record_change(request_rec *r, const capture_ctx *ctx, fs_store_t *store,
                          apr_array_header_t *subs, const fs_change_t *c)
{
    apr_array_header_t *ids = matching_ids(r, ctx, subs, c);
    fs_event_item_t item;
    apr_status_t rv;

    if (ids->nelts == 0) return;
    item.change = c;
    item.sub_ids = ids;
    /* committed with what other threads record now: one flush for all of them */
    rv = fs_group_run(event_group, fs_event_record_items, r->server, store, r->pool, &item);
    if (rv != APR_SUCCESS && rv != APR_EINCOMPLETE && fhirsub_store_recover(r, store)) {
        /* the connection died before our commit: nothing was recorded, do it now (a
         * failed commit is not redone: it may have happened, and events are numbered) */
        rv = fs_event_record(store, r->pool, c, ids);
    }
    if (rv != APR_SUCCESS) {
        /* The write itself succeeded at the FHIR server: this is the documented
         * window in which an event can be lost. Say so loudly. */
        ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, FHIRSUB_LOGNO(10661)
                      "events for %s/%s (%s) NOT recorded for %d subscription(s)",
                      c->resource_type, c->resource_id, c->interaction, ids->nelts);
        return;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, FHIRSUB_LOGNO(10662)
                  "%s/%s (%s): events for %d subscription(s)", c->resource_type,
                  c->resource_id, c->interaction, ids->nelts);
    fhirsub_wake_notifier(r, ctx->conf, ids);
}

static int log_transaction(request_rec *r)
{
    capture_ctx *ctx = ap_get_module_config(r->request_config, &fhirsub_module);
    apr_array_header_t *changes, *subs;
    fs_store_t *store;
    int i;

    if (!ctx || !ap_is_HTTP_SUCCESS(r->status)) return DECLINED;
    changes = derive_changes(r, ctx);
    if (!changes || changes->nelts == 0) return DECLINED;
    if (!(store = fhirsub_store_acquire(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FHIRSUB_LOGNO(10663)
                      "%d change(s) NOT recorded: no database", changes->nelts);
        return DECLINED;
    }
    if (APR_SUCCESS != candidate_subs(r, ctx, store, changes, &subs)
        && (!fhirsub_store_recover(r, store)
            || APR_SUCCESS != candidate_subs(r, ctx, store, changes, &subs))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, FHIRSUB_LOGNO(10664)
                      "%d change(s) NOT recorded: subscriptions unreadable", changes->nelts);
        return DECLINED;
    }
    for (i = 0; i < changes->nelts; ++i) {
        record_change(r, ctx, store, subs, APR_ARRAY_IDX(changes, i, const fs_change_t *));
    }
    return DECLINED;
}

void fhirsub_capture_register_hooks(void)
{
    /* Below every other filter of the request, so the body read ahead through them is
     * handed on to the handler only, never through them again. */
    ap_register_input_filter(CAPTURE_IN, capture_in, NULL, AP_FTYPE_RESOURCE - 1);
    ap_register_output_filter(CAPTURE_OUT, capture_out, NULL, AP_FTYPE_RESOURCE);
    fhirsub_prior_register_hooks();
    ap_hook_log_transaction(log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
}
