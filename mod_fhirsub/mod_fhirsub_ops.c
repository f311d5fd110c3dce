#include <string.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>
#include <http_protocol.h>

#include "fs_fhir.h"
#include "fs_id.h"
#include "fs_json.h"
#include "fs_notify.h"
#include "fs_opdef.h"
#include "fs_params.h"
#include "fs_status.h"
#include "fs_time.h"
#include "fs_token.h"
#include "mod_fhirsub_http.h"
#include "mod_fhirsub_store.h"
#include "mod_fhirsub_subscription.h"
#include "mod_fhirsub_ops.h"

APLOG_USE_MODULE(fhirsub);

/* Most subscriptions one token may cover: keeps tokens (and bind work) bounded. */
#define FHIRSUB_TOKEN_MAX_SUBS 100

static void add_param(json_object *params, const char *name, const char *vkey,
                      const char *value)
{
    json_object *param = json_object_new_object();
    fs_json_add_str(param, "name", name);
    fs_json_add_str(param, vkey, value);
    json_object_array_add(params, param);
}

/* ---- $get-ws-binding-token ---------------------------------------------- */

/* The ids asked for: the URL's at instance level, else `id` (and the older `ids`). */
static apr_status_t token_ids(fhirsub_req *q, fs_params_t *pp, apr_array_header_t **pids,
                              const char **perr)
{
    static const char *const allowed[] = { "id", "ids", NULL };
    apr_array_header_t *older = NULL;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = fs_params_check(pp, allowed, perr))) return rv;
    if (q->id) {
        /* At instance level the `id` parameter is ignored, as the definition says. */
        *pids = apr_array_make(q->r->pool, 1, sizeof(const char *));
        APR_ARRAY_PUSH(*pids, const char *) = q->id;
        return APR_SUCCESS;
    }
    if (APR_SUCCESS != (rv = fs_params_values_split(pids, pp, q->r->pool, "id", perr))
        || APR_SUCCESS != (rv = fs_params_values_split(&older, pp, q->r->pool, "ids",
                                                       perr))) {
        return rv;
    }
    apr_array_cat(*pids, older);
    return APR_SUCCESS;
}

/* The ids, each once, in the order asked. */
static apr_array_header_t *unique_ids(apr_pool_t *p, const apr_array_header_t *ids)
{
    apr_array_header_t *unique = apr_array_make(p, ids->nelts, sizeof(const char *));
    int i, j, dup;

    for (i = 0; i < ids->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        for (dup = 0, j = 0; j < unique->nelts; ++j) {
            dup |= !strcmp(APR_ARRAY_IDX(unique, j, const char *), id);
        }
        if (!dup) APR_ARRAY_PUSH(unique, const char *) = id;
    }
    return unique;
}

/* May the caller's sub be bound with a token now? Answers 400 when not. */
static int token_sub_usable(fhirsub_req *q, const fs_sub_t *sub, int *pdone)
{
    if (strcmp(sub->channel_type, "websocket")) {
        *pdone = fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "invalid", "Subscription/%s "
                                    "does not use the websocket channel", sub->id);
        return 0;
    }
    if (!strcmp(fs_sub_effective_status(sub, q->now), "off")) {
        *pdone = fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "business-rule",
                                    "Subscription/%s is off", sub->id);
        return 0;
    }
    return 1;
}

/* Check each named subscription (ids unique); answers and returns NULL on the first
 * problem. */
static apr_array_header_t *token_subs_named(fhirsub_req *q, fs_store_t *store,
                                            apr_array_header_t *ids, int *pdone)
{
    apr_array_header_t *subs = apr_array_make(q->r->pool, ids->nelts, sizeof(fs_sub_t *));
    int i;

    for (i = 0; i < ids->nelts; ++i) {
        fs_sub_t *sub = fhirsub_sub_load_owned(q, store, APR_ARRAY_IDX(ids, i, const char *),
                                               pdone);
        if (!sub || !token_sub_usable(q, sub, pdone)) return NULL;
        APR_ARRAY_PUSH(subs, fs_sub_t *) = sub;
    }
    return subs;
}

