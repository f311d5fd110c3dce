#include <string.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_protocol.h>

#include "fs_fhir.h"
#include "fs_json.h"
#include "fs_params.h"
#include "fs_topic.h"
#include "fs_topic_basic.h"
#include "mod_fhirsub_http.h"
#include "mod_fhirsub_topics.h"

/* The topic as a resource with an id: its own, else the last segment of its url. */
static json_object *topic_resource(apr_pool_t *p, const fs_topic_t *t)
{
    json_object *j = NULL;
    const char *err, *id, *slash;

    if (APR_SUCCESS != fs_json_parse(&j, p, t->json, strlen(t->json), &err)) return NULL;
    if (!fs_json_get_str(j, "id")) {
        slash = strrchr(t->url, '/');
        id = slash ? slash + 1 : t->url;
        if (fs_fhir_id_valid(id)) fs_json_add_str(j, "id", id);
    }
    return j;
}

static const char *topic_id(json_object *res)
{
    return res ? fs_json_get_str(res, "id") : NULL;
}

int fhirsub_topics_has_id(apr_pool_t *p, const fhirsub_dir_conf *c, const char *id)
{
    int i, n = c->topics ? fs_topics_count(c->topics) : 0;
    for (i = 0; i < n; ++i) {
        const char *tid = topic_id(topic_resource(p, fs_topics_at(c->topics, i)));
        if (tid && !strcmp(tid, id)) return 1;
    }
    return 0;
}

/* The form served: the topic itself, or its R4 Basic equivalent. */
static json_object *served_form(apr_pool_t *p, json_object *res, int as_basic)
{
    return (as_basic && res && strcmp(fs_json_get_str(res, "resourceType"), "Basic"))
           ? fs_topic_to_basic(p, res) : res;
}

static int method_ok(fhirsub_req *q)
{
    if (q->r->method_number == M_GET) return 1;
    fhirsub_send_error(q->r, HTTP_METHOD_NOT_ALLOWED, "not-supported",
                       "SubscriptionTopic is read-only here: topics come from FhirSubTopic");
    return 0;
}

int fhirsub_topics_search(fhirsub_req *q, int as_basic)
{
    static const char *const allowed[] = { "url", "_id", "code", NULL };
    json_object *bundle, *entries;
    fs_params_t *pp = NULL;
    const char *err = NULL, *want_url, *want_id;
    int i, n = fs_topics_count(q->conf->topics), total = 0;

    if (!method_ok(q)) return OK;
    if (APR_SUCCESS != fs_params_from_query(&pp, q->r->pool, q->r->args ? q->r->args : "",
                                            &err)
        || APR_SUCCESS != fs_params_check(pp, allowed, &err)) {
        return fhirsub_send_error(q->r, HTTP_BAD_REQUEST, "not-supported", "%s", err);
    }
    want_url = fs_params_get(pp, "url");
    want_id = fs_params_get(pp, "_id");
    bundle = fs_json_pool_own(q->r->pool, json_object_new_object());
    entries = json_object_new_array();
    fs_json_add_str(bundle, "resourceType", "Bundle");
    fs_json_add_str(bundle, "type", "searchset");
    for (i = 0; i < n; ++i) {
        const fs_topic_t *t = fs_topics_at(q->conf->topics, i);
        json_object *res = topic_resource(q->r->pool, t), *entry, *search;
        const char *id = res ? fs_json_get_str(res, "id") : NULL;
        if (!res || (want_url && strcmp(want_url, t->url))
            || (want_id && (!id || strcmp(want_id, id)))) continue;
        entry = json_object_new_object();
        if (id) fs_json_add_str(entry, "fullUrl", apr_pstrcat(q->r->pool, q->base_url,
                                as_basic ? "/Basic/" : "/SubscriptionTopic/", id, NULL));
        json_object_object_add(entry, "resource",
                               json_object_get(served_form(q->r->pool, res, as_basic)));
        search = json_object_new_object();
        fs_json_add_str(search, "mode", "match");
        json_object_object_add(entry, "search", search);
        json_object_array_add(entries, entry);
        ++total;
    }
    json_object_object_add(bundle, "total", json_object_new_int(total));
    if (total) json_object_object_add(bundle, "entry", entries);
    else json_object_put(entries);
    return fhirsub_send_json(q->r, HTTP_OK, bundle);
}

int fhirsub_topics_read(fhirsub_req *q, int as_basic)
{
    int i, n = fs_topics_count(q->conf->topics);

    if (!method_ok(q)) return OK;
    for (i = 0; i < n; ++i) {
        json_object *res = topic_resource(q->r->pool, fs_topics_at(q->conf->topics, i));
        const char *id = res ? fs_json_get_str(res, "id") : NULL;
        if (id && !strcmp(id, q->id)) {
            return fhirsub_send_json(q->r, HTTP_OK, served_form(q->r->pool, res, as_basic));
        }
    }
    return fhirsub_send_error(q->r, HTTP_NOT_FOUND, "not-found",
                              "SubscriptionTopic/%s not found", q->id);
}
