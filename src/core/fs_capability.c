#include <string.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "fs_opdef.h"
#include "fs_time.h"
#include "fs_capability.h"

#define SOFTWARE_NAME "mod_fhirsub"

/* Array member key of obj; created when absent. APR_EINVAL when present with
 * another type: we add into the backend's arrays, never replace them. */
static apr_status_t member_array(json_object **pa, json_object *obj, const char *key,
                                 apr_pool_t *p, const char *where, const char **perr)
{
    json_object *a;

    if (!json_object_object_get_ex(obj, key, &a)) {
        a = json_object_new_array();
        json_object_object_add(obj, key, a);
    }
    else if (!json_object_is_type(a, json_type_array)) {
        *perr = apr_psprintf(p, "%s.%s is not an array", where, key);
        return APR_EINVAL;
    }
    *pa = a;
    return APR_SUCCESS;
}

/* Put item into arr in place of the first object whose key equals val, dropping
 * further matches; append when there is none. Takes ownership of item. */
static void array_put_keyed(json_object *arr, const char *key, const char *val,
                            json_object *item)
{
    size_t i = 0;
    int placed = 0;

    while (i < json_object_array_length(arr)) {
        const char *s = fs_json_get_str(json_object_array_get_idx(arr, i), key);
        if (!s || strcmp(s, val)) {
            ++i;
        }
        else if (!placed) {
            json_object_array_put_idx(arr, i++, item);
            placed = 1;
        }
        else {
            json_object_array_del_idx(arr, i, 1);
        }
    }
    if (!placed) json_object_array_add(arr, item);
}

static void array_add_str_once(json_object *arr, const char *val)
{
    size_t i;
    for (i = 0; i < json_object_array_length(arr); ++i) {
        json_object *s = json_object_array_get_idx(arr, i);
        if (json_object_is_type(s, json_type_string)
            && !strcmp(json_object_get_string(s), val)) return;
    }
    json_object_array_add(arr, json_object_new_string(val));
}

static json_object *str_pair(const char *k1, const char *v1, const char *k2, const char *v2)
{
    json_object *o = json_object_new_object();
    fs_json_add_str(o, k1, v1);
    fs_json_add_str(o, k2, v2);
    return o;
}

static json_object *interactions(const char *const *codes)
{
    json_object *a = json_object_new_array();
    json_object *o;
    for (; *codes; ++codes) {
        o = json_object_new_object();
        fs_json_add_str(o, "code", *codes);
        json_object_array_add(a, o);
    }
    return a;
}

static json_object *search_params(void)
{
    static const struct { const char *name, *def, *type; } sps[] = {
        { "url", FS_URL_FHIR_SEARCHPARAM "Subscription-url", "uri" },
        { "status", FS_URL_FHIR_SEARCHPARAM "Subscription-status", "token" },
        { "type", FS_URL_FHIR_SEARCHPARAM "Subscription-type", "token" },
        { "_id", FS_URL_FHIR_SEARCHPARAM "Resource-id", "token" },
    };
    json_object *a = json_object_new_array(), *o;
    size_t i;

    for (i = 0; i < sizeof(sps) / sizeof(sps[0]); ++i) {
        o = str_pair("name", sps[i].name, "definition", sps[i].def);
        fs_json_add_str(o, "type", sps[i].type);
        json_object_array_add(a, o);
    }
    return a;
}

static json_object *operations(fs_fhir_version_t v)
{
    static const char *const codes[] = {
        FS_OP_STATUS, FS_OP_EVENTS, FS_OP_GET_WS_BINDING_TOKEN, NULL
    };
    json_object *a = json_object_new_array();
    int i;

    for (i = 0; codes[i]; ++i) {
        json_object_array_add(a, str_pair("name", codes[i], "definition",
                                          fs_opdef_canonical(v, codes[i])));
    }
    return a;
}

static int has_topics(const fs_cap_info_t *info)
{
    return info->topic_urls && info->topic_urls->nelts > 0;
}

/* Backport discovery of supported topics: one extension per canonical. */
static json_object *topic_extensions(const fs_cap_info_t *info)
{
    json_object *a = json_object_new_array();
    int i;

    for (i = 0; i < info->topic_urls->nelts; ++i) {
        const char *url = APR_ARRAY_IDX(info->topic_urls, i, const char *);
        if (url && *url) {
            json_object_array_add(a, str_pair("url", FS_URL_EXT_CS_TOPIC_CANONICAL,
                                              "valueCanonical", url));
        }
    }
    return a;
}

static json_object *subscription_entry(const fs_cap_info_t *info)
{
    static const char *const codes[] = {
        "read", "create", "update", "delete", "search-type", NULL
    };
    json_object *o = json_object_new_object();
    int r4 = (info->version == FS_FHIR_R4);

    if (r4 && has_topics(info)) {
        json_object_object_add(o, "extension", topic_extensions(info));
    }
    fs_json_add_str(o, "type", "Subscription");
    if (r4) {
        json_object *profiles = json_object_new_array();
        json_object_array_add(profiles, json_object_new_string(FS_URL_BACKPORT_SUBSCRIPTION));
        json_object_object_add(o, "supportedProfile", profiles);
    }
    json_object_object_add(o, "interaction", interactions(codes));
    json_object_object_add(o, "searchParam", search_params());
    json_object_object_add(o, "operation", operations(info->version));
    return o;
}

