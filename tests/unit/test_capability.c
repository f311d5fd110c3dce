/* Unit tests: fs_opdef (OperationDefinitions against the seed definitions) and
 * fs_capability (augmenting a backend CapabilityStatement, our own one). */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "fs_check.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_opdef.h"
#include "../../src/core/fs_capability.h"
#include "../../src/core/fs_time.h"



static json_object *parse(const char *text)
{
    json_object *j = NULL;
    const char *err = NULL;
    ck_assert_msg(fs_json_parse(&j, pool, text, strlen(text), &err) == APR_SUCCESS,
                  "test JSON does not parse: %s", err);
    return j;
}

static json_object *opdef(fs_fhir_version_t v, const char *id)
{
    json_object *od = NULL;
    ck_assert_int_eq(fs_opdef_get(&od, pool, v, id), APR_SUCCESS);
    ck_assert_ptr_nonnull(od);
    return od;
}

static int get_bool(json_object *o, const char *key)
{
    json_object *b = fs_json_get_typed(o, key, json_type_boolean);
    ck_assert_msg(b != NULL, "boolean '%s' missing", key);
    return json_object_get_boolean(b);
}

static json_object *array_at(json_object *o, const char *key, size_t idx)
{
    json_object *a = fs_json_get_typed(o, key, json_type_array);
    ck_assert_msg(a != NULL, "array '%s' missing", key);
    ck_assert_msg(idx < json_object_array_length(a), "'%s' has no [%zu]", key, idx);
    return json_object_array_get_idx(a, idx);
}

static size_t array_len(json_object *o, const char *key)
{
    json_object *a = fs_json_get_typed(o, key, json_type_array);
    return a ? json_object_array_length(a) : 0;
}

/* Elements of array o[key] whose member k equals val. */
static int count_keyed(json_object *o, const char *key, const char *k, const char *val)
{
    size_t i, n = array_len(o, key);
    int count = 0;
    for (i = 0; i < n; ++i) {
        const char *s = fs_json_get_str(array_at(o, key, i), k);
        if (s && !strcmp(s, val)) ++count;
    }
    return count;
}

static json_object *find_keyed(json_object *o, const char *key, const char *k,
                               const char *val)
{
    size_t i, n = array_len(o, key);
    for (i = 0; i < n; ++i) {
        json_object *e = array_at(o, key, i);
        const char *s = fs_json_get_str(e, k);
        if (s && !strcmp(s, val)) return e;
    }
    return NULL;
}

static int count_str(json_object *o, const char *key, const char *val)
{
    size_t i, n = array_len(o, key);
    int count = 0;
    for (i = 0; i < n; ++i) {
        json_object *s = array_at(o, key, i);
        if (json_object_is_type(s, json_type_string)
            && !strcmp(json_object_get_string(s), val)) ++count;
    }
    return count;
}

/* Check parameter #idx: name, use, min, max, type; scope ["type"] or none. */
static void check_param(json_object *od, size_t idx, const char *name, const char *use,
                        int min, const char *max, const char *type, int scoped)
{
    json_object *prm = array_at(od, "parameter", idx);
    apr_int64_t n = -1;
    json_object *scope = fs_json_get_typed(prm, "scope", json_type_array);

    ck_assert_str_eq(fs_json_get_str(prm, "name"), name);
    ck_assert_str_eq(fs_json_get_str(prm, "use"), use);
    ck_assert_int_eq(fs_json_get_int64(prm, "min", &n), APR_SUCCESS);
    ck_assert_int_eq(n, min);
    ck_assert_str_eq(fs_json_get_str(prm, "max"), max);
    ck_assert_str_eq(fs_json_get_str(prm, "type"), type);
    ck_assert_ptr_nonnull(fs_json_get_str(prm, "documentation"));
    if (scoped) {
        ck_assert_ptr_nonnull(scope);
        ck_assert_int_eq(json_object_array_length(scope), 1);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(scope, 0)), "type");
    }
    else {
        ck_assert_msg(!json_object_object_get_ex(prm, "scope", NULL),
                      "parameter %s must have no scope", name);
    }
}