/* No ids: every websocket subscription of the caller that is not off. */
static apr_array_header_t *token_subs_all(fhirsub_req *q, fs_store_t *store, int *pdone)
{
    apr_array_header_t *all, *subs;
    int i;

    if (APR_SUCCESS != fs_store_sub_list_owner(store, q->r->pool, q->user, &all)) {
        *pdone = fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                                    "reading Subscriptions failed; retry later");
        return NULL;
    }
    subs = apr_array_make(q->r->pool, all->nelts, sizeof(fs_sub_t *));
    for (i = 0; i < all->nelts; ++i) {
        fs_sub_t *sub = APR_ARRAY_IDX(all, i, fs_sub_t *);
        if (fhirsub_sub_visible(q, sub) && !strcmp(sub->channel_type, "websocket")
            && strcmp(fs_sub_effective_status(sub, q->now), "off")) {
            APR_ARRAY_PUSH(subs, fs_sub_t *) = sub;
        }
    }
    if (subs->nelts == 0) {
        *pdone = fhirsub_send_error(q->r, HTTP_NOT_FOUND, "not-found", "no active "
                                    "websocket Subscription for this user; create one first");
        return NULL;
    }
    return subs;
}

static int send_token(fhirsub_req *q, const char *token, const fs_grant_t *g)
{
    json_object *out = fs_json_pool_own(q->r->pool, json_object_new_object());
    json_object *params = json_object_new_array();
    int i;

    fs_json_add_str(out, "resourceType", "Parameters");
    add_param(params, "token", "valueString", token);
    add_param(params, "expiration", "valueDateTime", fs_time_instant(q->r->pool, g->expires));
    for (i = 0; i < g->sub_ids->nelts; ++i) {
        add_param(params, "subscription", "valueString",
                  APR_ARRAY_IDX(g->sub_ids, i, const char *));
    }
    add_param(params, "websocket-url", "valueUrl", q->conf->ws_url);
    json_object_object_add(out, "parameter", params);
    /* A bearer credential: never cache it anywhere. */
    apr_table_setn(q->r->headers_out, "Cache-Control", "no-store");
    return fhirsub_send_json(q->r, HTTP_OK, out);
}

/* The grant for sub_ids and its signed token; OK, or the error answered. */
static int grant_prepare(fhirsub_req *q, apr_array_header_t *sub_ids, fs_grant_t *grant,
                         const char **ptoken)
{
    fs_token_claims_t claims;

    memset(grant, 0, sizeof(*grant));
    if (APR_SUCCESS != fs_id_new_ordered(&grant->id, q->r->pool, q->now)) {
        return fhirsub_send_error(q->r, HTTP_INTERNAL_SERVER_ERROR, "exception",
                                  "no random source for a token id");
    }
    grant->owner = q->user;
    grant->issued = q->now;
    grant->expires = q->now + fhirsub_conf_token_lifetime(q->conf);
    grant->sub_ids = sub_ids;
    claims.jti = grant->id;
    claims.user = grant->owner;
    claims.subscription_ids = grant->sub_ids;
    claims.issued = grant->issued;
    claims.expires = grant->expires;
    if (APR_SUCCESS != fs_token_mint(ptoken, q->r->pool, q->conf->key, &claims)) {
        return fhirsub_send_error(q->r, HTTP_INTERNAL_SERVER_ERROR, "exception",
                                  "the binding token could not be signed");
    }
    return OK;
}

static int token_issued(fhirsub_req *q, const char *token, const fs_grant_t *grant)
{
    /* The grant id only: the token itself never reaches a log. */
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, q->r, FHIRSUB_LOGNO(10640)
                  "binding token %s issued to %s for %d subscription(s)", grant->id,
                  grant->owner, grant->sub_ids->nelts);
    return send_token(q, token, grant);
}

