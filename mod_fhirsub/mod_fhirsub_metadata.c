#include <string.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "fs_capability.h"
#include "fs_json.h"
#include "fs_opdef.h"
#include "mod_fhirsub_http.h"
#include "mod_fhirsub_metadata.h"

APLOG_USE_MODULE(fhirsub);

/* Largest backend CapabilityStatement we buffer to augment; larger ones pass as is. */
#define FHIRSUB_METADATA_MAX (8 * 1024 * 1024)

typedef struct meta_filter_ctx {
    fs_cap_info_t info;           /* what to add */
    apr_bucket_brigade *held;     /* the backend's body so far */
    apr_off_t held_len;           /* its length */
    int pass_through;             /* give up augmenting: forward unchanged */
} meta_filter_ctx;

static void cap_info(const fhirsub_req *q, fs_cap_info_t *info)
{
    int i, n = q->conf->topics ? fs_topics_count(q->conf->topics) : 0;

    memset(info, 0, sizeof(*info));
    info->version = q->version;
    info->websocket_url = q->conf->ws_url;
    info->base_url = q->base_url;
    info->software_version = FHIRSUB_VERSION;
    info->topic_urls = apr_array_make(q->r->pool, n ? n : 1, sizeof(const char *));
    for (i = 0; i < n; ++i) {
        APR_ARRAY_PUSH(info->topic_urls, const char *) = fs_topics_at(q->conf->topics, i)->url;
    }
}

/* Is some other handler (mod_proxy, an in-process FHIR server) going to answer? */
static int backend_answers(request_rec *r)
{
    /* httpd names "no handler" "" (AP_DEFAULT_HANDLER_NAME), older configs
     * "default-handler"; a MIME type set by mod_mime is no handler either. */
    return r->handler && *r->handler && strcmp(r->handler, "default-handler")
           && !ap_strchr_c(r->handler, '/');
}

int fhirsub_metadata_handle(fhirsub_req *q)
{
    json_object *cs = NULL;

    if (q->r->method_number != M_GET) return DECLINED;
    if (backend_answers(q->r)) {
        meta_filter_ctx *ctx = apr_pcalloc(q->r->pool, sizeof(*ctx));
        cap_info(q, &ctx->info);
        /* Compressed answers cannot be augmented: ask the backend for plain JSON. */
        apr_table_unset(q->r->headers_in, "Accept-Encoding");
        ap_add_output_filter(FHIRSUB_METADATA_FILTER, ctx, q->r, q->r->connection);
        return DECLINED;
    }
    if (fhirsub_reject_format(q->r)) return OK;
    {
        fs_cap_info_t info;
        cap_info(q, &info);
        if (APR_SUCCESS != fs_cap_own(&cs, q->r->pool, &info)) {
            return fhirsub_send_error(q->r, HTTP_INTERNAL_SERVER_ERROR, "exception",
                                      "the CapabilityStatement could not be built");
        }
    }
    return fhirsub_send_json(q->r, HTTP_OK, cs);
}

int fhirsub_opdef_handle(fhirsub_req *q)
{
    json_object *od = NULL;

    if (q->r->method_number != M_GET) {
        return fhirsub_send_error(q->r, HTTP_METHOD_NOT_ALLOWED, "not-supported",
                                  "OperationDefinition/%s is read-only", q->id);
    }
    if (fhirsub_reject_format(q->r)) return OK;
    if (APR_SUCCESS != fs_opdef_get(&od, q->r->pool, q->version, q->id)) {
        return fhirsub_send_error(q->r, HTTP_NOT_FOUND, "not-found",
                                  "OperationDefinition/%s not found", q->id);
    }
    return fhirsub_send_json(q->r, HTTP_OK, od);
}

/* ---- augmenting filter --------------------------------------------------- */

static int is_json_response(request_rec *r)
{
    return r->content_type && ap_strcasestr(r->content_type, "json")
           && !apr_table_get(r->headers_out, "Content-Encoding");
}

static apr_status_t augment_and_send(ap_filter_t *f, meta_filter_ctx *ctx,
                                     apr_bucket_brigade *tail)
{
    request_rec *r = f->r;
    char *text = NULL;
    apr_size_t len = 0;
    json_object *cs = NULL;
    const char *err = NULL, *out;
    apr_bucket_brigade *bb;

    if (APR_SUCCESS == apr_brigade_pflatten(ctx->held, &text, &len, r->pool)
        && APR_SUCCESS == fs_json_parse(&cs, r->pool, text, len, &err)
        && APR_SUCCESS == fs_cap_augment(cs, r->pool, &ctx->info, &err)) {
        out = fs_json_str(r->pool, cs);
        bb = apr_brigade_create(r->pool, f->c->bucket_alloc);
        apr_brigade_write(bb, NULL, NULL, out, strlen(out));
        apr_table_unset(r->headers_out, "ETag");
        ap_set_content_length(r, (apr_off_t)strlen(out));
        APR_BRIGADE_CONCAT(bb, tail);
        apr_brigade_cleanup(ctx->held);
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, bb);
    }
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FHIRSUB_LOGNO(10650)
                  "backend CapabilityStatement not augmented: %s", err ? err : "unreadable");
    APR_BRIGADE_CONCAT(ctx->held, tail);
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, ctx->held);
}

static apr_status_t metadata_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    meta_filter_ctx *ctx = f->ctx;
    request_rec *r = f->r;
    apr_bucket *e;
    apr_off_t len = 0;

    if (!ctx->held) {
        if (r->status != HTTP_OK || !is_json_response(r)) {
            ap_remove_output_filter(f);
            return ap_pass_brigade(f->next, bb);
        }
        ctx->held = apr_brigade_create(r->pool, f->c->bucket_alloc);
    }
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = APR_BUCKET_NEXT(e)) {
        if (APR_BUCKET_IS_EOS(e)) {
            apr_bucket_brigade *tail = apr_brigade_split(bb, e);
            APR_BRIGADE_CONCAT(ctx->held, bb);
            return augment_and_send(f, ctx, tail);
        }
    }
    apr_brigade_length(bb, 1, &len);
    ctx->held_len += len;
    if (APR_SUCCESS != ap_save_brigade(f, &ctx->held, &bb, r->pool)) return APR_EGENERAL;
    if (ctx->held_len > FHIRSUB_METADATA_MAX) {
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, FHIRSUB_LOGNO(10651)
                      "backend CapabilityStatement larger than %d bytes: not augmented",
                      FHIRSUB_METADATA_MAX);
        ap_remove_output_filter(f);
        return ap_pass_brigade(f->next, ctx->held);
    }
    return APR_SUCCESS;
}

void fhirsub_metadata_register_hooks(void)
{
    ap_register_output_filter(FHIRSUB_METADATA_FILTER, metadata_filter, NULL,
                              AP_FTYPE_RESOURCE);
}