static void check_header(json_object *od, const char *id, const char *url,
                         const char *code, int affects, int type, int instance)
{
    ck_assert_str_eq(fs_json_get_str(od, "resourceType"), "OperationDefinition");
    ck_assert_str_eq(fs_json_get_str(od, "id"), id);
    ck_assert_str_eq(fs_json_get_str(od, "url"), url);
    ck_assert_str_eq(fs_json_get_str(od, "code"), code);
    ck_assert_str_eq(fs_json_get_str(od, "kind"), "operation");
    ck_assert_int_eq(array_len(od, "resource"), 1);
    ck_assert_str_eq(json_object_get_string(array_at(od, "resource", 0)), "Subscription");
    ck_assert_int_eq(get_bool(od, "affectsState"), affects);
    ck_assert_int_eq(get_bool(od, "system"), 0);
    ck_assert_int_eq(get_bool(od, "type"), type);
    ck_assert_int_eq(get_bool(od, "instance"), instance);
}

START_TEST(opdef_r5_token)
{
    json_object *od = opdef(FS_FHIR_R5, "Subscription-get-ws-binding-token");
    check_header(od, "Subscription-get-ws-binding-token",
                 "http://hl7.org/fhir/OperationDefinition/Subscription-get-ws-binding-token",
                 "get-ws-binding-token", 1, 1, 1);
    ck_assert_str_eq(fs_json_get_str(od, "version"), "5.0.0");
    ck_assert_str_eq(fs_json_get_str(od, "name"), "GetWsBindingToken");
    ck_assert_int_eq(array_len(od, "parameter"), 5);
    check_param(od, 0, "id", "in", 0, "*", "id", 1);
    check_param(od, 1, "token", "out", 1, "1", "string", 0);
    check_param(od, 2, "expiration", "out", 1, "1", "dateTime", 0);
    check_param(od, 3, "subscription", "out", 0, "*", "string", 0);
    check_param(od, 4, "websocket-url", "out", 1, "1", "url", 0);
}
END_TEST

START_TEST(opdef_r5_status)
{
    json_object *od = opdef(FS_FHIR_R5, "Subscription-status"), *b;
    check_header(od, "Subscription-status",
                 "http://hl7.org/fhir/OperationDefinition/Subscription-status",
                 "status", 0, 1, 1);
    ck_assert_str_eq(fs_json_get_str(od, "version"), "5.0.0");
    ck_assert_int_eq(array_len(od, "parameter"), 3);
    check_param(od, 0, "id", "in", 0, "*", "id", 1);
    check_param(od, 1, "status", "in", 0, "*", "code", 1);
    check_param(od, 2, "return", "out", 1, "1", "Bundle", 0);
    b = fs_json_get_typed(array_at(od, "parameter", 1), "binding", json_type_object);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq(fs_json_get_str(b, "strength"), "required");
    ck_assert_str_eq(fs_json_get_str(b, "valueSet"),
                     "http://hl7.org/fhir/ValueSet/subscription-status|5.0.0");
    ck_assert(!json_object_object_get_ex(array_at(od, "parameter", 0), "binding", NULL));
}
END_TEST

START_TEST(opdef_r5_events)
{
    json_object *od = opdef(FS_FHIR_R5, "Subscription-events");
    check_header(od, "Subscription-events",
                 "http://hl7.org/fhir/OperationDefinition/Subscription-events",
                 "events", 0, 0, 1);
    ck_assert_int_eq(array_len(od, "parameter"), 4);
    check_param(od, 0, "eventsSinceNumber", "in", 0, "1", "integer64", 0);
    check_param(od, 1, "eventsUntilNumber", "in", 0, "1", "integer64", 0);
    check_param(od, 2, "content", "in", 0, "1", "code", 0);
    check_param(od, 3, "return", "out", 1, "1", "Bundle", 0);
}
END_TEST

