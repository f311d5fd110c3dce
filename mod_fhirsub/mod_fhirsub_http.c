#include <apr_strings.h>
#include <httpd.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "fs_json.h"
#include "fs_oo.h"
#include "mod_fhirsub_http.h"

APLOG_USE_MODULE(fhirsub);

int fhirsub_send_json(request_rec *r, int status, json_object *j)
{
    const char *text = fs_json_str(r->pool, j);
    apr_size_t len = strlen(text);

    r->status = status;
    ap_set_content_type(r, "application/fhir+json;charset=utf-8");
    ap_set_content_length(r, (apr_off_t)len);
    if (!r->header_only) ap_rwrite(text, (int)len, r);
    return OK;
}

int fhirsub_send_error(request_rec *r, int status, const char *code, const char *fmt, ...)
{
    const char *text;
    va_list ap;

    va_start(ap, fmt);
    text = apr_pvsprintf(r->pool, fmt, ap);
    va_end(ap);
    ap_log_rerror(APLOG_MARK, status >= 500 ? APLOG_ERR : APLOG_DEBUG, 0, r,
                  FHIRSUB_LOGNO(10610) "answering %d %s: %s", status, code, text);
    if (status == HTTP_UNAUTHORIZED) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", "Basic realm=\"FHIR\"");
    }
    return fhirsub_send_json(r, status, fs_oo_make(r->pool, code ? code :
                             fs_oo_code_for_status(status), text));
}

static int content_type_is_json(const char *ct)
{
    apr_size_t n;
    if (!ct) return 1;  /* many clients omit it; the body is still parsed strictly */
    n = strcspn(ct, "; ");
    return (n == 21 && !strncasecmp(ct, "application/fhir+json", n))
        || (n == 16 && !strncasecmp(ct, "application/json", n));
}

/* Read at most max bytes of body into *pbuf; APR_ENOSPC when there is more. */
static apr_status_t read_body(request_rec *r, apr_off_t max, char **pbuf, apr_size_t *plen)
{
    apr_size_t cap = 8192, len = 0;
    char *buf = apr_palloc(r->pool, cap);
    long n;

    int rc = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);
    /* Content-Length over LimitRequestBody: too large, like over our own bound. */
    if (rc == HTTP_REQUEST_ENTITY_TOO_LARGE) return APR_ENOSPC;
    if (rc != OK) return APR_EGENERAL;
    if (!ap_should_client_block(r)) {
        *pbuf = buf;
        *plen = 0;
        return APR_SUCCESS;
    }
    for (;;) {
        if (len == cap) {
            char *bigger;
            if ((apr_off_t)cap > max) return APR_ENOSPC;
            bigger = apr_palloc(r->pool, cap * 2);
            memcpy(bigger, buf, len);
            buf = bigger;
            cap *= 2;
        }
        n = ap_get_client_block(r, buf + len, cap - len);
        if (n < 0) {
            /* A chunked body over LimitRequestBody ends the same way. */
            return (r->status == HTTP_REQUEST_ENTITY_TOO_LARGE) ? APR_ENOSPC : APR_EGENERAL;
        }
        if (n == 0) break;
        len += (apr_size_t)n;
        if ((apr_off_t)len > max) return APR_ENOSPC;
    }
    *pbuf = buf;
    *plen = len;
    return APR_SUCCESS;
}

/* The answer for a body that could not be read whole. */
static int body_error(request_rec *r, apr_status_t rv, apr_off_t max)
{
    r->connection->keepalive = AP_CONN_CLOSE;
    if (rv == APR_ENOSPC) {
        return fhirsub_send_error(r, HTTP_REQUEST_ENTITY_TOO_LARGE, "too-costly",
                                  "request body larger than %" APR_OFF_T_FMT " bytes "
                                  "(FhirSubMaxBodySize or LimitRequestBody)", max);
    }
    return fhirsub_send_error(r, HTTP_BAD_REQUEST, "invalid",
                              "the request body could not be read");
}

apr_status_t fhirsub_read_json(request_rec *r, const fhirsub_dir_conf *c, json_object **pj,
                               int *pdone)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type"), *err = NULL;
    apr_off_t max = fhirsub_conf_max_body(c);
    char *buf = NULL;
    apr_size_t len = 0;
    apr_status_t rv;

    *pj = NULL;
    if (!content_type_is_json(ct)) {
        *pdone = fhirsub_send_error(r, HTTP_UNSUPPORTED_MEDIA_TYPE, "not-supported",
                                    "Content-Type '%s' is not supported; send "
                                    "application/fhir+json", ct);
        return APR_EINVAL;
    }
    rv = read_body(r, max, &buf, &len);
    if (rv != APR_SUCCESS) {
        *pdone = body_error(r, rv, max);
        return rv;
    }
    if (APR_SUCCESS != (rv = fs_json_parse(pj, r->pool, buf, len, &err))) {
        *pdone = fhirsub_send_error(r, HTTP_BAD_REQUEST, "structure", "%s", err);
    }
    return rv;
}

