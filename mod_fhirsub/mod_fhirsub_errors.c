#include <string.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <util_filter.h>

#include "fs_json.h"
#include "fs_oo.h"
#include "mod_fhirsub_config.h"
#include "mod_fhirsub_errors.h"
#include "mod_fhirsub_route.h"

extern module AP_MODULE_DECLARE_DATA fhirsub_module;

APLOG_USE_MODULE(fhirsub);

#define FHIRSUB_ERROR_FILTER "FHIRSUB_ERROR"

static const char *error_text(int status)
{
    switch (status) {
    case HTTP_BAD_REQUEST: return "the request is malformed";
    case HTTP_UNAUTHORIZED: return "authentication required";
    case HTTP_FORBIDDEN: return "access to this resource is forbidden";
    case HTTP_NOT_FOUND: return "not found";
    case HTTP_METHOD_NOT_ALLOWED: return "method not allowed here";
    case HTTP_REQUEST_TIME_OUT: return "the request took too long to arrive";
    case HTTP_LENGTH_REQUIRED: return "a Content-Length is required";
    case HTTP_REQUEST_ENTITY_TOO_LARGE: return "the request body is too large";
    case HTTP_REQUEST_URI_TOO_LARGE: return "the request URI is too long";
    case HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE: return "request header fields too large";
    case HTTP_BAD_GATEWAY: return "the FHIR server behind this endpoint gave no valid answer";
    case HTTP_SERVICE_UNAVAILABLE: return "the service is temporarily unavailable";
    case HTTP_GATEWAY_TIME_OUT: return "the FHIR server behind this endpoint timed out";
    default: return status >= 500 ? "internal server error" : "the request was refused";
    }
}

/* Path of the request line, for errors raised before the URI was parsed (414). */
static const char *request_line_path(request_rec *r)
{
    const char *line = r->the_request, *sp;
    if (!line || !(sp = strchr(line, ' '))) return "";
    return sp + 1;
}

/* Under a FHIR base? The merged location config knows, unless the error came before
 * the location walk; then compare the request line with the configured bases. */
static int under_fhir_base(request_rec *r)
{
    fhirsub_dir_conf *c = ap_get_module_config(r->per_dir_config, &fhirsub_module);
    fhirsub_srv_conf *sc = ap_get_module_config(r->server->module_config, &fhirsub_module);
    const char *path = (r->uri && *r->uri) ? r->uri : request_line_path(r);
    int i;

    if (c && c->enabled == 1) return 1;
    for (i = 0; sc && i < sc->locations->nelts; ++i) {
        const fhirsub_dir_conf *loc = APR_ARRAY_IDX(sc->locations, i, fhirsub_dir_conf *);
        if (fhirsub_path_below(path, loc->base_path)) return 1;
    }
    return 0;
}

static apr_status_t error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    request_rec *r = f->r;
    apr_bucket *e;

    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = APR_BUCKET_NEXT(e)) {
        if (APR_BUCKET_IS_EOS(e)) {
            json_object *oo = fs_oo_make(r->pool, fs_oo_code_for_status(r->status),
                                         error_text(r->status));
            const char *body = fs_json_str(r->pool, oo);
            apr_bucket_brigade *out = apr_brigade_create(r->pool, f->c->bucket_alloc);
            apr_brigade_cleanup(bb);
            ap_set_content_type(r, "application/fhir+json;charset=utf-8");
            ap_set_content_length(r, (apr_off_t)strlen(body));
            if (!r->header_only) apr_brigade_write(out, NULL, NULL, body, strlen(body));
            APR_BRIGADE_INSERT_TAIL(out, apr_bucket_eos_create(f->c->bucket_alloc));
            ap_remove_output_filter(f);
            return ap_pass_brigade(f->next, out);
        }
    }
    /* Drop Apache's HTML until the end of the response arrives. */
    apr_brigade_cleanup(bb);
    return APR_SUCCESS;
}

static void insert_error_filter(request_rec *r)
{
    if (ap_is_HTTP_ERROR(r->status) && under_fhir_base(r)) {
        ap_add_output_filter(FHIRSUB_ERROR_FILTER, NULL, r, r->connection);
    }
}

void fhirsub_errors_register_hooks(void)
{
    ap_register_output_filter(FHIRSUB_ERROR_FILTER, error_filter, NULL,
                              AP_FTYPE_CONTENT_SET);
    ap_hook_insert_error_filter(insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
}
