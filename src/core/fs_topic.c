#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <apr_file_io.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "fs_searchparam.h"
#include "fs_filter.h"
#include "fs_topic.h"

/* Topic files are hand-written configuration; anything bigger is a mistake. */
#define TOPIC_FILE_MAX (4 * 1024 * 1024)

/* Where a problem is: source file and field, prefixed to every message. */
typedef struct {
    apr_pool_t *p;
    const char *source;
    const char **perr;
} ctx_t;

static apr_status_t fail(ctx_t *c, const char *field, const char *fmt, ...)
{
    va_list ap;
    const char *msg;
    va_start(ap, fmt);
    msg = apr_pvsprintf(c->p, fmt, ap);
    va_end(ap);
    *c->perr = apr_pstrcat(c->p, c->source ? c->source : "", c->source ? ": " : "",
                           field ? field : "", field ? ": " : "", msg, NULL);
    return APR_EINVAL;
}

static const char *sub(ctx_t *c, const char *field, const char *member)
{
    return apr_pstrcat(c->p, field, ".", member, NULL);
}

static const char *idx(ctx_t *c, const char *field, size_t i)
{
    return apr_psprintf(c->p, "%s[%d]", field, (int)i);
}

/* ---- typed member access with precise messages ----------------------------------- */

static apr_status_t get_str(const char **pv, ctx_t *c, json_object *o, const char *key,
                            const char *field, int required)
{
    json_object *v;
    *pv = NULL;
    if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
        return required ? fail(c, sub(c, field, key), "is required") : APR_SUCCESS;
    }
    if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v)) {
        return fail(c, sub(c, field, key), "must be a non-empty string");
    }
    *pv = apr_pstrdup(c->p, json_object_get_string(v));
    return APR_SUCCESS;
}

/* An optional JSON array (NULL when absent); FHIR JSON has no empty arrays. */
static apr_status_t get_arr(json_object **pa, ctx_t *c, json_object *o, const char *key,
                            const char *field)
{
    json_object *v;
    *pa = NULL;
    if (!json_object_object_get_ex(o, key, &v)) return APR_SUCCESS;
    if (!json_object_is_type(v, json_type_array) || !json_object_array_length(v)) {
        return fail(c, sub(c, field, key), "must be a non-empty array");
    }
    *pa = v;
    return APR_SUCCESS;
}

static apr_status_t get_str_list(apr_array_header_t **plist, ctx_t *c, json_object *o,
                                 const char *key, const char *field)
{
    json_object *a;
    apr_status_t rv;
    size_t i;

    *plist = apr_array_make(c->p, 2, sizeof(const char *));
    if (APR_SUCCESS != (rv = get_arr(&a, c, o, key, field)) || !a) return rv;
    for (i = 0; i < json_object_array_length(a); ++i) {
        json_object *v = json_object_array_get_idx(a, i);
        if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v)) {
            return fail(c, idx(c, sub(c, field, key), i), "must be a non-empty string");
        }
        APR_ARRAY_PUSH(*plist, const char *) = apr_pstrdup(c->p, json_object_get_string(v));
    }
    return APR_SUCCESS;
}

static apr_status_t get_object(json_object **po, ctx_t *c, json_object *v, const char *field)
{
    *po = v;
    if (!v || !json_object_is_type(v, json_type_object)) {
        return fail(c, field, "must be a JSON object");
    }
    return APR_SUCCESS;
}

/* "Encounter" or its StructureDefinition URL, and one we have search parameters for. */
static apr_status_t get_resource(const char **ptype, ctx_t *c, json_object *o,
                                 const char *field, const char *fallback)
{
    const char *s;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = get_str(&s, c, o, "resource", field, !fallback))) return rv;
    *ptype = s ? fs_sp_type_from_canonical(s) : fallback;
    if (!fs_sp_type_name_ok(*ptype)) {
        return fail(c, sub(c, field, "resource"), "'%s' is neither a resource type nor a "
                    "StructureDefinition URL", s);
    }
    if (!fs_sp_resource_known(*ptype)) {
        return fail(c, sub(c, field, "resource"), "resource type '%s' is not supported; "
                    "supported: %s", *ptype, fs_sp_resource_types(c->p));
    }
    return APR_SUCCESS;
}

