#include <string.h>

#include "fs_json.h"
#include "fs_opdef.h"

/* The definitions are data: one table row per operation, one per parameter, with
 * the few R4/R5 differences as extra columns. R5 rows follow the FHIR 5.0.0
 * definitions, R4 rows the Subscriptions R5 Backport IG (STU 1.1). */

typedef struct {
    const char *name;
    const char *use;        /* "in" | "out" */
    int min;
    const char *max;
    const char *type;       /* R5 type */
    const char *type_r4;    /* R4 type where it differs (R4 has no integer64) */
    int scope_type;         /* R5 scope ["type"]: ignored at instance level */
    int status_binding;     /* required binding to the subscription-status value set */
    const char *doc;
    const char *doc_r4;     /* R4 text where it differs */
} op_param_t;

typedef struct {
    const char *code;
    const char *id_r4, *id_r5;
    const char *url_r4, *url_r5;
    const char *name_r4, *name_r5;
    const char *title;
    const char *description;
    int affects_state_r4, affects_state_r5;
    int type_level, instance_level;
    const op_param_t *params;
} op_t;

#define R4_ID(code) "backport-subscription-" code
#define R5_ID(code) "Subscription-" code
#define OP_IDS(code) code, R4_ID(code), R5_ID(code), \
    FS_URL_BACKPORT_OPDEF R4_ID(code), FS_URL_FHIR_OPDEF R5_ID(code)

#define DOC_ID_LEVEL "At the Instance level, this parameter is ignored. At the Resource level, "

static const op_param_t token_params[] = {
    { "id", "in", 0, "*", "id", NULL, 1, 0,
      DOC_ID_LEVEL "one or more parameters containing a FHIR id for a Subscription to get "
      "a token for. In the absence of any specified ids, the server may either return a "
      "token for all Subscriptions available to the caller with a channel-type of "
      "websocket or fail the request.", NULL },
    { "token", "out", 1, "1", "string", NULL, 0, 0,
      "An access token that a client may use to show authorization during a websocket "
      "connection. The security details of the token are implementation-dependent and "
      "beyond the scope of this operation definition.", NULL },
    { "expiration", "out", 1, "1", "dateTime", NULL, 0, 0,
      "The date and time this token is valid until.", NULL },
    { "subscription", "out", 0, "*", "string", NULL, 0, 0,
      "The subscriptions this token is valid for.", NULL },
    { "websocket-url", "out", 1, "1", "url", NULL, 0, 0,
      "The URL the client should use to connect to Websockets.", NULL },
    { NULL, NULL, 0, NULL, NULL, NULL, 0, 0, NULL, NULL }
};

static const op_param_t status_params[] = {
    { "id", "in", 0, "*", "id", NULL, 1, 0,
      DOC_ID_LEVEL "one or more FHIR ids to Subscription resources to get status "
      "information for. In the absence of any specified ids, the server returns the "
      "status for all Subscriptions available to the caller. Multiple values are joined "
      "via OR (e.g., \"id1\" OR \"id2\").", NULL },
    { "status", "in", 0, "*", "code", NULL, 1, 1,
      DOC_ID_LEVEL "a Subscription status code to filter by (e.g., \"active\"). In the "
      "absence of any specified status values, the server does not filter contents based "
      "on the status. Multiple values are joined via OR (e.g., \"error\" OR \"off\").",
      NULL },
    { "return", "out", 1, "1", "Bundle", NULL, 0, 0,
      "The operation returns a bundle containing zero or more SubscriptionStatus "
      "resources, one per Subscription in the request that was found. The Bundle type "
      "is \"searchset\".",
      "The operation returns a bundle containing zero or more subscription status "
      "Parameters resources (backport-subscription-status-r4), one per Subscription in "
      "the request that was found. The Bundle type is \"searchset\"." },
    { NULL, NULL, 0, NULL, NULL, NULL, 0, 0, NULL, NULL }
};

static const op_param_t events_params[] = {
    { "eventsSinceNumber", "in", 0, "1", "integer64", "string", 0, 0,
      "The first event number to return, inclusive (lower bound).", NULL },
    { "eventsUntilNumber", "in", 0, "1", "integer64", "string", 0, 0,
      "The last event number to return, inclusive (upper bound).", NULL },
    { "content", "in", 0, "1", "code", NULL, 0, 0,
      "The content level the client would prefer in the returned notification: empty, "
      "id-only or full-resource. A hint the server MAY ignore.", NULL },
    { "return", "out", 1, "1", "Bundle", NULL, 0, 0,
      "A notification bundle whose first entry is a SubscriptionStatus resource "
      "(type query-event). The Bundle type is \"subscription-notification\".",
      "A notification bundle whose first entry is a subscription status Parameters "
      "resource (type query-event). The Bundle type is \"history\"." },
    { NULL, NULL, 0, NULL, NULL, NULL, 0, 0, NULL, NULL }
};

static const op_t ops[] = {
    { OP_IDS(FS_OP_GET_WS_BINDING_TOKEN),
      "R5SubscriptionGetWsBindingToken", "GetWsBindingToken",
      "Get a binding token for use in a websocket connection",
      "This operation is used to get a token for a websocket client to use in order to "
      "bind to one or more subscriptions.",
      /* the backport IG declares it side-effect free, so GET is allowed there */
      0, 1, 1, 1, token_params },
    { OP_IDS(FS_OP_STATUS),
      "R5SubscriptionStatus", "Status",
      "Get Current Subscription Status for One or More Subscriptions",
      "This operation is used to return the current status information about one or "
      "more topic-based Subscriptions.",
      0, 0, 1, 1, status_params },
    { OP_IDS(FS_OP_EVENTS),
      "R5SubscriptionEvents", "Events",
      "Search and retrieve prior events for a Subscription",
      "This operation is used to search for and return notifications that have been "
      "previously triggered by a topic-based Subscription.",
      0, 0, 0, 1, events_params },
};

