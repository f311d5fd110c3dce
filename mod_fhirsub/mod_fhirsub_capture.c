#include <string.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "fs_change.h"
#include "fs_event.h"
#include "fs_fhir.h"
#include "fs_filter.h"
#include "fs_json.h"
#include "fs_match.h"
#include "fs_topic.h"
#include "mod_fhirsub_config.h"
#include "mod_fhirsub_store.h"
#include "mod_fhirsub_wake.h"
#include "mod_fhirsub_capture.h"

extern module AP_MODULE_DECLARE_DATA fhirsub_module;

APLOG_USE_MODULE(fhirsub);

#define CAPTURE_IN "FHIRSUB_CAPTURE_IN"
#define CAPTURE_OUT "FHIRSUB_CAPTURE_OUT"
#define CAPTURE_PREVIOUS "FHIRSUB_CAPTURE_PREVIOUS"

/* A body as far as it was copied; complete = 0 once it outgrew the bound. */
typedef struct body_copy {
    char *data;
    apr_size_t len, cap;
    int overflow;
} body_copy;

typedef struct capture_ctx {
    const fhirsub_dir_conf *conf;  /* the location's configuration */
    const char *rel;               /* path below the base */
    body_copy req;                 /* what the client sent */
    body_copy resp;                /* what the FHIR server answered */
    int resp_encoded;              /* answer has a Content-Encoding: not readable */
    json_object *previous;         /* the resource before an update/delete, if fetched */
} capture_ctx;

static void copy_append(body_copy *b, apr_pool_t *p, apr_size_t max, const char *data,
                        apr_size_t len)
{
    if (b->overflow || len == 0) return;
    if (b->len + len > max) {
        b->overflow = 1;   /* too large: the change falls back to id-only */
        return;
    }
    if (b->len + len > b->cap) {
        apr_size_t cap = b->cap ? b->cap : 4096;
        char *bigger;
        while (cap < b->len + len) cap *= 2;
        bigger = apr_palloc(p, cap);
        if (b->len) memcpy(bigger, b->data, b->len);
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

/* Copy the data buckets of bb (without consuming them). */
static void copy_brigade(body_copy *b, apr_pool_t *p, apr_size_t max, apr_bucket_brigade *bb)
{
    apr_bucket *e;
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb) && !b->overflow;
         e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t len;
        if (APR_BUCKET_IS_METADATA(e)) continue;
        if (APR_SUCCESS != apr_bucket_read(e, &data, &len, APR_BLOCK_READ)) {
            b->overflow = 1;
            return;
        }
        copy_append(b, p, max, data, len);
    }
}

static apr_status_t capture_in(ap_filter_t *f, apr_bucket_brigade *bb, ap_input_mode_t mode,
                               apr_read_type_e block, apr_off_t readbytes)
{
    capture_ctx *ctx = f->ctx;
    apr_status_t rv = ap_get_brigade(f->next, bb, mode, block, readbytes);
    if (rv == APR_SUCCESS && mode == AP_MODE_READBYTES) {
        copy_brigade(&ctx->req, f->r->pool, fhirsub_conf_capture_max(ctx->conf), bb);
    }
    return rv;
}

static apr_status_t capture_out(ap_filter_t *f, apr_bucket_brigade *bb)
{
    capture_ctx *ctx = f->ctx;
    request_rec *r = f->r;

    if (ap_is_HTTP_SUCCESS(r->status)) {
        if (apr_table_get(r->headers_out, "Content-Encoding")) ctx->resp_encoded = 1;
        else copy_brigade(&ctx->resp, r->pool, fhirsub_conf_capture_max(ctx->conf), bb);
    }
    return ap_pass_brigade(f->next, bb);
}

/* ---- the version before the write ------------------------------------------ */

static fs_interaction_t interaction_of(const char *name)
{
    if (!strcmp(name, "create")) return FS_INTERACTION_CREATE;
    if (!strcmp(name, "delete")) return FS_INTERACTION_DELETE;
    return FS_INTERACTION_UPDATE;
}

/* Swallows the answer of the previous-version subrequest into its body_copy. */
static apr_status_t previous_out(ap_filter_t *f, apr_bucket_brigade *bb)
{
    copy_brigade(f->ctx, f->r->pool, FHIRSUB_DEFAULT_CAPTURE_MAX, bb);
    apr_brigade_cleanup(bb);
    return APR_SUCCESS;
}

/* Does deciding this write need the resource as it was? Deletes always (their
 * filters are tested on the deleted resource); updates when a loaded topic has
 * `previous` criteria for the type. */
static int needs_previous(const fhirsub_dir_conf *c, const char *type, int method)
{
    int i, n = c->topics ? fs_topics_count(c->topics) : 0;
    if (method == M_DELETE) return 1;
    for (i = 0; i < n; ++i) {
        if (fs_topic_needs_previous(fs_topics_at(c->topics, i), type, FS_INTERACTION_UPDATE)) {
            return 1;
        }
    }
    return 0;
}

/* Read Type/id through this same base (a subrequest: mod_proxy, auth and all) before
 * the write is forwarded. NULL when it cannot be read. */
