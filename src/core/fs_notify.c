#include <string.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "fs_log.h"
#include "fs_time.h"
#include "fs_notify.h"
#include "fs_notify_int.h"

const char *fs_notify_sub_reference(apr_pool_t *p, const fs_sub_t *sub)
{
    if (sub->shape == FS_SHAPE_CLASSIC) return apr_pstrcat(p, "Subscription/", sub->id, NULL);
    return fs_status_sub_reference(p, sub);
}

static const char *i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

static int is_set(const char *s)
{
    return s && *s;
}

static json_object *reference(const char *ref)
{
    json_object *r = json_object_new_object();
    fs_json_add_str(r, "reference", ref);
    return r;
}

/* "Encounter/123", absolute under the subscription's base except for the classic
 * shape (Medplum's createReference is relative). */
static const char *focus_reference(apr_pool_t *p, const fs_sub_t *sub,
                                   const fs_notify_event_t *ev)
{
    const char *rel = apr_pstrcat(p, ev->resource_type, "/", ev->resource_id, NULL);
    return sub->shape == FS_SHAPE_CLASSIC ? rel
                                          : apr_pstrcat(p, sub->base_url, "/", rel, NULL);
}

int fs_notify_with_focus(const fs_sub_t *sub)
{
    return sub->content && strcmp(sub->content, "empty") != 0;
}

int fs_notify_with_resource(const fs_sub_t *sub)
{
    return sub->content && !strcmp(sub->content, "full-resource");
}

apr_int64_t fs_notify_events_since(const fs_sub_t *sub, const char *type,
                                   const fs_notify_event_t *events, int nevents)
{
    apr_int64_t n = sub->events_since_start;
    int i;

    if (nevents <= 0 || strcmp(type, FS_NOTIFY_EVENT)) return n;
    /* R5: the highest number in a notification equals eventsSinceSubscriptionStart;
     * a query-event ($events) reports the real count, however many it carries. */
    n = events[0].number;
    for (i = 1; i < nevents; ++i) {
        if (events[i].number > n) n = events[i].number;
    }
    return n;
}

/* ---- the status entry ----------------------------------------------------- */

static json_object *r4_notification_event(apr_pool_t *p, const fs_sub_t *sub,
                                          const fs_notify_event_t *ev)
{
    json_object *param = json_object_new_object(), *parts = json_object_new_array(), *part;

    fs_json_add_str(param, "name", "notification-event");
    part = json_object_new_object();
    fs_json_add_str(part, "name", "event-number");
    fs_json_add_str(part, "valueString", i64(p, ev->number));
    json_object_array_add(parts, part);
    part = json_object_new_object();
    fs_json_add_str(part, "name", "timestamp");
    fs_json_add_str(part, "valueInstant", fs_time_instant(p, ev->timestamp));
    json_object_array_add(parts, part);
    if (fs_notify_with_focus(sub)) {
        part = json_object_new_object();
        fs_json_add_str(part, "name", "focus");
        json_object_object_add(part, "valueReference",
                               reference(focus_reference(p, sub, ev)));
        json_object_array_add(parts, part);
    }
    json_object_object_add(param, "part", parts);
    return param;
}

static json_object *r5_notification_event(apr_pool_t *p, const fs_sub_t *sub,
                                          const fs_notify_event_t *ev)
{
    json_object *ne = json_object_new_object();
    /* integer64 travels as a JSON string */
    fs_json_add_str(ne, "eventNumber", i64(p, ev->number));
    fs_json_add_str(ne, "timestamp", fs_time_instant(p, ev->timestamp));
    if (fs_notify_with_focus(sub)) {
        json_object_object_add(ne, "focus", reference(focus_reference(p, sub, ev)));
    }
    return ne;
}

/* The status resource (R4 Parameters or SubscriptionStatus), reusing fs_status. */
static json_object *status_resource(apr_pool_t *p, const fs_sub_t *sub, const char *type,
                                    const fs_notify_event_t *events, int nevents,
                                    apr_time_t now)
{
    json_object *res, *list, *subref;
    int i;

    if (sub->shape == FS_SHAPE_BACKPORT) {
        res = fs_status_make(p, FS_FHIR_R4, sub, type, now);
        if (json_object_object_get_ex(res, "parameter", &list)) {
            for (i = 0; i < nevents; ++i) {
                json_object_array_add(list, r4_notification_event(p, sub, &events[i]));
            }
        }
        return res;
    }
    res = fs_status_make(p, FS_FHIR_R5, sub, type, now);
    if (nevents > 0) {
        list = json_object_new_array();
        for (i = 0; i < nevents; ++i) {
            json_object_array_add(list, r5_notification_event(p, sub, &events[i]));
        }
        json_object_object_add(res, "notificationEvent", list);
    }
    if (sub->shape == FS_SHAPE_CLASSIC
        && json_object_object_get_ex(res, "subscription", &subref)) {
        fs_json_add_str(subref, "reference", fs_notify_sub_reference(p, sub));
    }
    return res;
}

static json_object *request_obj(const char *method, const char *url)
{
    json_object *r = json_object_new_object();
    fs_json_add_str(r, "method", method);
    fs_json_add_str(r, "url", url);
    return r;
}

static json_object *response_obj(const char *status)
{
    json_object *r = json_object_new_object();
    fs_json_add_str(r, "status", status);
    return r;
}

