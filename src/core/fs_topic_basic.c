#include <string.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "fs_topic_basic.h"

#define XVER "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic."

/* The value[x] type of each element path of SubscriptionTopic that is carried;
 * backbone elements (resourceTrigger, queryCriteria, canFilterBy, notificationShape)
 * have no type and nest. */
typedef struct elem_type { const char *path; const char *type; } elem_type;

static const elem_type ELEMENTS[] = {
    { "url", "Uri" }, { "version", "String" }, { "name", "String" },
    { "title", "String" }, { "status", "Code" }, { "experimental", "Boolean" },
    { "date", "DateTime" }, { "publisher", "String" }, { "description", "Markdown" },
    { "purpose", "Markdown" }, { "copyright", "Markdown" }, { "derivedFrom", "Canonical" },
    { "resourceTrigger", NULL },
    { "resourceTrigger.description", "Markdown" },
    { "resourceTrigger.resource", "Uri" },
    { "resourceTrigger.supportedInteraction", "Code" },
    { "resourceTrigger.queryCriteria", NULL },
    { "resourceTrigger.queryCriteria.previous", "String" },
    { "resourceTrigger.queryCriteria.resultForCreate", "Code" },
    { "resourceTrigger.queryCriteria.current", "String" },
    { "resourceTrigger.queryCriteria.resultForDelete", "Code" },
    { "resourceTrigger.queryCriteria.requireBoth", "Boolean" },
    { "resourceTrigger.fhirPathCriteria", "String" },
    { "canFilterBy", NULL },
    { "canFilterBy.description", "Markdown" },
    { "canFilterBy.resource", "Uri" },
    { "canFilterBy.filterParameter", "String" },
    { "canFilterBy.filterDefinition", "Uri" },
    { "canFilterBy.comparator", "Code" },
    { "canFilterBy.modifier", "Code" },
    { "notificationShape", NULL },
    { "notificationShape.resource", "Uri" },
    { "notificationShape.include", "String" },
    { "notificationShape.revInclude", "String" },
    { NULL, NULL }
};

/* 1: a primitive of *ptype, 0: a backbone, -1: not carried. */
static int elem_kind(const char *path, const char **ptype)
{
    const elem_type *e;
    for (e = ELEMENTS; e->path; ++e) {
        if (!strcmp(e->path, path)) {
            *ptype = e->type;
            return e->type ? 1 : 0;
        }
    }
    return -1;
}

static void add_elements(apr_pool_t *p, json_object *exts, json_object *obj,
                         const char *prefix, int top);

/* One extension for one value of the element at path. */
static json_object *element_ext(apr_pool_t *p, const char *url, const char *path,
                                json_object *v)
{
    json_object *ext = json_object_new_object();
    const char *type = NULL;

    fs_json_add_str(ext, "url", url);
    if (elem_kind(path, &type) == 1) {
        json_object_object_add(ext, apr_pstrcat(p, "value", type, NULL), json_object_get(v));
    }
    else {
        json_object *nested = json_object_new_array();
        add_elements(p, nested, v, path, 0);
        json_object_object_add(ext, "extension", nested);
    }
    return ext;
}

static void add_elements(apr_pool_t *p, json_object *exts, json_object *obj,
                         const char *prefix, int top)
{
    json_object_object_foreach(obj, key, val) {
        const char *path = *prefix ? apr_pstrcat(p, prefix, ".", key, NULL) : key;
        const char *url = top ? apr_pstrcat(p, XVER, key, NULL) : key, *type;
        size_t i;
        if (elem_kind(path, &type) < 0) continue;
        if (!json_object_is_type(val, json_type_array)) {
            json_object_array_add(exts, element_ext(p, url, path, val));
            continue;
        }
        for (i = 0; i < json_object_array_length(val); ++i) {
            json_object_array_add(exts, element_ext(p, url, path,
                                                    json_object_array_get_idx(val, i)));
        }
    }
}

json_object *fs_topic_to_basic(apr_pool_t *p, json_object *topic)
{
    json_object *basic = json_object_new_object();
    json_object *code = json_object_new_object(), *codings = json_object_new_array();
    json_object *coding = json_object_new_object(), *exts = json_object_new_array();
    const char *id = fs_json_get_str(topic, "id");

    fs_json_add_str(basic, "resourceType", "Basic");
    if (id) fs_json_add_str(basic, "id", id);
    add_elements(p, exts, topic, "", 1);
    json_object_object_add(basic, "extension", exts);
    fs_json_add_str(coding, "system", "http://hl7.org/fhir/fhir-types");
    fs_json_add_str(coding, "code", "SubscriptionTopic");
    json_object_array_add(codings, coding);
    json_object_object_add(code, "coding", codings);
    json_object_object_add(basic, "code", code);
    return fs_json_pool_own(p, basic);
}
