#include <apr_strings.h>

#include "fs_id.h"
#include "fs_json.h"
#include "fs_time.h"
#include "fs_status.h"

const char *fs_status_sub_reference(apr_pool_t *p, const fs_sub_t *sub)
{
    return apr_pstrcat(p, sub->base_url, "/Subscription/", sub->id, NULL);
}

const char *fs_status_urn_uuid(apr_pool_t *p)
{
    const char *id = NULL;
    if (APR_SUCCESS != fs_id_new(&id, p)) {
        /* The random source failing is not worth an error answer for an entry id. */
        id = apr_psprintf(p, "00000000-0000-4000-8000-%012" APR_UINT64_T_HEX_FMT,
                          (apr_uint64_t)(apr_time_now() & 0xffffffffffffLL));
    }
    return apr_pstrcat(p, "urn:uuid:", id, NULL);
}

static void add_param(json_object *params, const char *name, const char *vkey,
                      json_object *value)
{
    json_object *param = json_object_new_object();
    fs_json_add_str(param, "name", name);
    json_object_object_add(param, vkey, value);
    json_object_array_add(params, param);
}

static json_object *reference(const char *ref)
{
    json_object *r = json_object_new_object();
    fs_json_add_str(r, "reference", ref);
    return r;
}

static json_object *make_r4(apr_pool_t *p, const fs_sub_t *sub, const char *type,
                            apr_time_t now)
{
    json_object *res = json_object_new_object();
    json_object *meta = json_object_new_object();
    json_object *profiles = json_object_new_array();
    json_object *params = json_object_new_array();

    fs_json_add_str(res, "resourceType", "Parameters");
    json_object_array_add(profiles, json_object_new_string(FS_URL_BACKPORT_STATUS_R4));
    json_object_object_add(meta, "profile", profiles);
    json_object_object_add(res, "meta", meta);
    add_param(params, "subscription", "valueReference",
              reference(fs_status_sub_reference(p, sub)));
    if (sub->topic) {
        add_param(params, "topic", "valueCanonical", json_object_new_string(sub->topic));
    }
    add_param(params, "status", "valueCode",
              json_object_new_string(fs_sub_effective_status(sub, now)));
    add_param(params, "type", "valueCode", json_object_new_string(type));
    add_param(params, "events-since-subscription-start", "valueString",
              json_object_new_string(apr_psprintf(p, "%" APR_INT64_T_FMT,
                                                  sub->events_since_start)));
    if (sub->error && *sub->error) {
        json_object *cc = json_object_new_object();
        fs_json_add_str(cc, "text", sub->error);
        add_param(params, "error", "valueCodeableConcept", cc);
    }
    json_object_object_add(res, "parameter", params);
    return res;
}

static json_object *make_r5(apr_pool_t *p, const fs_sub_t *sub, const char *type,
                            apr_time_t now)
{
    json_object *res = json_object_new_object();

    fs_json_add_str(res, "resourceType", "SubscriptionStatus");
    fs_json_add_str(res, "status", fs_sub_effective_status(sub, now));
    fs_json_add_str(res, "type", type);
    /* integer64 travels as a JSON string in R5. */
    fs_json_add_str(res, "eventsSinceSubscriptionStart",
                    apr_psprintf(p, "%" APR_INT64_T_FMT, sub->events_since_start));
    json_object_object_add(res, "subscription", reference(fs_status_sub_reference(p, sub)));
    if (sub->topic) fs_json_add_str(res, "topic", sub->topic);
    if (sub->error && *sub->error) {
        json_object *errors = json_object_new_array(), *cc = json_object_new_object();
        fs_json_add_str(cc, "text", sub->error);
        json_object_array_add(errors, cc);
        json_object_object_add(res, "error", errors);
    }
    return res;
}

json_object *fs_status_make(apr_pool_t *p, fs_fhir_version_t v, const fs_sub_t *sub,
                            const char *type, apr_time_t now)
{
    return v == FS_FHIR_R5 ? make_r5(p, sub, type, now) : make_r4(p, sub, type, now);
}

json_object *fs_status_searchset(apr_pool_t *p, fs_fhir_version_t v,
                                 const apr_array_header_t *subs, apr_time_t now)
{
    json_object *bundle = json_object_new_object();
    json_object *entries = json_object_new_array();
    int i;

    fs_json_add_str(bundle, "resourceType", "Bundle");
    fs_json_add_str(bundle, "type", "searchset");
    fs_json_add_str(bundle, "timestamp", fs_time_instant(p, now));
    json_object_object_add(bundle, "total", json_object_new_int(subs->nelts));
    for (i = 0; i < subs->nelts; ++i) {
        const fs_sub_t *sub = APR_ARRAY_IDX(subs, i, const fs_sub_t *);
        json_object *entry = json_object_new_object(), *search = json_object_new_object();
        fs_json_add_str(entry, "fullUrl", fs_status_urn_uuid(p));
        json_object_object_add(entry, "resource",
                               fs_status_make(p, v, sub, FS_NOTIFY_QUERY_STATUS, now));
        fs_json_add_str(search, "mode", "match");
        json_object_object_add(entry, "search", search);
        json_object_array_add(entries, entry);
    }
    /* FHIR JSON has no empty arrays: no match, no entry element. */
    if (json_object_array_length(entries)) json_object_object_add(bundle, "entry", entries);
    else json_object_put(entries);
    return bundle;
}
