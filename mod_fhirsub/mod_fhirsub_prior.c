#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_request.h>
#include <util_filter.h>

#include "fs_prior.h"
#include "mod_fhirsub_copy.h"
#include "mod_fhirsub_prior.h"

APLOG_USE_MODULE(fhirsub);

#define PRIOR_OUT "FHIRSUB_PRIOR_OUT"

/* Swallows the answer of a read into its fhirsub_copy. */
static apr_status_t prior_out(ap_filter_t *f, apr_bucket_brigade *bb)
{
    fhirsub_copy_brigade(f->ctx, f->r->pool, bb);
    apr_brigade_cleanup(bb);
    return APR_SUCCESS;
}

/* Request headers that would make the read conditional or partial (the write's own
 * If-Match, a Range...): the read wants the current version, whole. */
static void plain_get_headers(apr_table_t *h)
{
    static const char *const drop[] = { "If-Match", "If-None-Match", "If-Modified-Since",
                                        "If-Unmodified-Since", "If-None-Exist", "If-Range",
                                        "Range", "Accept-Encoding", NULL };
    int i;
    for (i = 0; drop[i]; ++i) apr_table_unset(h, drop[i]);
    apr_table_setn(h, "Accept", "application/fhir+json");
}

static void read_one(request_rec *r, const fhirsub_dir_conf *c, fs_prior_t *pr)
{
    const char *uri = pr->id
        ? apr_pstrcat(r->pool, c->base_path, "/", pr->type, "/", pr->id, NULL)
        : apr_pstrcat(r->pool, c->base_path, "/", pr->type, "?", pr->query, NULL);
    request_rec *sub = ap_sub_req_method_uri("GET", uri, r, NULL);
    fhirsub_copy *body = fhirsub_copy_make(r->pool, fhirsub_conf_capture_max(c));
    int status = sub->status;

    plain_get_headers(sub->headers_in);
    ap_add_output_filter(PRIOR_OUT, body, sub, sub->connection);
    if (status == HTTP_OK) {
        int rc = ap_run_sub_req(sub);
        status = rc == OK ? sub->status : rc;
    }
    fs_prior_answer(pr, r->pool, status, body->data, body->len, !body->overflow);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, FHIRSUB_LOGNO(10666)
                  "read before the write: GET %s: %d, %d found%s", uri, status,
                  pr->found->nelts, pr->complete ? "" : " (incomplete)");
    ap_destroy_sub_req(sub);
}

apr_array_header_t *fhirsub_prior_read(request_rec *r, const fhirsub_dir_conf *c,
                                       const char *path, json_object *bundle)
{
    apr_array_header_t *priors = NULL;
    int i;

    fs_prior_plan(&priors, r->pool, r->method, path, bundle, c->topics);
    for (i = 0; i < priors->nelts; ++i) read_one(r, c, APR_ARRAY_IDX(priors, i, fs_prior_t *));
    return priors;
}

void fhirsub_prior_register_hooks(void)
{
    ap_register_output_filter(PRIOR_OUT, prior_out, NULL, AP_FTYPE_RESOURCE);
}