static json_object *status_entry(apr_pool_t *p, const fs_sub_t *sub, const char *type,
                                 const fs_notify_event_t *events, int nevents,
                                 apr_time_t now)
{
    json_object *entry = json_object_new_object();
    const char *url;

    fs_json_add_str(entry, "fullUrl", fs_status_urn_uuid(p));
    json_object_object_add(entry, "resource",
                           status_resource(p, sub, type, events, nevents, now));
    if (sub->shape != FS_SHAPE_R5) {
        /* history Bundles need request and response on every entry (bdl-3, bdl-4) */
        url = apr_pstrcat(p, fs_notify_sub_reference(p, sub), "/$status", NULL);
        json_object_object_add(entry, "request", request_obj("GET", url));
        json_object_object_add(entry, "response", response_obj("200"));
    }
    return entry;
}

/* ---- the focus entries ---------------------------------------------------- */

void fs_notify_derive_request(apr_pool_t *p, const fs_notify_event_t *ev,
                              const char **pmethod, const char **purl, const char **pstatus)
{
    const char *rel = apr_pstrcat(p, ev->resource_type, "/", ev->resource_id, NULL);
    const char *interaction = ev->interaction ? ev->interaction : "";
    const char *method, *url, *status;

    if (!strcmp(interaction, "create")) {
        method = "POST";
        url = ev->resource_type;
        status = "201";
    }
    else if (!strcmp(interaction, "delete")) {
        method = "DELETE";
        url = rel;
        status = "204";
    }
    else {
        method = "PUT";
        url = rel;
        status = "200";
    }
    *pmethod = is_set(ev->request_method) ? ev->request_method : method;
    *purl = is_set(ev->request_url) ? ev->request_url : url;
    *pstatus = is_set(ev->response_status) ? ev->response_status : status;
}

json_object *fs_notify_event_resource(apr_pool_t *p, const fs_notify_event_t *ev)
{
    json_object *res = NULL;
    const char *err = NULL;

    if (!is_set(ev->body) || (ev->interaction && !strcmp(ev->interaction, "delete"))) {
        return NULL;
    }
    if (APR_SUCCESS != fs_json_parse(&res, p, ev->body, strlen(ev->body), &err)
        || !json_object_is_type(res, json_type_object)) {
        fs_log_perror(FS_LOG_MARK, FS_LOG_WARNING, APR_EINVAL, p,
                      "FS00301: stored body of %s/%s (event %" APR_INT64_T_FMT
                      ") is not a JSON object (%s); sent without resource",
                      ev->resource_type, ev->resource_id, ev->number,
                      err ? err : "not an object");
        return NULL;
    }
    /* the pool owns res; the Bundle takes its own reference */
    return json_object_get(res);
}

static json_object *focus_entry(apr_pool_t *p, const fs_sub_t *sub,
                                const fs_notify_event_t *ev)
{
    json_object *entry = json_object_new_object(), *res;
    const char *method, *url, *status;

    fs_json_add_str(entry, "fullUrl", apr_pstrcat(p, sub->base_url, "/", ev->resource_type,
                                                  "/", ev->resource_id, NULL));
    if (fs_notify_with_resource(sub) && (res = fs_notify_event_resource(p, ev))) {
        json_object_object_add(entry, "resource", res);
    }
    fs_notify_derive_request(p, ev, &method, &url, &status);
    json_object_object_add(entry, "request", request_obj(method, url));
    json_object_object_add(entry, "response", response_obj(status));
    return entry;
}

/* ---- the Bundle ----------------------------------------------------------- */

json_object *fs_notify_bundle(apr_pool_t *p, const fs_sub_t *sub, const char *type,
                              const fs_notify_event_t *events, int nevents,
                              apr_time_t now)
{
    json_object *bundle = json_object_new_object(), *entries = json_object_new_array();
    fs_sub_t view = *sub;
    int i;

    view.events_since_start = fs_notify_events_since(sub, type, events, nevents);
    fs_json_add_str(bundle, "resourceType", "Bundle");
    fs_json_add_str(bundle, "type", sub->shape == FS_SHAPE_R5 ? "subscription-notification"
                                                                : "history");
    fs_json_add_str(bundle, "timestamp", fs_time_instant(p, now));
    json_object_array_add(entries, status_entry(p, &view, type, events, nevents, now));
    for (i = 0; i < nevents && fs_notify_with_focus(sub); ++i) {
        json_object_array_add(entries, focus_entry(p, sub, &events[i]));
    }
    json_object_object_add(bundle, "entry", entries);
    return fs_json_pool_own(p, bundle);
}

json_object *fs_notify_handshake(apr_pool_t *p, const fs_sub_t *sub, apr_time_t now)
{
    return fs_notify_bundle(p, sub, FS_NOTIFY_HANDSHAKE, NULL, 0, now);
}

json_object *fs_notify_heartbeat(apr_pool_t *p, const fs_sub_t *sub, apr_time_t now)
{
    return fs_notify_bundle(p, sub, FS_NOTIFY_HEARTBEAT, NULL, 0, now);
}

json_object *fs_notify_event(apr_pool_t *p, const fs_sub_t *sub,
                             const fs_notify_event_t *events, int nevents, apr_time_t now)
{
    return fs_notify_bundle(p, sub, FS_NOTIFY_EVENT, events, nevents, now);
}