START_TEST(opdef_r4_token)
{
    json_object *od = opdef(FS_FHIR_R4, "backport-subscription-get-ws-binding-token");
    /* backport: affectsState false, so GET is fine */
    check_header(od, "backport-subscription-get-ws-binding-token",
                 "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
                 "backport-subscription-get-ws-binding-token",
                 "get-ws-binding-token", 0, 1, 1);
    ck_assert_int_eq(array_len(od, "parameter"), 5);
    check_param(od, 0, "id", "in", 0, "*", "id", 0);
    check_param(od, 1, "token", "out", 1, "1", "string", 0);
    check_param(od, 2, "expiration", "out", 1, "1", "dateTime", 0);
    check_param(od, 3, "subscription", "out", 0, "*", "string", 0);
    check_param(od, 4, "websocket-url", "out", 1, "1", "url", 0);
}
END_TEST

START_TEST(opdef_r4_status_events)
{
    json_object *od = opdef(FS_FHIR_R4, "backport-subscription-status"), *b;
    check_header(od, "backport-subscription-status",
                 "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
                 "backport-subscription-status", "status", 0, 1, 1);
    check_param(od, 0, "id", "in", 0, "*", "id", 0);
    check_param(od, 1, "status", "in", 0, "*", "code", 0);
    check_param(od, 2, "return", "out", 1, "1", "Bundle", 0);
    b = fs_json_get_typed(array_at(od, "parameter", 1), "binding", json_type_object);
    ck_assert_str_eq(fs_json_get_str(b, "valueSet"),
                     "http://hl7.org/fhir/ValueSet/subscription-status|4.0.1");

    od = opdef(FS_FHIR_R4, "backport-subscription-events");
    check_header(od, "backport-subscription-events",
                 "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
                 "backport-subscription-events", "events", 0, 0, 1);
    /* no integer64 in R4: the backport uses string */
    check_param(od, 0, "eventsSinceNumber", "in", 0, "1", "string", 0);
    check_param(od, 1, "eventsUntilNumber", "in", 0, "1", "string", 0);
    check_param(od, 2, "content", "in", 0, "1", "code", 0);
    check_param(od, 3, "return", "out", 1, "1", "Bundle", 0);
}
END_TEST

START_TEST(opdef_unknown)
{
    json_object *od = (json_object *)1;
    ck_assert_int_eq(fs_opdef_get(&od, pool, FS_FHIR_R5, "Subscription-resend"), APR_NOTFOUND);
    ck_assert_ptr_null(od);
    ck_assert_int_eq(fs_opdef_get(&od, pool, FS_FHIR_R4, "Subscription-status"), APR_NOTFOUND);
    ck_assert_int_eq(fs_opdef_get(&od, pool, FS_FHIR_R5, "backport-subscription-status"),
                     APR_NOTFOUND);
    ck_assert_int_eq(fs_opdef_get(&od, pool, FS_FHIR_R5, NULL), APR_NOTFOUND);
    ck_assert_int_eq(fs_opdef_get(&od, pool, (fs_fhir_version_t)3, "Subscription-status"),
                     APR_NOTFOUND);
    ck_assert_ptr_null(fs_opdef_canonical(FS_FHIR_R5, "resend"));
    ck_assert_ptr_null(fs_opdef_canonical(FS_FHIR_R5, "$status"));
    ck_assert_ptr_null(fs_opdef_canonical((fs_fhir_version_t)3, "status"));
    ck_assert_ptr_null(fs_opdef_ids((fs_fhir_version_t)3)[0]);
}
END_TEST

/* Every listed id builds, serialises to strict JSON without "\/", and its url is
 * the canonical of its code. */