/* ---- resourceTrigger --------------------------------------------------------------- */

static apr_status_t get_interactions(int *pbits, ctx_t *c, json_object *o, const char *field)
{
    apr_array_header_t *list;
    apr_status_t rv;
    int i;

    *pbits = FS_TOPIC_ALL;
    rv = get_str_list(&list, c, o, "supportedInteraction", field);
    if (APR_SUCCESS != rv || !list->nelts) return rv;
    *pbits = 0;
    for (i = 0; i < list->nelts; ++i) {
        const char *s = APR_ARRAY_IDX(list, i, const char *);
        if (!strcmp(s, "create")) *pbits |= FS_TOPIC_CREATE;
        else if (!strcmp(s, "update")) *pbits |= FS_TOPIC_UPDATE;
        else if (!strcmp(s, "delete")) *pbits |= FS_TOPIC_DELETE;
        else return fail(c, idx(c, sub(c, field, "supportedInteraction"), (size_t)i),
                         "'%s' is not one of create, update, delete", s);
    }
    return APR_SUCCESS;
}

static apr_status_t get_result(fs_topic_result_t *pres, ctx_t *c, json_object *o,
                               const char *key, const char *field)
{
    const char *s;
    apr_status_t rv;

    *pres = FS_TOPIC_RESULT_UNSET;
    if (APR_SUCCESS != (rv = get_str(&s, c, o, key, field, 0)) || !s) return rv;
    if (!strcmp(s, "test-passes")) *pres = FS_TOPIC_TEST_PASSES;
    else if (!strcmp(s, "test-fails")) *pres = FS_TOPIC_TEST_FAILS;
    else return fail(c, sub(c, field, key), "'%s' is not one of test-passes, test-fails", s);
    return APR_SUCCESS;
}

/* A criteria string the engine evaluates against one version of the resource. */
static apr_status_t get_criteria(const char **ptext, apr_array_header_t **pfilters, ctx_t *c,
                                 json_object *qc, const char *key, const char *field,
                                 const char *type)
{
    const char *err;
    apr_status_t rv;
    int i;

    *pfilters = NULL;
    if (APR_SUCCESS != (rv = get_str(ptext, c, qc, key, field, 0)) || !*ptext) return rv;
    *pfilters = apr_array_make(c->p, 2, sizeof(fs_filter_t *));
    if (APR_SUCCESS != fs_filter_parse_query(*pfilters, c->p, *ptext, type, &err)) {
        return fail(c, sub(c, field, key), "%s", err);
    }
    for (i = 0; i < (*pfilters)->nelts; ++i) {
        const fs_filter_t *f = APR_ARRAY_IDX(*pfilters, i, const fs_filter_t *);
        if (strcmp(f->resource_type, type)) {
            return fail(c, sub(c, field, key), "'%s' tests %s, but the trigger is for %s",
                        *ptext, f->resource_type, type);
        }
    }
    return APR_SUCCESS;
}

static apr_status_t get_query_criteria(fs_topic_trigger_t *t, ctx_t *c, json_object *qc,
                                       const char *field)
{
    json_object *v;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = get_object(&qc, c, qc, field))) return rv;
    if (APR_SUCCESS != (rv = get_criteria(&t->previous_text, &t->previous, c, qc, "previous",
                                          field, t->resource_type))
        || APR_SUCCESS != (rv = get_criteria(&t->current_text, &t->current, c, qc, "current",
                                             field, t->resource_type))
        || APR_SUCCESS != (rv = get_result(&t->result_for_create, c, qc, "resultForCreate",
                                           field))
        || APR_SUCCESS != (rv = get_result(&t->result_for_delete, c, qc, "resultForDelete",
                                           field))) {
        return rv;
    }
    if (!t->previous && !t->current) {
        return fail(c, field, "has neither previous nor current");
    }
    if (json_object_object_get_ex(qc, "requireBoth", &v)) {
        if (!json_object_is_type(v, json_type_boolean)) {
            return fail(c, sub(c, field, "requireBoth"), "must be true or false");
        }
        t->require_both = json_object_get_boolean(v);
    }
    return APR_SUCCESS;
}