static int recording_failed(fhirsub_req *q)
{
    return fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                              "recording the token failed; retry later");
}

static int issue_token(fhirsub_req *q, fs_store_t *store, apr_array_header_t *subs)
{
    apr_array_header_t *ids = apr_array_make(q->r->pool, subs->nelts, sizeof(const char *));
    fs_grant_t grant;
    const char *token = NULL;
    int i, done;

    for (i = 0; i < subs->nelts; ++i) {
        APR_ARRAY_PUSH(ids, const char *) = APR_ARRAY_IDX(subs, i, fs_sub_t *)->id;
    }
    if (OK != (done = grant_prepare(q, ids, &grant, &token))) return done;
    if (APR_SUCCESS != fhirsub_store_grant_insert(q->r, store, &grant)) {
        return recording_failed(q);
    }
    return token_issued(q, token, &grant);
}

static fs_sub_t *sub_named(const apr_array_header_t *subs, const char *id)
{
    int i;
    for (i = 0; i < subs->nelts; ++i) {
        fs_sub_t *sub = APR_ARRAY_IDX(subs, i, fs_sub_t *);
        if (!strcmp(sub->id, id)) return sub;
    }
    return NULL;
}

/* PostgreSQL, subscriptions named: the grant is written and the subscriptions read in
 * one round trip (fs_store_grant_insert_read_subs), then checked as token_subs_named
 * checks them; a grant refused so is deleted again (its token never left). DECLINED when
 * this way does not apply: then token_subs_named and issue_token take two. */
static int issue_token_at_once(fhirsub_req *q, fs_store_t *store, apr_array_header_t *ids)
{
    apr_array_header_t *found = NULL;
    fs_grant_t grant;
    const char *token = NULL;
    int i, done;

    if (strcmp(apr_dbd_name(store->driver), "pgsql") || ids->nelts > FHIRSUB_TOKEN_MAX_SUBS) {
        return DECLINED;
    }
    for (i = 0; i < ids->nelts; ++i) {
        if (!fs_fhir_id_valid(APR_ARRAY_IDX(ids, i, const char *))) return DECLINED;
    }
    if (OK != (done = grant_prepare(q, ids, &grant, &token))) return done;
    if (APR_SUCCESS != fs_store_grant_insert_read_subs(store, q->r->pool, &grant, &found)) {
        return recording_failed(q);
    }
    for (i = 0; i < ids->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        fs_sub_t *sub = fhirsub_sub_owned(q, id, sub_named(found, id), APR_SUCCESS, &done);
        if (sub && token_sub_usable(q, sub, &done)) continue;
        if (APR_SUCCESS != fs_store_grant_delete(store, q->r->pool, grant.id)) {
            ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, q->r, FHIRSUB_LOGNO(10641)
                          "grant %s of a refused token could not be deleted (its token "
                          "was never sent; it expires unused)", grant.id);
        }
        return done;
    }
    return token_issued(q, token, &grant);
}

static int get_ws_binding_token(fhirsub_req *q, fs_store_t *store, fs_params_t *pp)
{
    apr_array_header_t *ids = NULL, *subs;
    const char *err = NULL;
    int done = OK;

    if (!q->conf->ws_url || !q->conf->key) {
        return fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "invalid",
                                  "WebSocket subscriptions not enabled for this endpoint");
    }
    if (APR_SUCCESS != token_ids(q, pp, &ids, &err)) {
        return fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "invalid", "%s", err);
    }
    ids = unique_ids(q->r->pool, ids);
    if (ids->nelts && DECLINED != (done = issue_token_at_once(q, store, ids))) return done;
    done = OK;
    subs = ids->nelts ? token_subs_named(q, store, ids, &done)
                      : token_subs_all(q, store, &done);
    if (!subs) return done;
    if (subs->nelts > FHIRSUB_TOKEN_MAX_SUBS) {
        return fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "too-costly", "one token covers "
                                  "at most %d subscriptions", FHIRSUB_TOKEN_MAX_SUBS);
    }
    return issue_token(q, store, subs);
}