START_TEST(opdef_iterate)
{
    static const fs_fhir_version_t versions[] = { FS_FHIR_R4, FS_FHIR_R5 };
    size_t i;
    int n;

    for (i = 0; i < 2; ++i) {
        const char *const *ids = fs_opdef_ids(versions[i]);
        for (n = 0; ids[n]; ++n) {
            json_object *od = opdef(versions[i], ids[n]);
            const char *code = fs_json_get_str(od, "code"), *text = fs_json_str(pool, od);
            ck_assert_str_eq(fs_json_get_str(od, "id"), ids[n]);
            ck_assert_str_eq(fs_json_get_str(od, "url"), fs_opdef_canonical(versions[i], code));
            ck_assert_str_eq(fs_opdef_id(versions[i], code), ids[n]);
            ck_assert_ptr_null(strstr(text, "\\/"));
            ck_assert_ptr_nonnull(parse(text));
        }
        ck_assert_int_eq(n, 3);
    }
    ck_assert_str_eq(fs_opdef_canonical(FS_FHIR_R4, "get-ws-binding-token"),
                     "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/"
                     "backport-subscription-get-ws-binding-token");
    ck_assert_str_eq(fs_opdef_canonical(FS_FHIR_R5, "events"),
                     "http://hl7.org/fhir/OperationDefinition/Subscription-events");
}
END_TEST

static const char *backend_cs =
    "{\"resourceType\":\"CapabilityStatement\",\"status\":\"active\","
    "\"date\":\"2024-01-01\",\"kind\":\"instance\",\"fhirVersion\":\"4.0.1\","
    "\"format\":[\"json\"],"
    "\"instantiates\":[\"http://example.org/CapabilityStatement/other\"],"
    "\"implementation\":{\"description\":\"backend\"},"
    "\"rest\":[{\"mode\":\"client\"},"
    " {\"mode\":\"server\","
    "  \"extension\":[{\"url\":\"http://example.org/ext\",\"valueString\":\"keep\"},"
    "   {\"url\":\"http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket\","
    "    \"valueUri\":\"ws://old.example.org/ws\"}],"
    "  \"resource\":[{\"type\":\"Patient\",\"interaction\":[{\"code\":\"read\"}]},"
    "   {\"type\":\"Subscription\",\"interaction\":[{\"code\":\"read\"}]},"
    "   {\"type\":\"Observation\",\"interaction\":[{\"code\":\"search-type\"}]}],"
    "  \"interaction\":[{\"code\":\"transaction\"}]}]}";

static fs_cap_info_t *make_info(fs_fhir_version_t v, int ntopics)
{
    fs_cap_info_t *info = apr_pcalloc(pool, sizeof(*info));
    int i;

    info->version = v;
    info->websocket_url = "wss://fhir.example.org/ws";
    info->base_url = "https://fhir.example.org/fhir";
    info->software_version = "0.1.0";
    info->topic_urls = apr_array_make(pool, 2, sizeof(const char *));
    for (i = 0; i < ntopics; ++i) {
        APR_ARRAY_PUSH(info->topic_urls, const char *) =
            apr_psprintf(pool, "http://example.org/SubscriptionTopic/t%d", i);
    }
    return info;
}

static json_object *server_rest(json_object *cs)
{
    json_object *rest = find_keyed(cs, "rest", "mode", "server");
    ck_assert_ptr_nonnull(rest);
    return rest;
}

