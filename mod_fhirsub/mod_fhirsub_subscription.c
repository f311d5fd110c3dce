#include <string.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>
#include <http_protocol.h>

#include "fs_id.h"
#include "fs_json.h"
#include "fs_params.h"
#include "fs_status.h"
#include "fs_time.h"
#include "mod_fhirsub_http.h"
#include "mod_fhirsub_subscription.h"

APLOG_USE_MODULE(fhirsub);

void fhirsub_sub_policy(const fhirsub_req *q, fs_sub_policy_t *policy)
{
    const fhirsub_dir_conf *c = q->conf;
    memset(policy, 0, sizeof(*policy));
    policy->version = q->version;
    policy->topics = c->topics;
    policy->allowed_content = fhirsub_conf_allowed_content(c);
    policy->min_heartbeat = c->heartbeat_min == FHIRSUB_UNSET
        ? FHIRSUB_DEFAULT_HEARTBEAT_MIN : c->heartbeat_min;
    policy->max_heartbeat = c->heartbeat_max == FHIRSUB_UNSET
        ? FHIRSUB_DEFAULT_HEARTBEAT_MAX : c->heartbeat_max;
}

static const char *location_of(fhirsub_req *q, const fs_sub_t *sub)
{
    return apr_psprintf(q->r->pool, "%s/Subscription/%s/_history/%" APR_INT64_T_FMT,
                        q->base_url, sub->id, sub->version_id);
}

static int send_sub(fhirsub_req *q, int status, const fs_sub_t *sub)
{
    json_object *j;
    if (APR_SUCCESS != fs_sub_to_json(&j, q->r->pool, sub, q->now)) {
        return fhirsub_send_error(q->r, HTTP_INTERNAL_SERVER_ERROR, "exception",
                                  "stored Subscription %s cannot be read", sub->id);
    }
    apr_table_setn(q->r->headers_out, "ETag",
                   apr_psprintf(q->r->pool, "W/\"%" APR_INT64_T_FMT "\"", sub->version_id));
    apr_table_setn(q->r->headers_out, "Last-Modified", ap_ht_time(q->r->pool,
                   sub->updated, "%a, %d %b %Y %H:%M:%S GMT", 1));
    return fhirsub_send_json(q->r, status, j);
}

static int send_problem(fhirsub_req *q, const fs_sub_problem_t *prob)
{
    return fhirsub_send_error(q->r, prob->http_status, prob->code, "%s", prob->text);
}

/* The path of an absolute URL ("https://h:1/fhir/R4" -> "/fhir/R4"). */
static const char *url_path(const char *url)
{
    const char *s = strstr(url, "://");
    s = s ? strchr(s + 3, '/') : url;
    return s ? s : "";
}

int fhirsub_sub_visible(const fhirsub_req *q, const fs_sub_t *sub)
{
    /* Another user's subscription, or one of another FHIR base on this server, is
     * not there for this request. The base is compared by path: the host name a
     * client used may differ between requests. */
    return !strcmp(sub->owner, q->user)
           && !strcmp(url_path(sub->base_url), url_path(q->base_url));
}

fs_sub_t *fhirsub_sub_owned(fhirsub_req *q, const char *id, fs_sub_t *sub, apr_status_t rv,
                            int *pdone)
{
    if (rv == APR_SUCCESS && (!sub || !fhirsub_sub_visible(q, sub))) rv = APR_NOTFOUND;
    if (rv == APR_NOTFOUND) {
        *pdone = fhirsub_send_error(q->r, HTTP_NOT_FOUND, "not-found",
                                    "Subscription/%s not found", id);
        return NULL;
    }
    if (rv != APR_SUCCESS) {
        *pdone = fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                                    "reading Subscription/%s failed; retry later", id);
        return NULL;
    }
    return sub;
}