static json_object *topic_entry(void)
{
    static const char *const codes[] = { "read", "search-type", NULL };
    json_object *o = json_object_new_object();
    fs_json_add_str(o, "type", "SubscriptionTopic");
    json_object_object_add(o, "interaction", interactions(codes));
    return o;
}

/* The rest entry with mode "server", appended when there is none. */
static apr_status_t server_rest(json_object **prest, json_object *cs, apr_pool_t *p,
                                const char **perr)
{
    json_object *rest, *e;
    apr_status_t rv;
    size_t i;

    if (APR_SUCCESS != (rv = member_array(&rest, cs, "rest", p, "CapabilityStatement",
                                          perr))) return rv;
    for (i = 0; i < json_object_array_length(rest); ++i) {
        const char *mode;
        e = json_object_array_get_idx(rest, i);
        mode = fs_json_get_str(e, "mode");
        if (mode && !strcmp(mode, "server")) {
            *prest = e;
            return APR_SUCCESS;
        }
    }
    e = json_object_new_object();
    fs_json_add_str(e, "mode", "server");
    json_object_array_add(rest, e);
    *prest = e;
    return APR_SUCCESS;
}

static apr_status_t check_input(json_object *cs, const fs_cap_info_t *info,
                                const char **perr)
{
    const char *rt;

    if (!info || !fs_fhir_version_str(info->version)) {
        *perr = "internal error: no or unknown FHIR version for the CapabilityStatement";
        return APR_EINVAL;
    }
    if (!cs || !json_object_is_type(cs, json_type_object)) {
        *perr = "the CapabilityStatement is not a JSON object";
        return APR_EINVAL;
    }
    rt = fs_json_get_str(cs, "resourceType");
    if (!rt || strcmp(rt, "CapabilityStatement")) {
        *perr = rt ? "resourceType is not CapabilityStatement"
                   : "resourceType is missing, a CapabilityStatement was expected";
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

apr_status_t fs_cap_augment(json_object *cs, apr_pool_t *p, const fs_cap_info_t *info,
                            const char **perr)
{
    json_object *rest, *arr;
    apr_status_t rv;
    const char *where = "CapabilityStatement.rest(server)";

    *perr = NULL;
    if (APR_SUCCESS != (rv = check_input(cs, info, perr))) goto leave;
    if (APR_SUCCESS != (rv = server_rest(&rest, cs, p, perr))) goto leave;
    if (info->websocket_url) {
        if (APR_SUCCESS != (rv = member_array(&arr, rest, "extension", p, where, perr))) {
            goto leave;
        }
        array_put_keyed(arr, "url", FS_URL_EXT_CS_WEBSOCKET,
                        str_pair("url", FS_URL_EXT_CS_WEBSOCKET,
                                 "valueUri", info->websocket_url));
    }
    if (APR_SUCCESS != (rv = member_array(&arr, rest, "resource", p, where, perr))) {
        goto leave;
    }
    array_put_keyed(arr, "type", "Subscription", subscription_entry(info));
    /* R4 has no SubscriptionTopic resource: topics are listed by extension above */
    if (info->version == FS_FHIR_R5 && has_topics(info)) {
        array_put_keyed(arr, "type", "SubscriptionTopic", topic_entry());
    }
    if (info->version == FS_FHIR_R4) {
        if (APR_SUCCESS != (rv = member_array(&arr, cs, "instantiates", p,
                                              "CapabilityStatement", perr))) goto leave;
        array_add_str_once(arr, FS_URL_BACKPORT_SERVER_CS);
    }
leave:
    return rv;
}

apr_status_t fs_cap_own(json_object **pcs, apr_pool_t *p, const fs_cap_info_t *info)
{
    json_object *cs, *o, *a;
    apr_status_t rv;
    const char *err = NULL;

    *pcs = NULL;
    if (!info || !fs_fhir_version_str(info->version)) return APR_EINVAL;
    cs = fs_json_pool_own(p, json_object_new_object());
    fs_json_add_str(cs, "resourceType", "CapabilityStatement");
    fs_json_add_str(cs, "status", "active");
    fs_json_add_str(cs, "date", fs_time_instant(p, apr_time_now()));
    fs_json_add_str(cs, "kind", "instance");
    o = str_pair("name", SOFTWARE_NAME, "version",
                 info->software_version ? info->software_version : "unknown");
    json_object_object_add(cs, "software", o);
    /* kind instance requires implementation (cpb-14 in R4) */
    o = json_object_new_object();
    fs_json_add_str(o, "description", SOFTWARE_NAME " FHIR topic-based Subscriptions");
    if (info->base_url) fs_json_add_str(o, "url", info->base_url);
    json_object_object_add(cs, "implementation", o);
    fs_json_add_str(cs, "fhirVersion", fs_fhir_version_str(info->version));
    a = json_object_new_array();
    json_object_array_add(a, json_object_new_string("json"));
    json_object_array_add(a, json_object_new_string(FS_MIME_FHIR_JSON));
    json_object_object_add(cs, "format", a);
    a = json_object_new_array();
    o = json_object_new_object();
    fs_json_add_str(o, "mode", "server");
    json_object_array_add(a, o);
    json_object_object_add(cs, "rest", a);
    if (APR_SUCCESS != (rv = fs_cap_augment(cs, p, info, &err))) goto leave;
    *pcs = cs;
leave:
    return rv;
}