/* ---- $status ------------------------------------------------------------- */

static apr_status_t status_filters(fhirsub_req *q, fs_params_t *pp, apr_array_header_t **pids,
                                   apr_array_header_t **pstatuses, const char **perr)
{
    static const char *const allowed[] = { "id", "status", NULL };
    apr_status_t rv;
    int i;

    if (APR_SUCCESS != (rv = fs_params_check(pp, allowed, perr))
        || APR_SUCCESS != (rv = fs_params_values_split(pids, pp, q->r->pool, "id", perr))
        || APR_SUCCESS != (rv = fs_params_values_split(pstatuses, pp, q->r->pool, "status",
                                                       perr))) {
        return rv;
    }
    for (i = 0; i < (*pstatuses)->nelts; ++i) {
        const char *code = APR_ARRAY_IDX(*pstatuses, i, const char *);
        if (!fs_fhir_status_code_valid(q->version, code)) {
            *perr = apr_psprintf(q->r->pool, "status '%s' is not a Subscription status code",
                                 code);
            return APR_EINVAL;
        }
    }
    return APR_SUCCESS;
}

static int status_op(fhirsub_req *q, fs_store_t *store, fs_params_t *pp)
{
    apr_array_header_t *ids = NULL, *statuses = NULL, *subs, *chosen;
    const char *err = NULL;
    int done = OK, i;

    if (APR_SUCCESS != status_filters(q, pp, &ids, &statuses, &err)) {
        return fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "invalid", "%s", err);
    }
    if (q->id) {
        /* Instance level: id and status parameters are ignored, as defined. */
        fs_sub_t *sub = fhirsub_sub_load_owned(q, store, q->id, &done);
        if (!sub) return done;
        chosen = apr_array_make(q->r->pool, 1, sizeof(fs_sub_t *));
        APR_ARRAY_PUSH(chosen, fs_sub_t *) = sub;
    }
    else {
        if (APR_SUCCESS != fs_store_sub_list_owner(store, q->r->pool, q->user, &subs)) {
            return fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                                      "reading Subscriptions failed; retry later");
        }
        chosen = apr_array_make(q->r->pool, subs->nelts, sizeof(fs_sub_t *));
        for (i = 0; i < subs->nelts; ++i) {
            fs_sub_t *sub = APR_ARRAY_IDX(subs, i, fs_sub_t *);
            if (fhirsub_sub_visible(q, sub) && fs_params_list_matches(ids, sub->id) && fs_params_list_matches(statuses,
                                                 fs_sub_effective_status(sub, q->now))) {
                APR_ARRAY_PUSH(chosen, fs_sub_t *) = sub;
            }
        }
    }
    return fhirsub_send_json(q->r, HTTP_OK, fs_json_pool_own(q->r->pool,
                             fs_status_searchset(q->r->pool, q->version, chosen, q->now)));
}

/* ---- $events ------------------------------------------------------------- */

/* Events one $events answer carries at most; clients page with eventsSinceNumber. */
#define FHIRSUB_EVENTS_MAX 1000