fs_sub_t *fhirsub_sub_load_owned(fhirsub_req *q, fs_store_t *store, const char *id,
                                 int *pdone)
{
    fs_sub_t *sub = NULL;
    apr_status_t rv;

    if (!fs_fhir_id_valid(id)) {
        *pdone = fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "invalid",
                                    "'%s' is not a valid FHIR id", id);
        return NULL;
    }
    rv = fs_store_sub_get(store, q->r->pool, id, &sub);
    return fhirsub_sub_owned(q, id, sub, rv, pdone);
}

/* ---- create ------------------------------------------------------------- */

static int create(fhirsub_req *q, fs_store_t *store)
{
    fs_sub_policy_t policy;
    fs_sub_problem_t prob;
    json_object *body;
    fs_sub_t *sub;
    int done = OK;

    if (APR_SUCCESS != fhirsub_read_json(q->r, q->conf, &body, &done)) return done;
    fhirsub_sub_policy(q, &policy);
    if (APR_SUCCESS != fs_sub_parse(&sub, &prob, q->r->pool, body, &policy, q->now)) {
        return send_problem(q, &prob);
    }
    if (!q->conf->ws_url) {
        /* websocket is the only channel: without it nothing could be delivered. */
        return fhirsub_send_error(q->r, 422, "not-supported", "WebSocket subscriptions "
                                  "not enabled for this endpoint (no FhirSubWebSocketURL)");
    }
    if (APR_SUCCESS != fs_id_new(&sub->id, q->r->pool)) {
        return fhirsub_send_error(q->r, HTTP_INTERNAL_SERVER_ERROR, "exception",
                                  "no random source for a new id");
    }
    sub->owner = q->user;
    sub->base_url = q->base_url;
    sub->version_id = 1;
    sub->created = sub->updated = q->now;
    if (APR_SUCCESS != fs_store_sub_insert(store, q->r->pool, sub)) {
        return fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                                  "storing the Subscription failed; retry later");
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, FHIRSUB_LOGNO(10630)
                  "Subscription/%s created for %s (%s)", sub->id, sub->owner, sub->criteria);
    apr_table_setn(q->r->headers_out, "Location", location_of(q, sub));
    return send_sub(q, HTTP_CREATED, sub);
}

/* ---- search ------------------------------------------------------------- */

static const char *const search_params[] = {
    "_id", "status", "type", "url", "criteria", "topic", "_count", NULL
};

typedef struct search_t {
    apr_array_header_t *ids, *statuses, *types, *urls, *criteria;
} search_t;

static int search_match(fhirsub_req *q, const search_t *s, const fs_sub_t *sub)
{
    return fs_params_list_matches(s->ids, sub->id)
        && fs_params_list_matches(s->statuses, fs_sub_effective_status(sub, q->now))
        && fs_params_list_matches(s->types, sub->channel_type)
        && fs_params_list_matches(s->urls, sub->topic ? sub->topic : sub->criteria)
        && fs_params_list_matches(s->criteria, sub->criteria);
}

static apr_status_t read_search(fhirsub_req *q, fs_params_t *pp, search_t *s,
                                const char **perr)
{
    apr_pool_t *p = q->r->pool;
    apr_status_t rv;
    apr_array_header_t *topics;

    memset(s, 0, sizeof(*s));
    if (APR_SUCCESS != (rv = fs_params_check(pp, search_params, perr))) return rv;
    if (APR_SUCCESS != (rv = fs_params_values_split(&s->ids, pp, p, "_id", perr))
        || APR_SUCCESS != (rv = fs_params_values_split(&s->statuses, pp, p, "status", perr))
        || APR_SUCCESS != (rv = fs_params_values_split(&s->types, pp, p, "type", perr))
        || APR_SUCCESS != (rv = fs_params_values_split(&s->urls, pp, p, "url", perr))
        || APR_SUCCESS != (rv = fs_params_values_split(&topics, pp, p, "topic", perr))) {
        return rv;
    }
    /* R4 `criteria` values may hold commas inside a search; take them whole. */
    s->criteria = fs_params_values(pp, p, "criteria");
    apr_array_cat(s->urls, topics);
    return APR_SUCCESS;
}