static void check_subscription_entry(json_object *rest, fs_fhir_version_t v, int ntopics)
{
    static const char *const codes[] = {
        "read", "create", "update", "delete", "search-type", NULL
    };
    json_object *sub = find_keyed(rest, "resource", "type", "Subscription"), *sp;
    int i;

    ck_assert_ptr_nonnull(sub);
    ck_assert_int_eq(array_len(sub, "interaction"), 5);
    for (i = 0; codes[i]; ++i) {
        ck_assert_int_eq(count_keyed(sub, "interaction", "code", codes[i]), 1);
    }
    ck_assert_int_eq(array_len(sub, "searchParam"), 4);
    sp = find_keyed(sub, "searchParam", "name", "url");
    ck_assert_str_eq(fs_json_get_str(sp, "type"), "uri");
    ck_assert_str_eq(fs_json_get_str(sp, "definition"),
                     "http://hl7.org/fhir/SearchParameter/Subscription-url");
    ck_assert_str_eq(fs_json_get_str(find_keyed(sub, "searchParam", "name", "status"),
                                     "type"), "token");
    ck_assert_str_eq(fs_json_get_str(find_keyed(sub, "searchParam", "name", "type"),
                                     "type"), "token");
    ck_assert_str_eq(fs_json_get_str(find_keyed(sub, "searchParam", "name", "_id"),
                                     "definition"),
                     "http://hl7.org/fhir/SearchParameter/Resource-id");
    ck_assert_int_eq(array_len(sub, "operation"), 3);
    ck_assert_str_eq(fs_json_get_str(find_keyed(sub, "operation", "name", "status"),
                                     "definition"), fs_opdef_canonical(v, "status"));
    ck_assert_str_eq(fs_json_get_str(find_keyed(sub, "operation", "name", "events"),
                                     "definition"), fs_opdef_canonical(v, "events"));
    ck_assert_str_eq(fs_json_get_str(find_keyed(sub, "operation", "name",
                                                "get-ws-binding-token"), "definition"),
                     fs_opdef_canonical(v, "get-ws-binding-token"));
    if (v == FS_FHIR_R4) {
        ck_assert_int_eq(array_len(sub, "supportedProfile"), 1);
        ck_assert_str_eq(json_object_get_string(array_at(sub, "supportedProfile", 0)),
                         FS_URL_BACKPORT_SUBSCRIPTION);
        ck_assert_int_eq(count_keyed(sub, "extension", "url", FS_URL_EXT_CS_TOPIC_CANONICAL),
                         ntopics);
        if (ntopics) {
            ck_assert_str_eq(fs_json_get_str(array_at(sub, "extension", 0), "valueCanonical"),
                             "http://example.org/SubscriptionTopic/t0");
        }
    }
    else {
        ck_assert(!json_object_object_get_ex(sub, "supportedProfile", NULL));
        ck_assert(!json_object_object_get_ex(sub, "extension", NULL));
    }
}

START_TEST(cap_augment_r4_twice)
{
    json_object *cs = parse(backend_cs), *rest, *ws;
    fs_cap_info_t *info = make_info(FS_FHIR_R4, 2);
    const char *err = NULL;
    int round;

    for (round = 0; round < 2; ++round) {
        ck_assert_int_eq(fs_cap_augment(cs, pool, info, &err), APR_SUCCESS);
        ck_assert_ptr_null(err);
        ck_assert_int_eq(array_len(cs, "rest"), 2);
        rest = server_rest(cs);
        /* the backend's own content is kept */
        ck_assert_int_eq(array_len(rest, "resource"), 3);
        ck_assert_int_eq(count_keyed(rest, "resource", "type", "Patient"), 1);
        ck_assert_int_eq(count_keyed(rest, "resource", "type", "Observation"), 1);
        ck_assert_int_eq(count_keyed(rest, "resource", "type", "Subscription"), 1);
        ck_assert_int_eq(count_keyed(rest, "resource", "type", "SubscriptionTopic"), 0);
        ck_assert_int_eq(count_keyed(rest, "interaction", "code", "transaction"), 1);
        ck_assert_int_eq(count_keyed(rest, "extension", "url", "http://example.org/ext"), 1);
        ck_assert_int_eq(count_keyed(rest, "extension", "url", FS_URL_EXT_CS_WEBSOCKET), 1);
        ws = find_keyed(rest, "extension", "url", FS_URL_EXT_CS_WEBSOCKET);
        ck_assert_str_eq(fs_json_get_str(ws, "valueUri"), "wss://fhir.example.org/ws");
        check_subscription_entry(rest, FS_FHIR_R4, 2);
        ck_assert_int_eq(array_len(cs, "instantiates"), 2);
        ck_assert_int_eq(count_str(cs, "instantiates", FS_URL_BACKPORT_SERVER_CS), 1);
        ck_assert_int_eq(count_str(cs, "instantiates",
                                   "http://example.org/CapabilityStatement/other"), 1);
        ck_assert_str_eq(fs_json_get_str(cs, "fhirVersion"), "4.0.1");
        ck_assert_str_eq(fs_json_get_str(array_at(cs, "rest", 0), "mode"), "client");
    }
}
END_TEST