#define OPS_COUNT (sizeof(ops) / sizeof(ops[0]))

static const char *const ids_r4[] = {
    R4_ID(FS_OP_GET_WS_BINDING_TOKEN), R4_ID(FS_OP_STATUS), R4_ID(FS_OP_EVENTS), NULL
};
static const char *const ids_r5[] = {
    R5_ID(FS_OP_GET_WS_BINDING_TOKEN), R5_ID(FS_OP_STATUS), R5_ID(FS_OP_EVENTS), NULL
};
static const char *const ids_none[] = { NULL };

const char *const *fs_opdef_ids(fs_fhir_version_t v)
{
    switch (v) {
    case FS_FHIR_R4: return ids_r4;
    case FS_FHIR_R5: return ids_r5;
    }
    return ids_none;
}

static const op_t *op_by_code(const char *code)
{
    size_t i;
    for (i = 0; code && i < OPS_COUNT; ++i) {
        if (!strcmp(ops[i].code, code)) return &ops[i];
    }
    return NULL;
}

const char *fs_opdef_id(fs_fhir_version_t v, const char *code)
{
    const op_t *op = op_by_code(code);
    if (!op || !fs_fhir_version_str(v)) return NULL;
    return v == FS_FHIR_R4 ? op->id_r4 : op->id_r5;
}

const char *fs_opdef_canonical(fs_fhir_version_t v, const char *code)
{
    const op_t *op = op_by_code(code);
    if (!op || !fs_fhir_version_str(v)) return NULL;
    return v == FS_FHIR_R4 ? op->url_r4 : op->url_r5;
}

static void add_bool(json_object *o, const char *key, int val)
{
    json_object_object_add(o, key, json_object_new_boolean(val ? 1 : 0));
}

static json_object *str_array(const char *val)
{
    json_object *a = json_object_new_array();
    json_object_array_add(a, json_object_new_string(val));
    return a;
}

static json_object *build_param(const op_param_t *prm, fs_fhir_version_t v)
{
    json_object *o = json_object_new_object();
    int r4 = (v == FS_FHIR_R4);

    fs_json_add_str(o, "name", prm->name);
    fs_json_add_str(o, "use", prm->use);
    /* parameter.scope is new in R5 */
    if (!r4 && prm->scope_type) json_object_object_add(o, "scope", str_array("type"));
    json_object_object_add(o, "min", json_object_new_int(prm->min));
    fs_json_add_str(o, "max", prm->max);
    fs_json_add_str(o, "documentation", (r4 && prm->doc_r4) ? prm->doc_r4 : prm->doc);
    fs_json_add_str(o, "type", (r4 && prm->type_r4) ? prm->type_r4 : prm->type);
    if (prm->status_binding) {
        json_object *b = json_object_new_object();
        fs_json_add_str(b, "strength", "required");
        fs_json_add_str(b, "valueSet", r4
                        ? FS_URL_VS_SUBSCRIPTION_STATUS "|" FS_FHIR_VERSION_R4
                        : FS_URL_VS_SUBSCRIPTION_STATUS "|" FS_FHIR_VERSION_R5);
        json_object_object_add(o, "binding", b);
    }
    return o;
}

static json_object *build_op(const op_t *op, fs_fhir_version_t v)
{
    json_object *o = json_object_new_object(), *params;
    const op_param_t *prm;
    int r4 = (v == FS_FHIR_R4);

    fs_json_add_str(o, "resourceType", "OperationDefinition");
    fs_json_add_str(o, "id", r4 ? op->id_r4 : op->id_r5);
    fs_json_add_str(o, "url", r4 ? op->url_r4 : op->url_r5);
    /* the version of the publication the definition comes from */
    fs_json_add_str(o, "version", r4 ? "1.1.0" : FS_FHIR_VERSION_R5);
    fs_json_add_str(o, "name", r4 ? op->name_r4 : op->name_r5);
    fs_json_add_str(o, "title", op->title);
    fs_json_add_str(o, "status", r4 ? "active" : "draft");
    fs_json_add_str(o, "kind", "operation");
    add_bool(o, "experimental", 0);
    fs_json_add_str(o, "date", r4 ? "2020-11-30" : "2023-03-26T15:21:02+11:00");
    fs_json_add_str(o, "publisher", r4 ? "HL7 International - FHIR Infrastructure Work Group"
                                       : "HL7 (FHIR Project)");
    fs_json_add_str(o, "description", op->description);
    add_bool(o, "affectsState", r4 ? op->affects_state_r4 : op->affects_state_r5);
    fs_json_add_str(o, "code", op->code);
    json_object_object_add(o, "resource", str_array("Subscription"));
    add_bool(o, "system", 0);
    add_bool(o, "type", op->type_level);
    add_bool(o, "instance", op->instance_level);
    params = json_object_new_array();
    for (prm = op->params; prm->name; ++prm) {
        json_object_array_add(params, build_param(prm, v));
    }
    json_object_object_add(o, "parameter", params);
    return o;
}

apr_status_t fs_opdef_get(json_object **pj, apr_pool_t *p, fs_fhir_version_t v,
                          const char *id)
{
    size_t i;

    *pj = NULL;
    if (!id || !fs_fhir_version_str(v)) return APR_NOTFOUND;
    for (i = 0; i < OPS_COUNT; ++i) {
        if (!strcmp(id, v == FS_FHIR_R4 ? ops[i].id_r4 : ops[i].id_r5)) {
            *pj = fs_json_pool_own(p, build_op(&ops[i], v));
            return APR_SUCCESS;
        }
    }
    return APR_NOTFOUND;
}