static json_object *search_entry(fhirsub_req *q, const fs_sub_t *sub)
{
    json_object *entry = json_object_new_object(), *res = NULL, *mode;
    fs_json_add_str(entry, "fullUrl", apr_pstrcat(q->r->pool, q->base_url,
                                                  "/Subscription/", sub->id, NULL));
    if (APR_SUCCESS == fs_sub_to_json(&res, q->r->pool, sub, q->now)) {
        json_object_object_add(entry, "resource", json_object_get(res));
    }
    mode = json_object_new_object();
    fs_json_add_str(mode, "mode", "match");
    json_object_object_add(entry, "search", mode);
    return entry;
}

static int search(fhirsub_req *q, fs_store_t *store)
{
    fs_params_t *pp = NULL;
    apr_array_header_t *subs;
    json_object *bundle, *entries;
    search_t s;
    const char *err = NULL;
    int done = OK, i, total = 0;

    if (APR_SUCCESS != fhirsub_read_params(q->r, q->conf, &pp, &done)) return done;
    if (APR_SUCCESS != read_search(q, pp, &s, &err)) {
        return fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "not-supported", "%s", err);
    }
    if (APR_SUCCESS != fs_store_sub_list_owner(store, q->r->pool, q->user, &subs)) {
        return fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                                  "searching Subscriptions failed; retry later");
    }
    bundle = fs_json_pool_own(q->r->pool, json_object_new_object());
    entries = json_object_new_array();
    fs_json_add_str(bundle, "resourceType", "Bundle");
    fs_json_add_str(bundle, "type", "searchset");
    for (i = 0; i < subs->nelts; ++i) {
        const fs_sub_t *sub = APR_ARRAY_IDX(subs, i, const fs_sub_t *);
        if (!fhirsub_sub_visible(q, sub) || !search_match(q, &s, sub)) continue;
        json_object_array_add(entries, search_entry(q, sub));
        ++total;
    }
    json_object_object_add(bundle, "total", json_object_new_int(total));
    if (total) json_object_object_add(bundle, "entry", entries);
    else json_object_put(entries);  /* FHIR JSON has no empty arrays */
    return fhirsub_send_json(q->r, HTTP_OK, bundle);
}

int fhirsub_sub_type(fhirsub_req *q)
{
    apr_size_t n = strlen(q->r->uri);
    int is_search_post = q->r->method_number == M_POST && n >= 8
                         && !strcmp(q->r->uri + n - 8, "/_search");
    fs_store_t *store;
    int done = OK;

    if (q->r->method_number != M_GET && q->r->method_number != M_POST) {
        return fhirsub_send_error(q->r, HTTP_METHOD_NOT_ALLOWED, "not-supported",
                                  "%s is not allowed on Subscription", q->r->method);
    }
    if (!fhirsub_req_user(q, &done) || !(store = fhirsub_req_store(q, &done))) return done;
    if (q->r->method_number == M_POST && !is_search_post) return create(q, store);
    return search(q, store);
}

/* ---- read, update, delete ----------------------------------------------- */

/* If-Match, when sent, must name the current version (else 412 is answered). */
static int if_match_ok(fhirsub_req *q, const fs_sub_t *sub, int *pdone)
{
    const char *if_match = apr_table_get(q->r->headers_in, "If-Match");
    if (!if_match || !strcmp(if_match, "*") || !strcmp(if_match, apr_psprintf(q->r->pool,
        "W/\"%" APR_INT64_T_FMT "\"", sub->version_id))) {
        return 1;
    }
    *pdone = fhirsub_send_error(q->r, HTTP_PRECONDITION_FAILED, "conflict", "If-Match %s "
                                "does not match version %" APR_INT64_T_FMT, if_match,
                                sub->version_id);
    return 0;
}