static apr_status_t get_trigger(fs_topic_trigger_t **pt, ctx_t *c, json_object *o,
                                const char *field)
{
    fs_topic_trigger_t *t = apr_pcalloc(c->p, sizeof(*t));
    json_object *qc;
    apr_status_t rv;

    *pt = t;
    if (APR_SUCCESS != (rv = get_object(&o, c, o, field))
        || APR_SUCCESS != (rv = get_resource(&t->resource_type, c, o, field, NULL))
        || APR_SUCCESS != (rv = get_interactions(&t->interactions, c, o, field))
        || APR_SUCCESS != (rv = get_str(&t->fhirpath, c, o, "fhirPathCriteria", field, 0))) {
        return rv;
    }
    if (json_object_object_get_ex(o, "queryCriteria", &qc)) {
        rv = get_query_criteria(t, c, qc, sub(c, field, "queryCriteria"));
    }
    else if (t->fhirpath) {
        /* evaluating only part of a topic would notify on events it excludes */
        rv = fail(c, sub(c, field, "fhirPathCriteria"), "FHIRPath criteria are not "
                  "supported; use queryCriteria");
    }
    return rv;
}

static apr_status_t get_triggers(fs_topic_t *topic, ctx_t *c, json_object *j)
{
    json_object *a;
    fs_topic_trigger_t *t;
    apr_status_t rv;
    size_t i;

    if (json_object_object_get_ex(j, "eventTrigger", &a)) {
        return fail(c, "eventTrigger", "event triggers are not supported; use resourceTrigger");
    }
    if (APR_SUCCESS != (rv = get_arr(&a, c, j, "resourceTrigger", "SubscriptionTopic"))) {
        return rv;
    }
    if (!a) return fail(c, "resourceTrigger", "is required (at least one resource trigger)");
    topic->triggers = apr_array_make(c->p, 2, sizeof(fs_topic_trigger_t *));
    for (i = 0; i < json_object_array_length(a); ++i) {
        rv = get_trigger(&t, c, json_object_array_get_idx(a, i), idx(c, "resourceTrigger", i));
        if (APR_SUCCESS != rv) return rv;
        APR_ARRAY_PUSH(topic->triggers, fs_topic_trigger_t *) = t;
    }
    return APR_SUCCESS;
}

/* ---- canFilterBy, notificationShape ----------------------------------------------- */

static apr_status_t check_comparators(ctx_t *c, const apr_array_header_t *list,
                                      const char *field)
{
    const char *const *k;
    int i;
    for (i = 0; i < list->nelts; ++i) {
        const char *s = APR_ARRAY_IDX(list, i, const char *);
        for (k = fs_sp_comparators(); *k && strcmp(*k, s); ++k);
        if (!*k) return fail(c, idx(c, field, (size_t)i), "unknown comparator '%s'", s);
    }
    return APR_SUCCESS;
}

static apr_status_t get_can_filter(fs_topic_can_filter_t **pcf, ctx_t *c, json_object *o,
                                   const char *field, const char *default_type)
{
    fs_topic_can_filter_t *cf = apr_pcalloc(c->p, sizeof(*cf));
    apr_status_t rv;

    *pcf = cf;
    if (APR_SUCCESS != (rv = get_object(&o, c, o, field))) return rv;
    if (!default_type && !json_object_object_get_ex(o, "resource", NULL)) {
        return fail(c, sub(c, field, "resource"), "is required when the topic has several "
                    "resource types");
    }
    if (APR_SUCCESS != (rv = get_resource(&cf->resource_type, c, o, field, default_type))
        || APR_SUCCESS != (rv = get_str(&cf->param, c, o, "filterParameter", field, 1))
        || APR_SUCCESS != (rv = get_str_list(&cf->comparators, c, o, "comparator", field))
        || APR_SUCCESS != (rv = get_str_list(&cf->modifiers, c, o, "modifier", field))
        || APR_SUCCESS != (rv = check_comparators(c, cf->comparators,
                                                  sub(c, field, "comparator")))) {
        return rv;
    }
    /* advertising a filter we cannot evaluate would invite subscriptions we must refuse */
    if (!(cf->sp = fs_sp_find(cf->resource_type, cf->param))) {
        return fail(c, sub(c, field, "filterParameter"), "'%s' is not supported for %s; "
                    "supported: %s", cf->param, cf->resource_type,
                    fs_sp_names(c->p, cf->resource_type));
    }
    return APR_SUCCESS;
}