START_TEST(cap_augment_r5_topics)
{
    json_object *cs = parse(backend_cs), *rest, *topic;
    fs_cap_info_t *info = make_info(FS_FHIR_R5, 1);
    const char *err = NULL;

    ck_assert_int_eq(fs_cap_augment(cs, pool, info, &err), APR_SUCCESS);
    ck_assert_int_eq(fs_cap_augment(cs, pool, info, &err), APR_SUCCESS);
    rest = server_rest(cs);
    ck_assert_int_eq(array_len(rest, "resource"), 4);
    check_subscription_entry(rest, FS_FHIR_R5, 1);
    ck_assert_int_eq(count_keyed(rest, "resource", "type", "SubscriptionTopic"), 1);
    topic = find_keyed(rest, "resource", "type", "SubscriptionTopic");
    ck_assert_int_eq(array_len(topic, "interaction"), 2);
    ck_assert_int_eq(count_keyed(topic, "interaction", "code", "read"), 1);
    ck_assert_int_eq(count_keyed(topic, "interaction", "code", "search-type"), 1);
    /* instantiates is an R4 backport statement */
    ck_assert_int_eq(count_str(cs, "instantiates", FS_URL_BACKPORT_SERVER_CS), 0);

    /* without topics no SubscriptionTopic entry is added */
    cs = parse(backend_cs);
    info = make_info(FS_FHIR_R5, 0);
    ck_assert_int_eq(fs_cap_augment(cs, pool, info, &err), APR_SUCCESS);
    ck_assert_int_eq(count_keyed(server_rest(cs), "resource", "type", "SubscriptionTopic"), 0);
}
END_TEST

START_TEST(cap_augment_creates_rest)
{
    json_object *cs, *rest;
    fs_cap_info_t *info = make_info(FS_FHIR_R4, 0);
    const char *err = NULL;

    cs = parse("{\"resourceType\":\"CapabilityStatement\",\"status\":\"active\"}");
    ck_assert_int_eq(fs_cap_augment(cs, pool, info, &err), APR_SUCCESS);
    ck_assert_int_eq(array_len(cs, "rest"), 1);
    rest = server_rest(cs);
    ck_assert_int_eq(array_len(rest, "resource"), 1);
    check_subscription_entry(rest, FS_FHIR_R4, 0);

    cs = parse("{\"resourceType\":\"CapabilityStatement\",\"rest\":[{\"mode\":\"client\"}]}");
    ck_assert_int_eq(fs_cap_augment(cs, pool, info, &err), APR_SUCCESS);
    ck_assert_int_eq(array_len(cs, "rest"), 2);
    ck_assert_str_eq(fs_json_get_str(array_at(cs, "rest", 1), "mode"), "server");

    /* no websocket url configured: nothing claims a websocket endpoint */
    info->websocket_url = NULL;
    cs = parse("{\"resourceType\":\"CapabilityStatement\"}");
    ck_assert_int_eq(fs_cap_augment(cs, pool, info, &err), APR_SUCCESS);
    ck_assert_int_eq(count_keyed(server_rest(cs), "extension", "url",
                                 FS_URL_EXT_CS_WEBSOCKET), 0);
}
END_TEST

static void expect_invalid(const char *text, const char *fragment)
{
    json_object *cs = parse(text);
    const char *err = NULL;

    ck_assert_int_eq(fs_cap_augment(cs, pool, make_info(FS_FHIR_R4, 1), &err), APR_EINVAL);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, fragment) != NULL, "'%s' not in '%s'", fragment, err);
}