static json_object *fetch_previous(request_rec *r, const fhirsub_dir_conf *c,
                                   const char *type, const char *id)
{
    const char *uri = apr_pstrcat(r->pool, c->base_path, "/", type, "/", id, NULL), *err;
    request_rec *sub = ap_sub_req_method_uri("GET", uri, r, NULL);
    body_copy *body = apr_pcalloc(r->pool, sizeof(*body));
    json_object *j = NULL;

    apr_table_unset(sub->headers_in, "Accept-Encoding");   /* we must read it */
    apr_table_unset(sub->headers_in, "If-Match");
    apr_table_setn(sub->headers_in, "Accept", "application/fhir+json");
    ap_add_output_filter(CAPTURE_PREVIOUS, body, sub, sub->connection);
    if (sub->status == HTTP_OK && ap_run_sub_req(sub) == OK && sub->status == HTTP_OK
        && !body->overflow && body->len
        && APR_SUCCESS == fs_json_parse(&j, r->pool, body->data, body->len, &err)
        && !(j && fs_json_get_str(j, "resourceType")
             && !strcmp(fs_json_get_str(j, "resourceType"), type))) {
        j = NULL;
    }
    ap_destroy_sub_req(sub);
    return j;
}

/* "Type/id" of a path, or NULL (a create, a conditional write, a transaction). */
static int split_instance(apr_pool_t *p, const char *rel, const char **ptype, const char **pid)
{
    const char *slash = strchr(rel, '/');
    if (!slash || strchr(slash + 1, '/') || strchr(rel, '?') || !slash[1]) return 0;
    *ptype = apr_pstrmemdup(p, rel, (apr_size_t)(slash - rel));
    *pid = slash + 1;
    return fs_fhir_id_valid(*pid) && apr_isupper(**ptype);
}

void fhirsub_capture_start(request_rec *r, const fhirsub_dir_conf *c, const char *rel)
{
    capture_ctx *ctx;
    const char *type, *id;

    if (r->main || (r->method_number != M_POST && r->method_number != M_PUT
                    && r->method_number != M_PATCH && r->method_number != M_DELETE)) {
        return;
    }
    ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    ctx->conf = c;
    ctx->rel = rel;
    if (r->method_number != M_POST && split_instance(r->pool, rel, &type, &id)
        && needs_previous(c, type, r->method_number)) {
        ctx->previous = fetch_previous(r, c, type, id);
    }
    ap_set_module_config(r->request_config, &fhirsub_module, ctx);
    ap_add_input_filter(CAPTURE_IN, ctx, r, r->connection);
    ap_add_output_filter(CAPTURE_OUT, ctx, r, r->connection);
}

/* ---- recording, after the answer went out --------------------------------- */

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
    /* The fetched version belongs to the request's own resource, not to bundle entries. */
    if (change.interaction != FS_INTERACTION_CREATE && *ctx->rel) change.previous = ctx->previous;
    for (i = 0; i < subs->nelts; ++i) {
        const fs_sub_t *sub = APR_ARRAY_IDX(subs, i, const fs_sub_t *);
        const fs_topic_t *topic = (sub->topic && ctx->conf->topics)
                                  ? fs_topics_get(ctx->conf->topics, sub->topic) : NULL;
        apr_array_header_t *filters = NULL;
        const char *err = NULL;
        if (sub->topic && !topic) continue;   /* topic not loaded at this location */
        if (APR_SUCCESS != fs_match_sub_filters(&filters, r->pool, sub, &err)) {
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
    /* Conditional writes (PUT Patient?identifier=...) are told by their query. */
    cap.path = r->args ? apr_pstrcat(r->pool, ctx->rel, "?", r->args, NULL) : ctx->rel;
    cap.status = r->status;
    cap.location = apr_table_get(r->headers_out, "Location");
    cap.etag = apr_table_get(r->headers_out, "ETag");
    cap.req_body = ctx->req.data;
    cap.req_len = ctx->req.len;
    cap.req_complete = !ctx->req.overflow;
    cap.resp_body = ctx->resp.data;
    cap.resp_len = ctx->resp.len;
    cap.resp_complete = !ctx->resp.overflow && !ctx->resp_encoded;
    fs_change_derive(&changes, r->pool, &cap, apr_time_now());
    return changes;
}

static void record_change(request_rec *r, const capture_ctx *ctx, fs_store_t *store,
                          apr_array_header_t *subs, const fs_change_t *c)
{
    apr_array_header_t *ids = matching_ids(r, ctx, subs, c);
    apr_status_t rv;

    if (ids->nelts == 0) return;
    rv = fs_event_record(store, r->pool, c, ids);
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
    if (APR_SUCCESS != fs_event_live_subs(store, r->pool, &subs)
        && (!fhirsub_store_recover(r, store)
            || APR_SUCCESS != fs_event_live_subs(store, r->pool, &subs))) {
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
    ap_register_input_filter(CAPTURE_IN, capture_in, NULL, AP_FTYPE_RESOURCE);
    ap_register_output_filter(CAPTURE_OUT, capture_out, NULL, AP_FTYPE_RESOURCE);
    ap_register_output_filter(CAPTURE_PREVIOUS, previous_out, NULL, AP_FTYPE_RESOURCE);
    ap_hook_log_transaction(log_transaction, NULL, NULL, APR_HOOK_MIDDLE);
}