static apr_status_t get_shape(fs_topic_shape_t **ps, ctx_t *c, json_object *o,
                              const char *field)
{
    fs_topic_shape_t *s = apr_pcalloc(c->p, sizeof(*s));
    apr_status_t rv;

    *ps = s;
    if (APR_SUCCESS != (rv = get_object(&o, c, o, field))
        || APR_SUCCESS != (rv = get_resource(&s->resource_type, c, o, field, NULL))
        || APR_SUCCESS != (rv = get_str_list(&s->include, c, o, "include", field))
        || APR_SUCCESS != (rv = get_str_list(&s->rev_include, c, o, "revInclude", field))) {
        return rv;
    }
    return APR_SUCCESS;
}

static apr_status_t get_filters_and_shapes(fs_topic_t *topic, ctx_t *c, json_object *j)
{
    json_object *a;
    apr_status_t rv;
    size_t i;

    topic->can_filter_by = apr_array_make(c->p, 4, sizeof(fs_topic_can_filter_t *));
    topic->shapes = apr_array_make(c->p, 2, sizeof(fs_topic_shape_t *));
    if (APR_SUCCESS != (rv = get_arr(&a, c, j, "canFilterBy", "SubscriptionTopic"))) return rv;
    for (i = 0; a && i < json_object_array_length(a); ++i) {
        fs_topic_can_filter_t *cf;
        rv = get_can_filter(&cf, c, json_object_array_get_idx(a, i), idx(c, "canFilterBy", i),
                            fs_topic_default_type(topic));
        if (APR_SUCCESS != rv) return rv;
        APR_ARRAY_PUSH(topic->can_filter_by, fs_topic_can_filter_t *) = cf;
    }
    if (APR_SUCCESS != (rv = get_arr(&a, c, j, "notificationShape", "SubscriptionTopic"))) {
        return rv;
    }
    for (i = 0; a && i < json_object_array_length(a); ++i) {
        fs_topic_shape_t *s;
        rv = get_shape(&s, c, json_object_array_get_idx(a, i), idx(c, "notificationShape", i));
        if (APR_SUCCESS != rv) return rv;
        APR_ARRAY_PUSH(topic->shapes, fs_topic_shape_t *) = s;
    }
    return APR_SUCCESS;
}

/* ---- R4 Basic topics: cross-version extensions -> SubscriptionTopic shape --------- */

static const char *const XVER_PREFIXES[] = {
    "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.",
    "http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic.",
    NULL
};
#define ARTIFACT_URL "http://hl7.org/fhir/StructureDefinition/artifact-url"
#define ARTIFACT_STATUS "http://hl7.org/fhir/StructureDefinition/artifact-status"
#define ARTIFACT_VERSION "http://hl7.org/fhir/StructureDefinition/artifact-version"
#define ARTIFACT_TITLE "http://hl7.org/fhir/StructureDefinition/artifact-title"

/* Elements that repeat, so that their extensions collect into arrays. */
static const char *const REPEATING[] = {
    "resourceTrigger", "eventTrigger", "canFilterBy", "notificationShape",
    "supportedInteraction", "include", "revInclude", "modifier", "comparator", NULL
};

static int is_repeating(const char *name)
{
    const char *const *r;
    for (r = REPEATING; *r; ++r) {
        if (!strcmp(*r, name)) return 1;
    }
    return 0;
}