static int wants_only_xml(const char *v)
{
    return v && ap_strcasestr(v, "xml") && !ap_strcasestr(v, "json") && !strstr(v, "*/*");
}

int fhirsub_reject_format(request_rec *r)
{
    fs_params_t *pp = NULL;
    const char *err, *format = NULL;

    if (r->args && APR_SUCCESS == fs_params_from_query(&pp, r->pool, r->args, &err)) {
        format = fs_params_get(pp, "_format");
    }
    if (format && strcasecmp(format, "json") && !ap_strcasestr(format, "json")) {
        fhirsub_send_error(r, HTTP_NOT_ACCEPTABLE, "not-supported", "_format '%s' is not "
                           "supported; this endpoint serves JSON only", format);
        return 1;
    }
    if (!format && wants_only_xml(apr_table_get(r->headers_in, "Accept"))) {
        fhirsub_send_error(r, HTTP_NOT_ACCEPTABLE, "not-supported",
                           "this endpoint serves application/fhir+json only");
        return 1;
    }
    return 0;
}

static int is_form(const char *ct)
{
    return ct && !strncasecmp(ct, "application/x-www-form-urlencoded", 33);
}

static int has_body(request_rec *r)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    return apr_table_get(r->headers_in, "Transfer-Encoding") || (cl && strcmp(cl, "0"));
}

apr_status_t fhirsub_read_params(request_rec *r, const fhirsub_dir_conf *c,
                                 fs_params_t **pp, int *pdone)
{
    const char *ct = apr_table_get(r->headers_in, "Content-Type"), *err = NULL;
    fs_params_t *body_params = NULL;
    json_object *body = NULL;
    apr_status_t rv;
    int i;

    if (APR_SUCCESS != fs_params_from_query(pp, r->pool, r->args ? r->args : "", &err)) {
        *pdone = fhirsub_send_error(r, HTTP_BAD_REQUEST, "invalid", "query: %s", err);
        return APR_EINVAL;
    }
    if (r->method_number != M_POST || !has_body(r)) return APR_SUCCESS;
    if (is_form(ct)) {
        char *buf = NULL;
        apr_size_t len = 0;
        if (APR_SUCCESS != (rv = read_body(r, fhirsub_conf_max_body(c), &buf, &len))) {
            *pdone = body_error(r, rv, fhirsub_conf_max_body(c));
            return rv;
        }
        if (APR_SUCCESS != fs_params_from_query(&body_params, r->pool,
                                                apr_pstrmemdup(r->pool, buf, len), &err)) {
            *pdone = fhirsub_send_error(r, HTTP_BAD_REQUEST, "invalid", "form body: %s", err);
            return APR_EINVAL;
        }
    }
    else {
        if (APR_SUCCESS != (rv = fhirsub_read_json(r, c, &body, pdone))) return rv;
        if (APR_SUCCESS != fs_params_from_body(&body_params, r->pool, body, &err)) {
            *pdone = fhirsub_send_error(r, HTTP_BAD_REQUEST, "invalid", "%s", err);
            return APR_EINVAL;
        }
    }
    for (i = 0; i < body_params->items->nelts; ++i) {
        fs_param_t *it = &APR_ARRAY_IDX(body_params->items, i, fs_param_t);
        fs_params_add(*pp, it->name, it->value);
    }
    return APR_SUCCESS;
}

const char *fhirsub_principal(request_rec *r, const fhirsub_dir_conf *c, int *pdone)
{
    if (r->user && *r->user) return r->user;
    if (c->anonymous == 1) return fhirsub_conf_anon_user(c);
    *pdone = fhirsub_send_error(r, HTTP_UNAUTHORIZED, "login", "authentication required: "
                                "configure an Apache auth module for this location, or "
                                "FhirSubAnonymous On");
    return NULL;
}

const char *fhirsub_base_url(request_rec *r, const fhirsub_dir_conf *c)
{
    const char *base = c->server_base;
    char *url;
    apr_size_t n;

    if (base) return base;
    url = ap_construct_url(r->pool, c->base_path, r);
    n = strlen(url);
    while (n > 0 && url[n - 1] == '/') url[--n] = '\0';
    return url;
}