static int update(fhirsub_req *q, fs_store_t *store, fs_sub_t *old)
{
    fs_sub_policy_t policy;
    fs_sub_problem_t prob;
    json_object *body;
    const char *body_id;
    fs_sub_t *sub;
    apr_status_t rv;
    int done = OK;

    if (APR_SUCCESS != fhirsub_read_json(q->r, q->conf, &body, &done)) return done;
    body_id = fs_json_get_str(body, "id");
    if (!body_id || strcmp(body_id, old->id)) {
        return fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "invalid", "the resource id "
                                  "'%s' must equal the id in the URL '%s'",
                                  body_id ? body_id : "(none)", old->id);
    }
    if (!if_match_ok(q, old, &done)) return done;
    fhirsub_sub_policy(q, &policy);
    if (APR_SUCCESS != fs_sub_parse(&sub, &prob, q->r->pool, body, &policy, q->now)) {
        return send_problem(q, &prob);
    }
    sub->id = old->id;
    sub->owner = old->owner;
    sub->base_url = old->base_url;
    sub->created = old->created;
    sub->events_since_start = old->events_since_start;
    sub->version_id = old->version_id + 1;
    sub->updated = q->now;
    rv = fs_store_sub_update(store, q->r->pool, sub, old->version_id);
    if (rv == APR_EEXIST || rv == APR_NOTFOUND) {
        return fhirsub_send_error(q->r, HTTP_CONFLICT, "conflict", "Subscription/%s was "
                                  "changed or deleted concurrently; read it and retry",
                                  old->id);
    }
    if (rv != APR_SUCCESS) {
        return fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                                  "updating Subscription/%s failed; retry later", old->id);
    }
    return send_sub(q, HTTP_OK, sub);
}

static int delete(fhirsub_req *q, fs_store_t *store, fs_sub_t *sub)
{
    apr_status_t rv;
    int done = OK;

    if (!if_match_ok(q, sub, &done)) return done;
    rv = fs_store_sub_delete(store, q->r->pool, sub->id, q->user);
    if (rv != APR_SUCCESS && rv != APR_NOTFOUND) {
        return fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                                  "deleting Subscription/%s failed; retry later", sub->id);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, FHIRSUB_LOGNO(10631)
                  "Subscription/%s deleted by %s", sub->id, q->user);
    q->r->status = HTTP_NO_CONTENT;
    return OK;
}

int fhirsub_sub_instance(fhirsub_req *q)
{
    fs_store_t *store;
    fs_sub_t *sub;
    int done = OK;

    if (q->r->method_number != M_GET && q->r->method_number != M_PUT
        && q->r->method_number != M_DELETE) {
        return fhirsub_send_error(q->r, HTTP_METHOD_NOT_ALLOWED, "not-supported",
                                  "%s is not allowed on Subscription/[id]", q->r->method);
    }
    if (!fhirsub_req_user(q, &done) || !(store = fhirsub_req_store(q, &done))
        || !(sub = fhirsub_sub_load_owned(q, store, q->id, &done))) {
        return done;
    }
    switch (q->r->method_number) {
    case M_PUT: return update(q, store, sub);
    case M_DELETE: return delete(q, store, sub);
    default: return send_sub(q, HTTP_OK, sub);
    }
}

int fhirsub_sub_vread(fhirsub_req *q)
{
    fs_store_t *store;
    fs_sub_t *sub;
    int done = OK;

    if (q->r->method_number != M_GET) {
        return fhirsub_send_error(q->r, HTTP_METHOD_NOT_ALLOWED, "not-supported",
                                  "%s is not allowed on a Subscription version",
                                  q->r->method);
    }
    if (!fhirsub_req_user(q, &done) || !(store = fhirsub_req_store(q, &done))
        || !(sub = fhirsub_sub_load_owned(q, store, q->id, &done))) {
        return done;
    }
    /* Only the current version is kept. */
    if (strcmp(q->vid, apr_psprintf(q->r->pool, "%" APR_INT64_T_FMT, sub->version_id))) {
        return fhirsub_send_error(q->r, HTTP_NOT_FOUND, "not-found", "Subscription/%s "
                                  "version %s is not available (current: %" APR_INT64_T_FMT
                                  ")", sub->id, q->vid, sub->version_id);
    }
    return send_sub(q, HTTP_OK, sub);
}