/* The element name a cross-version (or artifact-*) extension stands for, or NULL. */
static const char *xver_name(const char *url)
{
    const char *const *pre;
    if (!url) return NULL;
    if (!strcmp(url, ARTIFACT_URL)) return "url";
    if (!strcmp(url, ARTIFACT_STATUS)) return "status";
    if (!strcmp(url, ARTIFACT_VERSION)) return "version";
    if (!strcmp(url, ARTIFACT_TITLE)) return "title";
    for (pre = XVER_PREFIXES; *pre; ++pre) {
        if (!strncmp(url, *pre, strlen(*pre))) return url + strlen(*pre);
    }
    return NULL;
}

static json_object *ext_value(json_object *ext);

static void put_member(json_object *obj, const char *name, json_object *v)
{
    json_object *a;
    if (!v) return;
    if (!is_repeating(name)) {
        json_object_object_add(obj, name, v);
        return;
    }
    if (!json_object_object_get_ex(obj, name, &a)) {
        a = json_object_new_array();
        json_object_object_add(obj, name, a);
    }
    json_object_array_add(a, v);
}

/* Nested extensions with relative urls become members; absolute urls are other IGs'. */
static json_object *ext_object(json_object *exts)
{
    json_object *obj = json_object_new_object();
    size_t i;
    for (i = 0; i < json_object_array_length(exts); ++i) {
        json_object *e = json_object_array_get_idx(exts, i);
        const char *url = fs_json_get_str(e, "url");
        if (!url || strchr(url, ':')) continue;
        put_member(obj, url, ext_value(e));
    }
    return obj;
}

/* A new reference (caller owns it): the value[x] or the nested extensions as an object. */
static json_object *ext_value(json_object *ext)
{
    json_object *nested = fs_json_get_typed(ext, "extension", json_type_array);
    if (nested) return ext_object(nested);
    json_object_object_foreach(ext, key, val) {
        if (!strncmp(key, "value", 5)) return json_object_get(val);
    }
    return NULL;
}

static void basic_exts(json_object *out, json_object *exts)
{
    size_t i;
    for (i = 0; exts && i < json_object_array_length(exts); ++i) {
        json_object *e = json_object_array_get_idx(exts, i);
        const char *name = xver_name(fs_json_get_str(e, "url"));
        if (name) put_member(out, name, ext_value(e));
    }
}

static int basic_is_topic(json_object *j)
{
    json_object *codings = fs_json_get_typed(fs_json_get_typed(j, "code", json_type_object),
                                             "coding", json_type_array);
    size_t i;
    for (i = 0; codings && i < json_object_array_length(codings); ++i) {
        const char *code = fs_json_get_str(json_object_array_get_idx(codings, i), "code");
        if (code && !strcmp(code, "SubscriptionTopic")) return 1;
    }
    return 0;
}

static apr_status_t basic_to_topic(json_object **pout, ctx_t *c, json_object *j)
{
    json_object *out;
    if (!basic_is_topic(j)) {
        return fail(c, "code", "this Basic resource is not a SubscriptionTopic (expected "
                    "code http://hl7.org/fhir/fhir-types#SubscriptionTopic)");
    }
    out = json_object_new_object();
    fs_json_add_str(out, "resourceType", "SubscriptionTopic");
    basic_exts(out, fs_json_get_typed(j, "extension", json_type_array));
    basic_exts(out, fs_json_get_typed(j, "modifierExtension", json_type_array));
    *pout = out;
    return APR_SUCCESS;
}

/* ---- the topic ------------------------------------------------------------------- */

static apr_status_t check_status(ctx_t *c, const char *status)
{
    static const char *const codes[] = { "draft", "active", "retired", "unknown", NULL };
    const char *const *s;
    if (!status) return APR_SUCCESS;
    for (s = codes; *s; ++s) {
        if (!strcmp(*s, status)) return APR_SUCCESS;
    }
    return fail(c, "status", "'%s' is not one of draft, active, retired, unknown", status);
}