START_TEST(cap_augment_invalid)
{
    const char *err = NULL;

    expect_invalid("[1,2]", "not a JSON object");
    expect_invalid("{\"resourceType\":\"Patient\"}", "not CapabilityStatement");
    expect_invalid("{\"status\":\"active\"}", "resourceType is missing");
    expect_invalid("{\"resourceType\":\"CapabilityStatement\",\"rest\":{}}",
                   "CapabilityStatement.rest is not an array");
    expect_invalid("{\"resourceType\":\"CapabilityStatement\","
                   "\"rest\":[{\"mode\":\"server\",\"resource\":\"x\"}]}",
                   "resource is not an array");
    expect_invalid("{\"resourceType\":\"CapabilityStatement\","
                   "\"rest\":[{\"mode\":\"server\",\"extension\":{}}]}",
                   "extension is not an array");
    expect_invalid("{\"resourceType\":\"CapabilityStatement\",\"instantiates\":\"x\"}",
                   "instantiates is not an array");
    ck_assert_int_eq(fs_cap_augment(NULL, pool, make_info(FS_FHIR_R4, 0), &err), APR_EINVAL);
    ck_assert_int_eq(fs_cap_augment(parse("{\"resourceType\":\"CapabilityStatement\"}"),
                                    pool, make_info((fs_fhir_version_t)0, 0), &err),
                     APR_EINVAL);
}
END_TEST

static void check_own(fs_fhir_version_t v, const char *fhir_version)
{
    json_object *cs = NULL, *sw;
    apr_time_t t;

    ck_assert_int_eq(fs_cap_own(&cs, pool, make_info(v, 1)), APR_SUCCESS);
    ck_assert_ptr_nonnull(cs);
    ck_assert_str_eq(fs_json_get_str(cs, "resourceType"), "CapabilityStatement");
    ck_assert_str_eq(fs_json_get_str(cs, "status"), "active");
    ck_assert_str_eq(fs_json_get_str(cs, "kind"), "instance");
    ck_assert_str_eq(fs_json_get_str(cs, "fhirVersion"), fhir_version);
    ck_assert_ptr_nonnull(fs_json_get_str(cs, "date"));
    ck_assert_int_eq(fs_time_parse(&t, fs_json_get_str(cs, "date")), APR_SUCCESS);
    sw = fs_json_get_typed(cs, "software", json_type_object);
    ck_assert_str_eq(fs_json_get_str(sw, "name"), "mod_fhirsub");
    ck_assert_str_eq(fs_json_get_str(sw, "version"), "0.1.0");
    ck_assert_str_eq(fs_json_get_str(fs_json_get_typed(cs, "implementation", json_type_object),
                                     "url"), "https://fhir.example.org/fhir");
    ck_assert_int_eq(count_str(cs, "format", "json"), 1);
    ck_assert_int_eq(count_str(cs, "format", "application/fhir+json"), 1);
    ck_assert_int_eq(array_len(cs, "rest"), 1);
    check_subscription_entry(server_rest(cs), v, 1);
    ck_assert_int_eq(count_str(cs, "instantiates", FS_URL_BACKPORT_SERVER_CS),
                     v == FS_FHIR_R4 ? 1 : 0);
}

START_TEST(cap_own)
{
    json_object *cs = (json_object *)1;

    check_own(FS_FHIR_R4, "4.0.1");
    check_own(FS_FHIR_R5, "5.0.0");
    ck_assert_int_eq(fs_cap_own(&cs, pool, make_info((fs_fhir_version_t)6, 0)), APR_EINVAL);
    ck_assert_ptr_null(cs);
}
END_TEST

static Suite *capability_suite(void)
{
    Suite *s = suite_create("capability");
    TCase *tc = tcase_create("opdef");

    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, opdef_r5_token);
    tcase_add_test(tc, opdef_r5_status);
    tcase_add_test(tc, opdef_r5_events);
    tcase_add_test(tc, opdef_r4_token);
    tcase_add_test(tc, opdef_r4_status_events);
    tcase_add_test(tc, opdef_unknown);
    tcase_add_test(tc, opdef_iterate);
    suite_add_tcase(s, tc);

    tc = tcase_create("capability");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, cap_augment_r4_twice);
    tcase_add_test(tc, cap_augment_r5_topics);
    tcase_add_test(tc, cap_augment_creates_rest);
    tcase_add_test(tc, cap_augment_invalid);
    tcase_add_test(tc, cap_own);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(capability_suite());
}