static apr_status_t event_number(fs_params_t *pp, const char *name, apr_int64_t dflt,
                                 apr_int64_t *pval, apr_pool_t *p, const char **perr)
{
    const char *v = fs_params_get(pp, name);
    char *end;
    if (!v) {
        *pval = dflt;
        return APR_SUCCESS;
    }
    *pval = apr_strtoi64(v, &end, 10);
    if (!*v || *end || *pval < 1) {
        *perr = apr_psprintf(p, "%s '%s' must be a positive integer", name, v);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

/* The content level asked for, if this location allows it (it is a hint). */
static const char *events_content(fhirsub_req *q, fs_params_t *pp, const fs_sub_t *sub,
                                  const char **perr)
{
    const char *asked = fs_params_get(pp, "content");
    unsigned bit;
    if (!asked) return sub->content;
    if (!(bit = fs_sub_content_bit(asked))) {
        *perr = apr_psprintf(q->r->pool, "content '%s' is not one of empty, id-only, "
                             "full-resource", asked);
        return NULL;
    }
    return (fhirsub_conf_allowed_content(q->conf) & bit) ? asked : sub->content;
}

static int events_op(fhirsub_req *q, fs_store_t *store, fs_params_t *pp)
{
    static const char *const allowed[] = {
        "eventsSinceNumber", "eventsUntilNumber", "content", NULL
    };
    apr_int64_t since, until;
    apr_array_header_t *events;
    const char *err = NULL;
    fs_sub_t *sub, view;
    int done = OK, n;

    if (!q->id) {
        return fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "not-supported", "$events is an "
                                  "instance operation: Subscription/[id]/$events");
    }
    if (!(sub = fhirsub_sub_load_owned(q, store, q->id, &done))) return done;
    view = *sub;
    if (APR_SUCCESS != fs_params_check(pp, allowed, &err)
        || APR_SUCCESS != event_number(pp, "eventsSinceNumber", 1, &since, q->r->pool, &err)
        || APR_SUCCESS != event_number(pp, "eventsUntilNumber", sub->events_since_start,
                                       &until, q->r->pool, &err)
        || !(view.content = events_content(q, pp, sub, &err))) {
        return fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "invalid", "%s", err);
    }
    if (until > sub->events_since_start) until = sub->events_since_start;
    n = until >= since ? (int)((until - since + 1) < FHIRSUB_EVENTS_MAX
                               ? (until - since + 1) : FHIRSUB_EVENTS_MAX) : 0;
    if (n == 0) {
        events = apr_array_make(q->r->pool, 1, sizeof(fs_notify_event_t));
    }
    else if (APR_SUCCESS != fs_store_events_after(store, q->r->pool, sub->id, since - 1, n,
                                                  &events)) {
        return fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                                  "reading events failed; retry later");
    }
    /* Retention may have left gaps: "n events above since" can reach past until. */
    while (events->nelts > 0
           && APR_ARRAY_IDX(events, events->nelts - 1, fs_notify_event_t).number > until) {
        --events->nelts;
    }
    return fhirsub_send_json(q->r, HTTP_OK, fs_notify_bundle(q->r->pool, &view,
                             FS_NOTIFY_QUERY_EVENT, (const fs_notify_event_t *)events->elts,
                             events->nelts, q->now));
}

/* ---- dispatch ------------------------------------------------------------ */

int fhirsub_ops_handle(fhirsub_req *q)
{
    fs_params_t *pp = NULL;
    fs_store_t *store;
    int done = OK;

    if (strcmp(q->op, FS_OP_GET_WS_BINDING_TOKEN) && strcmp(q->op, FS_OP_STATUS)
        && strcmp(q->op, FS_OP_EVENTS)) {
        return fhirsub_send_error(q->r, HTTP_NOT_FOUND, "not-supported", "operation $%s is "
                                  "not supported on Subscription", q->op);
    }
    if (q->r->method_number != M_GET && q->r->method_number != M_POST) {
        return fhirsub_send_error(q->r, HTTP_METHOD_NOT_ALLOWED, "not-supported",
                                  "$%s takes GET or POST", q->op);
    }
    if (!fhirsub_req_user(q, &done)
        || APR_SUCCESS != fhirsub_read_params(q->r, q->conf, &pp, &done)
        || !(store = fhirsub_req_store(q, &done))) {
        return done;
    }
    if (!strcmp(q->op, FS_OP_STATUS)) return status_op(q, store, pp);
    if (!strcmp(q->op, FS_OP_EVENTS)) return events_op(q, store, pp);
    return get_ws_binding_token(q, store, pp);
}