apr_status_t fs_topic_from_json(fs_topic_t **ptopic, apr_pool_t *p, json_object *j,
                                const char *source, const char **perr)
{
    ctx_t ctx = { p, source, perr }, *c = &ctx;
    fs_topic_t *topic = apr_pcalloc(p, sizeof(*topic));
    json_object *shape = j;
    const char *rtype;
    apr_status_t rv;

    *ptopic = NULL;
    if (!j || !json_object_is_type(j, json_type_object)) {
        rv = fail(c, NULL, "a SubscriptionTopic must be a JSON object");
        goto leave;
    }
    rtype = fs_json_get_str(j, "resourceType");
    if (rtype && !strcmp(rtype, "Basic")) {
        topic->basic = 1;
        /* shape is ours to put at leave; everything kept is copied into p */
        if (APR_SUCCESS != (rv = basic_to_topic(&shape, c, j))) goto leave;
    }
    else if (!rtype || strcmp(rtype, "SubscriptionTopic")) {
        rv = fail(c, "resourceType", "'%s' is not SubscriptionTopic (or an R4 Basic topic)",
                  rtype ? rtype : "(missing)");
        goto leave;
    }
    topic->source = source ? apr_pstrdup(p, source) : NULL;
    if (APR_SUCCESS != (rv = get_str(&topic->url, c, shape, "url", "SubscriptionTopic", 1))
        || APR_SUCCESS != (rv = get_str(&topic->version, c, shape, "version",
                                        "SubscriptionTopic", 0))
        || APR_SUCCESS != (rv = get_str(&topic->title, c, shape, "title", "SubscriptionTopic", 0))
        || APR_SUCCESS != (rv = get_str(&topic->status, c, shape, "status",
                                        "SubscriptionTopic", 0))
        || APR_SUCCESS != (rv = check_status(c, topic->status))
        || APR_SUCCESS != (rv = get_triggers(topic, c, shape))
        || APR_SUCCESS != (rv = get_filters_and_shapes(topic, c, shape))) {
        goto leave;
    }
    topic->json = fs_json_str(p, j);
    *ptopic = topic;
leave:
    if (shape != j) json_object_put(shape);
    return rv;
}

apr_status_t fs_topic_parse(fs_topic_t **ptopic, apr_pool_t *p, const char *text,
                            apr_size_t len, const char *source, const char **perr)
{
    json_object *j;
    apr_pool_t *ptemp;
    apr_status_t rv;

    *ptopic = NULL;
    if (APR_SUCCESS != (rv = apr_pool_create(&ptemp, p))) return rv;
    if (APR_SUCCESS != (rv = fs_json_parse(&j, ptemp, text, len, perr))) {
        if (source) *perr = apr_pstrcat(p, source, ": ", *perr, NULL);
        goto leave;
    }
    rv = fs_topic_from_json(ptopic, p, j, source, perr);
leave:
    apr_pool_destroy(ptemp);
    return rv;
}

static apr_status_t read_file(char **ptext, apr_size_t *plen, apr_pool_t *p,
                              const char *path, const char **perr)
{
    apr_file_t *fd = NULL;
    apr_finfo_t fi;
    char buf[256];
    apr_status_t rv;

    if (APR_SUCCESS != (rv = apr_file_open(&fd, path, APR_FOPEN_READ | APR_FOPEN_BINARY, 0, p))
        || APR_SUCCESS != (rv = apr_file_info_get(&fi, APR_FINFO_SIZE, fd))) {
        *perr = apr_psprintf(p, "%s: cannot read: %s", path, apr_strerror(rv, buf, sizeof(buf)));
        goto leave;
    }
    if (fi.size > TOPIC_FILE_MAX) {
        *perr = apr_psprintf(p, "%s: larger than %d bytes, not a topic file", path,
                             TOPIC_FILE_MAX);
        rv = APR_EINVAL;
        goto leave;
    }
    *ptext = apr_palloc(p, (apr_size_t)fi.size + 1);
    if (APR_SUCCESS != (rv = apr_file_read_full(fd, *ptext, (apr_size_t)fi.size, plen))) {
        *perr = apr_psprintf(p, "%s: cannot read: %s", path, apr_strerror(rv, buf, sizeof(buf)));
        goto leave;
    }
    (*ptext)[*plen] = '\0';
leave:
    if (fd) apr_file_close(fd);
    return rv;
}

apr_status_t fs_topic_load_file(fs_topic_t **ptopic, apr_pool_t *p, const char *path,
                                const char **perr)
{
    apr_pool_t *ptemp;
    char *text;
    apr_size_t len;
    apr_status_t rv;

    *ptopic = NULL;
    if (APR_SUCCESS != (rv = apr_pool_create(&ptemp, p))) return rv;
    if (APR_SUCCESS != (rv = read_file(&text, &len, ptemp, path, perr))) {
        *perr = apr_pstrdup(p, *perr);
        goto leave;
    }
    rv = fs_topic_parse(ptopic, p, text, len, path, perr);
leave:
    apr_pool_destroy(ptemp);
    return rv;
}

const char *fs_topic_default_type(const fs_topic_t *topic)
{
    const char *type = NULL;
    int i;
    for (i = 0; topic->triggers && i < topic->triggers->nelts; ++i) {
        const fs_topic_trigger_t *t = APR_ARRAY_IDX(topic->triggers, i, fs_topic_trigger_t *);
        if (type && strcmp(type, t->resource_type)) return NULL;
        type = t->resource_type;
    }
    return type;
}

const fs_topic_can_filter_t *fs_topic_can_filter(const fs_topic_t *topic,
                                                 const char *resource_type,
                                                 const char *param)
{
    int i;
    for (i = 0; topic->can_filter_by && i < topic->can_filter_by->nelts; ++i) {
        const fs_topic_can_filter_t *cf = APR_ARRAY_IDX(topic->can_filter_by, i,
                                                        fs_topic_can_filter_t *);
        if (!strcmp(cf->resource_type, resource_type) && !strcmp(cf->param, param)) return cf;
    }
    return NULL;
}

const char *fs_topic_filter_names(apr_pool_t *p, const fs_topic_t *topic,
                                  const char *resource_type)
{
    const char *s = NULL;
    int i;
    for (i = 0; topic->can_filter_by && i < topic->can_filter_by->nelts; ++i) {
        const fs_topic_can_filter_t *cf = APR_ARRAY_IDX(topic->can_filter_by, i,
                                                        fs_topic_can_filter_t *);
        const char *name;
        if (resource_type && strcmp(cf->resource_type, resource_type)) continue;
        name = resource_type ? cf->param : apr_pstrcat(p, cf->resource_type, ".", cf->param,
                                                       NULL);
        s = s ? apr_pstrcat(p, s, ", ", name, NULL) : name;
    }
    return s ? s : "(none)";
}

/* ---- registry -------------------------------------------------------------------- */

struct fs_topics_t {
    apr_pool_t *p;
    apr_hash_t *by_url;         /* url -> const fs_topic_t* */
    apr_array_header_t *list;   /* const fs_topic_t*, in order of addition */
};

apr_status_t fs_topics_create(fs_topics_t **ptopics, apr_pool_t *p)
{
    fs_topics_t *topics = apr_pcalloc(p, sizeof(*topics));
    topics->p = p;
    topics->by_url = apr_hash_make(p);
    topics->list = apr_array_make(p, 8, sizeof(const fs_topic_t *));
    *ptopics = topics;
    return APR_SUCCESS;
}

apr_status_t fs_topics_add(fs_topics_t *topics, const fs_topic_t *topic, const char **perr)
{
    const fs_topic_t *old = apr_hash_get(topics->by_url, topic->url, APR_HASH_KEY_STRING);
    if (old) {
        *perr = apr_psprintf(topics->p, "%s%stopic url '%s' is already defined%s%s",
                             topic->source ? topic->source : "", topic->source ? ": " : "",
                             topic->url, old->source ? " by " : "",
                             old->source ? old->source : "");
        return APR_EEXIST;
    }
    apr_hash_set(topics->by_url, topic->url, APR_HASH_KEY_STRING, topic);
    APR_ARRAY_PUSH(topics->list, const fs_topic_t *) = topic;
    return APR_SUCCESS;
}

apr_status_t fs_topics_load_file(fs_topics_t *topics, const char *path, const char **perr)
{
    fs_topic_t *topic;
    apr_status_t rv;
    if (APR_SUCCESS != (rv = fs_topic_load_file(&topic, topics->p, path, perr))) return rv;
    return fs_topics_add(topics, topic, perr);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_topic_file(const apr_finfo_t *fi)
{
    apr_size_t n = strlen(fi->name);
    return fi->name[0] != '.' && n > 5 && !strcmp(fi->name + n - 5, ".json")
           && (!(fi->valid & APR_FINFO_TYPE) || fi->filetype == APR_REG
               || fi->filetype == APR_LNK);
}

apr_status_t fs_topics_load_dir(fs_topics_t *topics, const char *dir, const char **perr)
{
    apr_pool_t *ptemp;
    apr_dir_t *d;
    apr_finfo_t fi;
    apr_array_header_t *names;
    char buf[256];
    apr_status_t rv;
    int i;

    if (APR_SUCCESS != (rv = apr_pool_create(&ptemp, topics->p))) return rv;
    names = apr_array_make(ptemp, 8, sizeof(const char *));
    if (APR_SUCCESS != (rv = apr_dir_open(&d, dir, ptemp))) {
        *perr = apr_psprintf(topics->p, "%s: cannot open topic directory: %s", dir,
                             apr_strerror(rv, buf, sizeof(buf)));
        goto leave;
    }
    /* APR_INCOMPLETE: the file system did not tell the type; the name decides then */
    while (APR_SUCCESS == (rv = apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d))
           || APR_INCOMPLETE == rv) {
        if (is_topic_file(&fi)) APR_ARRAY_PUSH(names, const char *) = apr_pstrdup(ptemp, fi.name);
    }
    apr_dir_close(d);
    if (!APR_STATUS_IS_ENOENT(rv)) {
        *perr = apr_psprintf(topics->p, "%s: cannot read topic directory: %s", dir,
                             apr_strerror(rv, buf, sizeof(buf)));
        goto leave;
    }
    rv = APR_SUCCESS;
    /* name order makes the load order, and so the first duplicate reported, predictable */
    qsort(names->elts, (size_t)names->nelts, sizeof(const char *), cmp_str);
    for (i = 0; i < names->nelts && APR_SUCCESS == rv; ++i) {
        rv = fs_topics_load_file(topics, apr_pstrcat(topics->p, dir, "/",
                                 APR_ARRAY_IDX(names, i, const char *), NULL), perr);
    }
leave:
    apr_pool_destroy(ptemp);
    return rv;
}

int fs_topic_triggers_on(const fs_topic_t *topic, const char *resource_type)
{
    int i;
    if (!topic || !resource_type || !topic->triggers) return 0;
    for (i = 0; i < topic->triggers->nelts; ++i) {
        const fs_topic_trigger_t *t = APR_ARRAY_IDX(topic->triggers, i, fs_topic_trigger_t *);
        if (t->resource_type && !strcmp(t->resource_type, resource_type)) return 1;
    }
    return 0;
}

const fs_topic_t *fs_topics_get(const fs_topics_t *topics, const char *url)
{
    const fs_topic_t *t;
    const char *bar;
    if (!url) return NULL;
    if ((t = apr_hash_get(topics->by_url, url, APR_HASH_KEY_STRING))) return t;
    if ((bar = strchr(url, '|'))) {
        t = apr_hash_get(topics->by_url, url, (apr_ssize_t)(bar - url));
        if (t && t->version && !strcmp(t->version, bar + 1)) return t;
    }
    return NULL;
}

int fs_topics_count(const fs_topics_t *topics)
{
    return topics->list->nelts;
}

const fs_topic_t *fs_topics_at(const fs_topics_t *topics, int i)
{
    if (i < 0 || i >= topics->list->nelts) return NULL;
    return APR_ARRAY_IDX(topics->list, i, const fs_topic_t *);
}
