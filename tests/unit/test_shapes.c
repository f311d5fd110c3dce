/* Unit tests: the FHIR shapes of the core: fs_sub_parse / fs_sub_to_json (R4 backport,
 * R4 classic, R5), fs_status_make / fs_status_searchset, fs_time and fs_oo.
 *
 * FHIRSUB_TOPICS_DIR (or -DTOPICS_DIR=...) locates the shipped conf/topics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <check.h>

#include "../../src/core/fs_json.h"
#include "../../src/core/fs_time.h"
#include "../../src/core/fs_topic.h"
#include "../../src/core/fs_sub.h"
#include "../../src/core/fs_status.h"
#include "../../src/core/fs_oo.h"

#ifndef TOPICS_DIR
#define TOPICS_DIR "../../conf/topics"
#endif

#define ENC_COMPLETE \
    "http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4-encounter-complete"
#define ENC_START "http://example.org/fhir/SubscriptionTopic/encounter-start"
#define OBS_CHANGE "http://example.org/fhir/SubscriptionTopic/observation-change"
#define BP_SD "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"

static apr_pool_t *pool;
static fs_topics_t *topics;
static fs_sub_policy_t r4, r5;
static apr_time_t now;             /* 2026-06-01T11:30:05Z */

static const char *topics_dir(void)
{
    const char *dir = getenv("FHIRSUB_TOPICS_DIR");
    return dir ? dir : TOPICS_DIR;
}

static void setup(void)
{
    const char *err = NULL;

    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
    ck_assert_int_eq(fs_topics_create(&topics, pool), APR_SUCCESS);
    ck_assert_msg(fs_topics_load_dir(topics, topics_dir(), &err) == APR_SUCCESS,
                  "%s: %s (set FHIRSUB_TOPICS_DIR)", topics_dir(), err);
    ck_assert_ptr_nonnull(fs_topics_get(topics, ENC_COMPLETE));
    ck_assert_ptr_nonnull(fs_topics_get(topics, ENC_START));
    ck_assert_ptr_nonnull(fs_topics_get(topics, OBS_CHANGE));
    memset(&r4, 0, sizeof(r4));
    r4.version = FS_FHIR_R4;
    r4.topics = topics;
    r4.allowed_content = FS_CONTENT_ALL;
    r4.min_heartbeat = 10;
    r4.max_heartbeat = 3600;
    r5 = r4;
    r5.version = FS_FHIR_R5;
    ck_assert_int_eq(fs_time_parse(&now, "2026-06-01T11:30:05Z"), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
    topics = NULL;
}

/* ---- helpers ----------------------------------------------------------------------- */

static json_object *parse(const char *text)
{
    json_object *j = NULL;
    const char *err = NULL;
    ck_assert_msg(fs_json_parse(&j, pool, text, strlen(text), &err) == APR_SUCCESS,
                  "test JSON rejected: %s\n%s", err, text);
    return j;
}

static fs_sub_t *sub_ok(const char *text, const fs_sub_policy_t *policy)
{
    fs_sub_t *s = NULL;
    fs_sub_problem_t prob;
    memset(&prob, 0, sizeof(prob));
    ck_assert_msg(fs_sub_parse(&s, &prob, pool, parse(text), policy, now) == APR_SUCCESS,
                  "rejected (%d %s): %s\n%s", prob.http_status, prob.code, prob.text, text);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void sub_bad_body(json_object *body, const fs_sub_policy_t *policy, int status,
                         const char *code, const char *fragment, const char *what)
{
    fs_sub_t *s = (fs_sub_t *)1;
    fs_sub_problem_t prob;
    memset(&prob, 0, sizeof(prob));
    ck_assert_msg(fs_sub_parse(&s, &prob, pool, body, policy, now) == APR_EINVAL,
                  "accepted: %s", what);
    ck_assert_ptr_null(s);
    ck_assert_msg(prob.http_status == status, "%s: status %d, expected %d (%s)", what,
                  prob.http_status, status, prob.text);
    ck_assert_ptr_nonnull(prob.code);
    ck_assert_ptr_nonnull(prob.text);
    if (code) {
        ck_assert_msg(!strcmp(prob.code, code), "%s: code %s, expected %s (%s)", what,
                      prob.code, code, prob.text);
    }
    ck_assert_msg(strstr(prob.text, fragment) != NULL, "%s: '%s' lacks '%s'", what,
                  prob.text, fragment);
}

static void sub_bad(const char *text, const fs_sub_policy_t *policy, int status,
                    const char *code, const char *fragment)
{
    sub_bad_body(parse(text), policy, status, code, fragment, text);
}

/* A member of a JSON object, which must exist. */
static json_object *member(json_object *obj, const char *key)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(obj, key, &v), "no member %s in %s", key,
                  fs_json_str(pool, obj));
    return v;
}

static const char *str_member(json_object *obj, const char *key)
{
    json_object *v = member(obj, key);
    ck_assert_msg(json_object_is_type(v, json_type_string), "%s is not a string", key);
    return json_object_get_string(v);
}

static int has_member(json_object *obj, const char *key)
{
    return json_object_object_get_ex(obj, key, NULL);
}

static json_object *idx(json_object *arr, size_t i)
{
    ck_assert(json_object_is_type(arr, json_type_array));
    ck_assert_uint_lt(i, json_object_array_length(arr));
    return json_object_array_get_idx(arr, i);
}

static apr_time_t at(const char *instant)
{
    apr_time_t t = 0;
    ck_assert_msg(fs_time_parse(&t, instant) == APR_SUCCESS, "bad instant %s", instant);
    return t;
}

/* The R4 backport example of the websocket reference (section 8), on a shipped topic. */
static const char *backport_example(const char *criteria, const char *filter,
                                    const char *channel_extra)
{
    return apr_pstrcat(pool,
        "{\"resourceType\":\"Subscription\","
        "\"meta\":{\"profile\":[\"" BP_SD "backport-subscription\"]},"
        "\"status\":\"requested\",\"end\":\"2026-12-31T12:00:00Z\","
        "\"reason\":\"Completed encounters for Patient/123\","
        "\"criteria\":\"", criteria, "\","
        "\"_criteria\":{\"extension\":[{\"url\":\"" BP_SD "backport-filter-criteria\","
        "\"valueString\":\"", filter, "\"}]},"
        "\"channel\":{\"extension\":["
        "{\"url\":\"" BP_SD "backport-heartbeat-period\",\"valueUnsignedInt\":60},"
        "{\"url\":\"" BP_SD "backport-max-count\",\"valuePositiveInt\":20}],"
        "\"type\":\"websocket\",\"payload\":\"application/fhir+json\",", channel_extra,
        "\"_payload\":{\"extension\":[{\"url\":\"" BP_SD "backport-payload-content\","
        "\"valueCode\":\"id-only\"}]}}}", NULL);
}

/* A minimal R4 subscription with the given criteria and channel members. */
static const char *r4_sub(const char *criteria, const char *channel)
{
    return apr_pstrcat(pool, "{\"resourceType\":\"Subscription\",\"status\":\"active\","
                       "\"reason\":\"test\",\"criteria\":\"", criteria, "\",\"channel\":{",
                       channel, "}}", NULL);
}

static const char *r4_payload(const char *content)
{
    return r4_sub(ENC_COMPLETE, apr_pstrcat(pool, "\"type\":\"websocket\","
                  "\"payload\":\"application/fhir+json\",\"_payload\":{\"extension\":[{"
                  "\"url\":\"" BP_SD "backport-payload-content\",\"valueCode\":\"", content,
                  "\"}]}", NULL));
}

static const char *r4_heartbeat(const char *value)
{
    return r4_sub(ENC_COMPLETE, apr_pstrcat(pool, "\"type\":\"websocket\",\"extension\":[{"
                  "\"url\":\"" BP_SD "backport-heartbeat-period\",\"valueUnsignedInt\":",
                  value, "}]", NULL));
}

#define WS "\"type\":\"websocket\""

/* An R5 subscription on a topic with extra members. */
static const char *r5_sub(const char *topic, const char *extra)
{
    return apr_pstrcat(pool, "{\"resourceType\":\"Subscription\",\"status\":\"requested\","
                       "\"topic\":\"", topic, "\",\"channelType\":{\"system\":"
                       "\"http://terminology.hl7.org/CodeSystem/subscription-channel-type\","
                       "\"code\":\"websocket\"}", *extra ? "," : "", extra, "}", NULL);
}

/* The stored filters as (type, param, value) triples. */
static void check_filter(const fs_sub_t *s, size_t i, const char *type, const char *param,
                         const char *value)
{
    json_object *arr = parse(s->filters_json), *f;
    f = idx(arr, i);
    ck_assert_str_eq(str_member(f, "resourceType"), type);
    ck_assert_str_eq(str_member(f, "filterParameter"), param);
    ck_assert_str_eq(str_member(f, "value"), value);
}

static size_t filter_count(const fs_sub_t *s)
{
    json_object *arr = parse(s->filters_json);
    ck_assert(json_object_is_type(arr, json_type_array));
    return json_object_array_length(arr);
}

/* ---- fs_sub_parse: accepted shapes ------------------------------------------------- */

START_TEST(r4_backport_websocket)
{
    fs_sub_t *s = sub_ok(backport_example(ENC_COMPLETE, "Encounter?patient=Patient/123", ""),
                         &r4);
    json_object *stored;

    ck_assert_int_eq(s->shape, FS_SHAPE_BACKPORT);
    ck_assert_str_eq(s->status, "active");
    ck_assert_str_eq(s->channel_type, "websocket");
    ck_assert_str_eq(s->topic, ENC_COMPLETE);
    ck_assert_str_eq(s->criteria, ENC_COMPLETE);
    ck_assert_str_eq(s->content, "id-only");
    ck_assert_str_eq(s->content_type, "application/fhir+json");
    ck_assert_int_eq(s->heartbeat_period, 60);
    ck_assert_int_eq(s->max_count, 20);
    ck_assert_int_eq(s->timeout, 0);
    ck_assert(s->end == at("2026-12-31T12:00:00Z"));
    ck_assert_str_eq(s->error, "");
    ck_assert_uint_eq(filter_count(s), 1);
    check_filter(s, 0, "Encounter", "patient", "Patient/123");
    /* what is stored is the body without the client's meta */
    stored = parse(s->resource_json);
    ck_assert(!has_member(stored, "meta"));
    ck_assert_str_eq(str_member(stored, "reason"), "Completed encounters for Patient/123");
    ck_assert_str_eq(str_member(stored, "criteria"), ENC_COMPLETE);
    ck_assert_ptr_nonnull(strstr(s->resource_json, "http://hl7.org/fhir/uv/"));

    /* the short filter forms use the topic's resource type */
    s = sub_ok(backport_example(ENC_COMPLETE, "patient=Patient/123", ""), &r4);
    check_filter(s, 0, "Encounter", "patient", "Patient/123");
    /* another shipped topic, two filters */
    s = sub_ok(backport_example(ENC_START, "Encounter?class=IMP&patient=Patient/9", ""), &r4);
    ck_assert_str_eq(s->topic, ENC_START);
    ck_assert_uint_eq(filter_count(s), 2);
    check_filter(s, 0, "Encounter", "class", "IMP");
    check_filter(s, 1, "Encounter", "patient", "Patient/9");
    /* the timeout extension */
    s = sub_ok(r4_sub(ENC_COMPLETE, WS ",\"extension\":[{\"url\":\"" BP_SD
                      "backport-timeout\",\"valueUnsignedInt\":30}]"), &r4);
    ck_assert_int_eq(s->timeout, 30);
    /* no filter at all, status off on request */
    s = sub_ok("{\"resourceType\":\"Subscription\",\"status\":\"off\",\"criteria\":\""
               ENC_COMPLETE "\",\"channel\":{" WS "}}", &r4);
    ck_assert_str_eq(s->status, "off");
    ck_assert_str_eq(s->filters_json, "[]");
    ck_assert_str_eq(s->content, "id-only");
    ck_assert_int_eq(s->heartbeat_period, 0);
    ck_assert_int_eq(s->max_count, 0);
    ck_assert(s->end == 0);
    /* no status at all means active */
    s = sub_ok("{\"resourceType\":\"Subscription\",\"criteria\":\"" ENC_COMPLETE "\","
               "\"channel\":{" WS "}}", &r4);
    ck_assert_str_eq(s->status, "active");
}
END_TEST

START_TEST(r4_classic)
{
    fs_sub_t *s = sub_ok(r4_sub("Observation?code=1234-5", WS ",\"payload\":"
                                "\"application/fhir+json\""), &r4);
    fs_sub_policy_t narrow = r4;

    ck_assert_int_eq(s->shape, FS_SHAPE_CLASSIC);
    ck_assert_ptr_null(s->topic);
    ck_assert_str_eq(s->criteria, "Observation?code=1234-5");
    ck_assert_str_eq(s->status, "active");
    ck_assert_str_eq(s->content, "full-resource");
    ck_assert_uint_eq(filter_count(s), 1);
    check_filter(s, 0, "Observation", "code", "1234-5");
    /* a location that forbids full-resource gets the richest it allows */
    narrow.allowed_content = FS_CONTENT_ID_ONLY | FS_CONTENT_EMPTY;
    s = sub_ok(r4_sub("Observation?code=1234-5", WS), &narrow);
    ck_assert_str_eq(s->content, "id-only");
    narrow.allowed_content = FS_CONTENT_EMPTY;
    s = sub_ok(r4_sub("Observation?code=1234-5", WS), &narrow);
    ck_assert_str_eq(s->content, "empty");
    /* a type alone, several parameters */
    s = sub_ok(r4_sub("Patient", WS), &r4);
    ck_assert_str_eq(s->criteria, "Patient");
    ck_assert_str_eq(s->filters_json, "[]");
    s = sub_ok(r4_sub("Observation?code=http://loinc.org|8867-4&subject=Patient/1", WS),
               &r4);
    ck_assert_uint_eq(filter_count(s), 2);
    check_filter(s, 0, "Observation", "code", "http://loinc.org|8867-4");
    check_filter(s, 1, "Observation", "subject", "Patient/1");
}
END_TEST

START_TEST(r5_subscription)
{
    fs_sub_t *s = sub_ok(r5_sub(ENC_START,
        "\"end\":\"2026-12-31T10:00:00.500Z\",\"reason\":\"r5\","
        "\"filterBy\":[{\"resourceType\":\"Encounter\",\"filterParameter\":\"patient\","
        "\"value\":\"Patient/123\"},{\"filterParameter\":\"class\",\"value\":\"IMP\"}],"
        "\"heartbeatPeriod\":30,\"timeout\":15,\"maxCount\":5,"
        "\"contentType\":\"application/fhir+json\",\"content\":\"full-resource\""), &r5);
    json_object *stored;

    ck_assert_int_eq(s->shape, FS_SHAPE_R5);
    ck_assert_str_eq(s->status, "active");
    ck_assert_str_eq(s->channel_type, "websocket");
    ck_assert_str_eq(s->topic, ENC_START);
    ck_assert_str_eq(s->criteria, ENC_START);
    ck_assert_str_eq(s->content, "full-resource");
    ck_assert_str_eq(s->content_type, "application/fhir+json");
    ck_assert_int_eq(s->heartbeat_period, 30);
    ck_assert_int_eq(s->timeout, 15);
    ck_assert_int_eq(s->max_count, 5);
    ck_assert(s->end == at("2026-12-31T10:00:00Z") + apr_time_from_msec(500));
    ck_assert_uint_eq(filter_count(s), 2);
    check_filter(s, 0, "Encounter", "patient", "Patient/123");
    check_filter(s, 1, "Encounter", "class", "IMP");
    stored = parse(s->resource_json);
    ck_assert_str_eq(str_member(stored, "topic"), ENC_START);
    ck_assert(has_member(stored, "filterBy"));

    /* defaults: id-only, no system on channelType, no filters */
    s = sub_ok("{\"resourceType\":\"Subscription\",\"topic\":\"" OBS_CHANGE "\","
               "\"channelType\":{\"code\":\"websocket\"}}", &r5);
    ck_assert_str_eq(s->content, "id-only");
    ck_assert_str_eq(s->status, "active");
    ck_assert_str_eq(s->filters_json, "[]");
    ck_assert_str_eq(s->content_type, "application/fhir+json");
    /* R5 filterBy with the StructureDefinition URL as type and a modifier */
    s = sub_ok(r5_sub(OBS_CHANGE, "\"filterBy\":[{\"resourceType\":"
                      "\"http://hl7.org/fhir/StructureDefinition/Observation\","
                      "\"filterParameter\":\"code\",\"value\":\"http://loinc.org|8867-4\"}],"
                      "\"content\":\"empty\""), &r5);
    check_filter(s, 0, "Observation", "code", "http://loinc.org|8867-4");
    ck_assert_str_eq(s->content, "empty");
}
END_TEST

/* ---- fs_sub_parse: rejections ------------------------------------------------------ */

START_TEST(reject_structure)
{
    fs_sub_policy_t none = r4;

    sub_bad("{\"resourceType\":\"Patient\",\"criteria\":\"Patient\",\"channel\":{" WS "}}",
            &r4, 400, "invalid", "resourceType must be 'Subscription'");
    sub_bad("{\"criteria\":\"Patient\",\"channel\":{" WS "}}", &r4, 400, "invalid",
            "resourceType");
    sub_bad("[{\"resourceType\":\"Subscription\"}]", &r4, 400, "structure",
            "must be a JSON object");
    sub_bad("\"Subscription\"", &r5, 400, "structure", "must be a JSON object");
    sub_bad_body(NULL, &r4, 400, "structure", "must be a JSON object", "null");
    /* criteria that is neither a canonical nor a search */
    sub_bad(r4_sub("encounters please", WS), &r4, 400, "invalid", "neither");
    sub_bad(r4_sub("observation?code=1", WS), &r4, 400, "invalid", "neither");
    sub_bad(r4_sub("ftp://example.org/topic", WS), &r4, 400, "invalid", "neither");
    sub_bad(r4_sub("", WS), &r4, 400, "required", "criteria is required");
    sub_bad("{\"resourceType\":\"Subscription\",\"channel\":{" WS "}}", &r4, 400,
            "required", "criteria is required");
    sub_bad("{\"resourceType\":\"Subscription\",\"criteria\":\"Patient\"}", &r4, 400,
            "required", "channel is required");
    sub_bad(r4_sub("Patient", "\"payload\":\"application/fhir+json\""), &r4, 400,
            "required", "channel.type is required");
    /* R5 elements at an R4 endpoint and the reverse */
    sub_bad("{\"resourceType\":\"Subscription\",\"topic\":\"" ENC_COMPLETE "\","
            "\"criteria\":\"" ENC_COMPLETE "\",\"channel\":{" WS "}}", &r4, 400,
            "structure", "R4 endpoint");
    sub_bad("{\"resourceType\":\"Subscription\",\"criteria\":\"Patient\",\"channel\":{" WS
            "},\"channelType\":{\"code\":\"websocket\"}}", &r4, 400, "structure",
            "R4 endpoint");
    sub_bad(backport_example(ENC_COMPLETE, "patient=Patient/1", ""), &r5, 400, "structure",
            "R5 endpoint");
    sub_bad(r5_sub(ENC_START, "\"criteria\":\"Encounter\""), &r5, 400, "structure",
            "R5 endpoint");
    sub_bad("{\"resourceType\":\"Subscription\",\"channelType\":{\"code\":\"websocket\"}}",
            &r5, 400, "required", "topic is required");
    sub_bad("{\"resourceType\":\"Subscription\",\"topic\":\"" ENC_START "\"}", &r5, 400,
            "required", "channelType.code is required");
    /* a location without topics knows none */
    none.topics = NULL;
    sub_bad(r4_sub(ENC_COMPLETE, WS), &none, 422, "not-found", "unknown SubscriptionTopic");
}
END_TEST

START_TEST(reject_topics_and_filters)
{
    /* unknown topics */
    sub_bad(r4_sub("http://example.org/fhir/SubscriptionTopic/nope", WS), &r4, 422,
            "not-found", "unknown SubscriptionTopic 'http://example.org/fhir/"
            "SubscriptionTopic/nope'");
    sub_bad(r5_sub("http://example.org/fhir/SubscriptionTopic/nope", ""), &r5, 422,
            "not-found", "unknown SubscriptionTopic");
    /* a parameter the search parameter table does not know */
    sub_bad(backport_example(ENC_COMPLETE, "Encounter?foo=bar", ""), &r4, 422,
            "not-supported", "search parameter 'foo' is not supported for Encounter");
    sub_bad(r4_sub("Observation?foo=bar", WS), &r4, 422, "not-supported",
            "search parameter 'foo' is not supported for Observation");
    /* a real Encounter parameter that the topic's canFilterBy lacks */
    sub_bad(backport_example(ENC_COMPLETE, "Encounter?status=finished", ""), &r4, 422,
            "not-supported", "does not offer filtering by Encounter.status; it offers: "
            "Encounter.patient");
    sub_bad(r5_sub(ENC_START, "\"filterBy\":[{\"filterParameter\":\"status\","
                   "\"value\":\"finished\"}]"), &r5, 422, "not-supported",
            "does not offer filtering by Encounter.status");
    /* a filter on another resource type than the topic's */
    sub_bad(backport_example(ENC_COMPLETE, "Observation?code=1", ""), &r4, 422,
            "not-supported", "does not offer filtering by Observation.code");
    sub_bad(r5_sub(ENC_START, "\"filterBy\":[{\"filterParameter\":\"nonsense\","
                   "\"value\":\"1\"}]"), &r5, 422, "not-supported", "filterBy[0]");
    sub_bad(r5_sub(ENC_START, "\"filterBy\":{\"filterParameter\":\"patient\"}"), &r5, 400,
            "invalid", "filterBy must be an array");
    /* a broken filter extension */
    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\",\"criteria\":\""
                        ENC_COMPLETE "\",\"_criteria\":{\"extension\":[{\"url\":\""
                        BP_SD "backport-filter-criteria\",\"valueCode\":\"x\"}]},"
                        "\"channel\":{" WS "}}", NULL),
            &r4, 400, "invalid", "valueString");
}
END_TEST

START_TEST(reject_channel)
{
    sub_bad(r4_sub(ENC_COMPLETE, "\"type\":\"rest-hook\",\"endpoint\":\"https://x.example\""),
            &r4, 422, "not-supported", "'rest-hook' is not supported");
    sub_bad(r4_sub(ENC_COMPLETE, "\"type\":\"email\""), &r4, 422, "not-supported",
            "only 'websocket'");
    sub_bad(r4_sub(ENC_COMPLETE, "\"type\":\"carrier-pigeon\""), &r4, 400, "code-invalid",
            "unknown channel type 'carrier-pigeon'");
    sub_bad(r4_sub(ENC_COMPLETE, WS ",\"extension\":[{\"url\":\"" BP_SD
                   "backport-channel-type\",\"valueCoding\":{\"code\":\"zulip\"}}]"),
            &r4, 422, "not-supported", "custom channel types");
    sub_bad("{\"resourceType\":\"Subscription\",\"topic\":\"" ENC_START "\","
            "\"channelType\":{\"code\":\"rest-hook\"}}", &r5, 422, "not-supported",
            "'rest-hook' is not supported");
    sub_bad("{\"resourceType\":\"Subscription\",\"topic\":\"" ENC_START "\","
            "\"channelType\":{\"code\":\"smoke-signal\"}}", &r5, 400, "code-invalid",
            "unknown channel type");
    sub_bad("{\"resourceType\":\"Subscription\",\"topic\":\"" ENC_START "\","
            "\"channelType\":{\"system\":\"http://example.org/channels\","
            "\"code\":\"websocket\"}}", &r5, 422, "not-supported", "system");
}
END_TEST

START_TEST(reject_payload)
{
    fs_sub_policy_t narrow = r4;

    /* XML */
    sub_bad(r4_sub(ENC_COMPLETE, WS ",\"payload\":\"application/fhir+xml\""), &r4, 422,
            "not-supported", "application/fhir+xml");
    sub_bad(r5_sub(ENC_START, "\"contentType\":\"application/xml\""), &r5, 422,
            "not-supported", "application/xml");
    sub_bad(r4_sub(ENC_COMPLETE, WS ",\"payload\":42"), &r4, 400, "invalid",
            "must be a string");
    /* content the location does not allow */
    narrow.allowed_content = FS_CONTENT_ID_ONLY | FS_CONTENT_EMPTY;
    sub_bad(r4_payload("full-resource"), &narrow, 422, "forbidden",
            "'full-resource' is not allowed");
    narrow.allowed_content = FS_CONTENT_EMPTY;
    sub_bad(r4_sub(ENC_COMPLETE, WS), &narrow, 422, "forbidden", "'id-only' is not allowed");
    narrow.version = FS_FHIR_R5;
    narrow.allowed_content = FS_CONTENT_FULL;
    sub_bad(r5_sub(ENC_START, "\"content\":\"empty\""), &narrow, 422, "forbidden",
            "'empty' is not allowed");
    /* unknown content codes */
    sub_bad(r4_payload("everything"), &r4, 400, "code-invalid", "'everything' is not one of");
    sub_bad(r5_sub(ENC_START, "\"content\":\"full\""), &r5, 400, "code-invalid",
            "'full' is not one of");
    sub_bad(r5_sub(ENC_START, "\"content\":1"), &r5, 400, "invalid", "content must be");
}
END_TEST

START_TEST(reject_counts)
{
    sub_bad(r4_heartbeat("5"), &r4, 422, "business-rule", "between 10 and 3600 (got 5)");
    sub_bad(r4_heartbeat("3601"), &r4, 422, "business-rule", "backport-heartbeat-period");
    sub_bad(r4_heartbeat("\"60\""), &r4, 400, "invalid", "must be an integer");
    sub_bad(r4_heartbeat("60.5"), &r4, 400, "invalid", "must be an integer");
    sub_bad(r5_sub(ENC_START, "\"heartbeatPeriod\":0"), &r5, 422, "business-rule",
            "heartbeatPeriod");
    sub_bad(r5_sub(ENC_START, "\"heartbeatPeriod\":86400"), &r5, 422, "business-rule",
            "between 10 and 3600");
    sub_bad(r5_sub(ENC_START, "\"maxCount\":0"), &r5, 422, "business-rule", "maxCount");
    sub_bad(r5_sub(ENC_START, "\"timeout\":-1"), &r5, 422, "business-rule", "timeout");
    ck_assert_int_eq(sub_ok(r4_heartbeat("10"), &r4)->heartbeat_period, 10);
    ck_assert_int_eq(sub_ok(r4_heartbeat("3600"), &r4)->heartbeat_period, 3600);
}
END_TEST

START_TEST(reject_status_and_end)
{
    const char *tail = ",\"criteria\":\"" ENC_COMPLETE "\",\"channel\":{" WS "}}";

    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\",\"status\":\"error\"",
                        tail, NULL), &r4, 422, "business-rule", "set by the server");
    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\",\"status\":\"bogus\"",
                        tail, NULL), &r4, 400, "code-invalid", "'bogus'");
    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\","
                        "\"status\":\"entered-in-error\"", tail, NULL), &r4, 400,
            "code-invalid", "entered-in-error");
    sub_bad("{\"resourceType\":\"Subscription\",\"status\":\"error\",\"topic\":\""
            ENC_START "\",\"channelType\":{\"code\":\"websocket\"}}", &r5, 422,
            "business-rule", "set by the server");
    sub_bad("{\"resourceType\":\"Subscription\",\"status\":\"entered-in-error\","
            "\"topic\":\"" ENC_START "\",\"channelType\":{\"code\":\"websocket\"}}",
            &r5, 422, "business-rule", "set by the server");
    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\",\"status\":true", tail,
                        NULL), &r4, 400, "invalid", "status must be a string");
    /* end */
    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\","
                        "\"end\":\"2026-06-01T11:30:04Z\"", tail, NULL), &r4, 422,
            "business-rule", "in the past");
    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\","
                        "\"end\":\"2026-06-01T11:30:05Z\"", tail, NULL), &r4, 422,
            "business-rule", "in the past");
    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\","
                        "\"end\":\"2020-01-01\"", tail, NULL), &r4, 422, "business-rule",
            "'2020-01-01' is in the past");
    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\",\"end\":\"tomorrow\"",
                        tail, NULL), &r4, 400, "invalid", "FHIR instant");
    sub_bad(apr_pstrcat(pool, "{\"resourceType\":\"Subscription\",\"end\":1780000000",
                        tail, NULL), &r4, 400, "invalid", "FHIR instant");
}
END_TEST

/* JSON strings may hold \u0000, C strings stop there: what the server evaluates
 * ("Patient") must not differ from what it stores and shows ("Patient\u0000?name=x"). */
START_TEST(reject_embedded_nul)
{
    sub_bad(r4_sub("Patient\\u0000?name=x", WS), &r4, 400, NULL, "criteria");
    sub_bad(r4_sub(ENC_COMPLETE "\\u0000x", WS), &r4, 400, NULL, "criteria");
    sub_bad(r5_sub(ENC_START "\\u0000x", ""), &r5, 400, NULL, "topic");
}
END_TEST

/* ---- fs_sub_to_json ---------------------------------------------------------------- */

static void complete(fs_sub_t *s, const char *id)
{
    s->id = id;
    s->owner = "alice";
    s->base_url = "https://fhir.example.org/fhir";
    s->version_id = 3;
    s->created = at("2026-06-01T11:00:00Z");
    s->updated = at("2026-06-01T11:30:05.123Z");
}

START_TEST(to_json)
{
    fs_sub_t *s = sub_ok(backport_example(ENC_COMPLETE, "patient=Patient/123", ""), &r4);
    json_object *j = NULL, *meta, *profile;

    complete(s, "sub-ws-1");
    ck_assert_int_eq(fs_sub_to_json(&j, pool, s, now), APR_SUCCESS);
    ck_assert_ptr_nonnull(j);
    fs_json_pool_own(pool, j);
    ck_assert_str_eq(str_member(j, "resourceType"), "Subscription");
    ck_assert_str_eq(str_member(j, "id"), "sub-ws-1");
    ck_assert_str_eq(str_member(j, "status"), "active");
    ck_assert_str_eq(str_member(j, "criteria"), ENC_COMPLETE);
    ck_assert_str_eq(str_member(j, "end"), "2026-12-31T12:00:00Z");
    meta = member(j, "meta");
    ck_assert_str_eq(str_member(meta, "versionId"), "3");
    ck_assert_str_eq(str_member(meta, "lastUpdated"), "2026-06-01T11:30:05.123Z");
    profile = member(meta, "profile");
    ck_assert_uint_eq(json_object_array_length(profile), 1);
    ck_assert_str_eq(json_object_get_string(idx(profile, 0)), BP_SD "backport-subscription");
    ck_assert_ptr_nonnull(member(member(j, "channel"), "_payload"));
    /* the slash is not escaped in what clients read */
    ck_assert_ptr_null(strstr(fs_json_str(pool, j), "\\/"));

    /* once `end` passed it reads off, the stored status is untouched */
    ck_assert_int_eq(fs_sub_to_json(&j, pool, s, at("2026-12-31T12:00:00Z")), APR_SUCCESS);
    fs_json_pool_own(pool, j);
    ck_assert_str_eq(str_member(j, "status"), "off");
    ck_assert_str_eq(s->status, "active");
    ck_assert_str_eq(fs_sub_effective_status(s, at("2026-12-31T11:59:59Z")), "active");
    ck_assert_str_eq(fs_sub_effective_status(s, at("2027-01-01")), "off");

    /* classic and R5 shapes carry no backport profile */
    s = sub_ok(r4_sub("Observation?code=1234-5", WS), &r4);
    complete(s, "c1");
    s->version_id = 1;
    ck_assert_int_eq(fs_sub_to_json(&j, pool, s, now), APR_SUCCESS);
    fs_json_pool_own(pool, j);
    ck_assert_str_eq(str_member(j, "id"), "c1");
    ck_assert_str_eq(str_member(member(j, "meta"), "versionId"), "1");
    ck_assert(!has_member(member(j, "meta"), "profile"));
    s = sub_ok("{\"resourceType\":\"Subscription\",\"status\":\"off\",\"topic\":\""
               ENC_START "\",\"channelType\":{\"code\":\"websocket\"}}", &r5);
    complete(s, "r5");
    ck_assert_int_eq(fs_sub_to_json(&j, pool, s, now), APR_SUCCESS);
    fs_json_pool_own(pool, j);
    ck_assert_str_eq(str_member(j, "status"), "off");
    ck_assert(!has_member(member(j, "meta"), "profile"));
    /* a client-sent id is replaced by ours */
    s = sub_ok("{\"resourceType\":\"Subscription\",\"id\":\"theirs\",\"criteria\":\"Patient\","
               "\"channel\":{" WS "}}", &r4);
    complete(s, "ours");
    ck_assert_int_eq(fs_sub_to_json(&j, pool, s, now), APR_SUCCESS);
    fs_json_pool_own(pool, j);
    ck_assert_str_eq(str_member(j, "id"), "ours");
}
END_TEST

/* ---- fs_status ----------------------------------------------------------------------- */

static fs_sub_t *status_sub(const char *id, const char *topic, apr_int64_t events)
{
    fs_sub_t *s = apr_pcalloc(pool, sizeof(*s));
    s->id = id;
    s->owner = "alice";
    s->status = "active";
    s->channel_type = "websocket";
    s->shape = topic ? FS_SHAPE_BACKPORT : FS_SHAPE_CLASSIC;
    s->topic = topic;
    s->criteria = topic ? topic : "Observation?code=1234-5";
    s->filters_json = "[]";
    s->content = "id-only";
    s->content_type = "application/fhir+json";
    s->base_url = "https://fhir.example.org/fhir";
    s->events_since_start = events;
    s->error = "";
    s->version_id = 1;
    s->resource_json = "{\"resourceType\":\"Subscription\"}";
    return s;
}

START_TEST(status_r4)
{
    fs_sub_t *s = status_sub("sub-ws-1", ENC_COMPLETE, 0);
    json_object *st = fs_json_pool_own(pool, fs_status_make(pool, FS_FHIR_R4, s,
                                                            FS_NOTIFY_HANDSHAKE, now));
    json_object *params, *profile;

    ck_assert_str_eq(fs_status_sub_reference(pool, s),
                     "https://fhir.example.org/fhir/Subscription/sub-ws-1");
    ck_assert_str_eq(str_member(st, "resourceType"), "Parameters");
    profile = member(member(st, "meta"), "profile");
    ck_assert_uint_eq(json_object_array_length(profile), 1);
    ck_assert_str_eq(json_object_get_string(idx(profile, 0)),
                     BP_SD "backport-subscription-status-r4");
    /* exactly the parameters of the reference handshake, in order */
    params = member(st, "parameter");
    ck_assert_str_eq(fs_json_str(pool, params),
        "[{\"name\":\"subscription\",\"valueReference\":{\"reference\":"
        "\"https://fhir.example.org/fhir/Subscription/sub-ws-1\"}},"
        "{\"name\":\"topic\",\"valueCanonical\":\"" ENC_COMPLETE "\"},"
        "{\"name\":\"status\",\"valueCode\":\"active\"},"
        "{\"name\":\"type\",\"valueCode\":\"handshake\"},"
        "{\"name\":\"events-since-subscription-start\",\"valueString\":\"0\"}]");

    /* classic: no topic; counter as a string; ended reads off; error reported */
    s = status_sub("c1", NULL, APR_INT64_C(9007199254740993));
    s->end = at("2026-06-01T11:30:05Z");
    s->error = "client gone";
    st = fs_json_pool_own(pool, fs_status_make(pool, FS_FHIR_R4, s, FS_NOTIFY_QUERY_STATUS,
                                               now));
    params = member(st, "parameter");
    ck_assert_str_eq(str_member(idx(params, 0), "name"), "subscription");
    ck_assert_str_eq(str_member(member(idx(params, 0), "valueReference"), "reference"),
                     "https://fhir.example.org/fhir/Subscription/c1");
    ck_assert_str_eq(str_member(idx(params, 1), "name"), "status");
    ck_assert_str_eq(str_member(idx(params, 1), "valueCode"), "off");
    ck_assert_str_eq(str_member(idx(params, 2), "valueCode"), "query-status");
    ck_assert_str_eq(str_member(idx(params, 3), "name"), "events-since-subscription-start");
    ck_assert_str_eq(str_member(idx(params, 3), "valueString"), "9007199254740993");
    ck_assert_str_eq(str_member(idx(params, 4), "name"), "error");
    ck_assert_str_eq(str_member(member(idx(params, 4), "valueCodeableConcept"), "text"),
                     "client gone");
    ck_assert_uint_eq(json_object_array_length(params), 5);
}
END_TEST

START_TEST(status_r5)
{
    fs_sub_t *s = status_sub("123", ENC_START, 310);
    json_object *st = fs_json_pool_own(pool, fs_status_make(pool, FS_FHIR_R5, s,
                                                            FS_NOTIFY_EVENT, now));
    json_object *ev = member(st, "eventsSinceSubscriptionStart");

    ck_assert_str_eq(str_member(st, "resourceType"), "SubscriptionStatus");
    ck_assert_str_eq(str_member(st, "status"), "active");
    ck_assert_str_eq(str_member(st, "type"), "event-notification");
    /* integer64 is a JSON string */
    ck_assert(json_object_is_type(ev, json_type_string));
    ck_assert_str_eq(json_object_get_string(ev), "310");
    ck_assert_str_eq(str_member(member(st, "subscription"), "reference"),
                     "https://fhir.example.org/fhir/Subscription/123");
    ck_assert_str_eq(str_member(st, "topic"), ENC_START);
    ck_assert(!has_member(st, "error"));
    ck_assert(!has_member(st, "parameter"));

    s->end = at("2026-01-01");
    s->error = "boom";
    st = fs_json_pool_own(pool, fs_status_make(pool, FS_FHIR_R5, s, FS_NOTIFY_HEARTBEAT,
                                               now));
    ck_assert_str_eq(str_member(st, "status"), "off");
    ck_assert_str_eq(str_member(st, "type"), "heartbeat");
    ck_assert_str_eq(str_member(idx(member(st, "error"), 0), "text"), "boom");
}
END_TEST

START_TEST(status_searchset)
{
    apr_array_header_t *subs = apr_array_make(pool, 2, sizeof(fs_sub_t *));
    json_object *b, *entries;
    const char *url0, *url1;
    size_t i;

    APR_ARRAY_PUSH(subs, fs_sub_t *) = status_sub("a", ENC_COMPLETE, 1);
    APR_ARRAY_PUSH(subs, fs_sub_t *) = status_sub("b", NULL, 2);
    b = fs_json_pool_own(pool, fs_status_searchset(pool, FS_FHIR_R4, subs, now));
    ck_assert_str_eq(str_member(b, "resourceType"), "Bundle");
    ck_assert_str_eq(str_member(b, "type"), "searchset");
    ck_assert_str_eq(str_member(b, "timestamp"), "2026-06-01T11:30:05.000Z");
    ck_assert(json_object_is_type(member(b, "total"), json_type_int));
    ck_assert_int_eq(json_object_get_int(member(b, "total")), 2);
    entries = member(b, "entry");
    ck_assert_uint_eq(json_object_array_length(entries), 2);
    for (i = 0; i < 2; ++i) {
        json_object *e = idx(entries, i), *res = member(e, "resource");
        const char *url = str_member(e, "fullUrl");
        ck_assert_msg(!strncmp(url, "urn:uuid:", 9) && strlen(url) == 9 + 36, "%s", url);
        ck_assert_str_eq(str_member(member(e, "search"), "mode"), "match");
        ck_assert_str_eq(str_member(res, "resourceType"), "Parameters");
        ck_assert_str_eq(str_member(idx(member(res, "parameter"), 0), "name"),
                         "subscription");
    }
    url0 = str_member(idx(entries, 0), "fullUrl");
    url1 = str_member(idx(entries, 1), "fullUrl");
    ck_assert_str_ne(url0, url1);
    ck_assert_str_eq(str_member(member(idx(member(member(idx(entries, 1), "resource"),
                                                  "parameter"), 0), "valueReference"),
                                "reference"),
                     "https://fhir.example.org/fhir/Subscription/b");
    ck_assert_str_eq(str_member(idx(member(member(idx(entries, 0), "resource"), "parameter"),
                                    3), "valueCode"), "query-status");

    /* R5 */
    b = fs_json_pool_own(pool, fs_status_searchset(pool, FS_FHIR_R5, subs, now));
    entries = member(b, "entry");
    ck_assert_str_eq(str_member(member(idx(entries, 0), "resource"), "resourceType"),
                     "SubscriptionStatus");
    ck_assert_str_eq(str_member(member(idx(entries, 0), "resource"), "type"), "query-status");
    ck_assert_str_eq(str_member(member(idx(entries, 1), "resource"),
                                "eventsSinceSubscriptionStart"), "2");
}
END_TEST

/* FHIR JSON has no empty arrays: a searchset without matches has no entry. */
START_TEST(status_searchset_empty)
{
    apr_array_header_t *subs = apr_array_make(pool, 1, sizeof(fs_sub_t *));
    json_object *b = fs_json_pool_own(pool, fs_status_searchset(pool, FS_FHIR_R4, subs, now));
    json_object *entries = NULL;

    ck_assert_int_eq(json_object_get_int(member(b, "total")), 0);
    if (json_object_object_get_ex(b, "entry", &entries)) {
        ck_assert_msg(json_object_array_length(entries) > 0,
                      "empty searchset has \"entry\":[] (FHIR JSON forbids empty arrays): %s",
                      fs_json_str(pool, b));
    }
}
END_TEST

/* ---- fs_time ----------------------------------------------------------------------- */

static void time_is(const char *text, const char *instant)
{
    apr_time_t t = 0;
    ck_assert_msg(fs_time_parse(&t, text) == APR_SUCCESS, "'%s' rejected", text);
    ck_assert_msg(!strcmp(fs_time_instant(pool, t), instant), "'%s' -> %s, expected %s",
                  text, fs_time_instant(pool, t), instant);
}

static void time_bad(const char *text)
{
    apr_time_t t = 12345;
    ck_assert_msg(fs_time_parse(&t, text) == APR_EINVAL, "'%s' accepted as %s", text,
                  fs_time_instant(pool, t));
}

START_TEST(time_parse_utc)
{
    apr_time_t t = 1;

    time_is("2026-06-01T11:30:05Z", "2026-06-01T11:30:05.000Z");
    time_is("2026-06-01T11:30:05.123Z", "2026-06-01T11:30:05.123Z");
    time_is("2026-06-01T11:30:05.1Z", "2026-06-01T11:30:05.100Z");
    time_is("2026-06-01T11:30:05.999999Z", "2026-06-01T11:30:05.999Z");
    time_is("2026-06-01T11:30:05.1239999Z", "2026-06-01T11:30:05.123Z");
    time_is("2026-06-01", "2026-06-01T00:00:00.000Z");
    time_is("2024-02-29T23:59:59Z", "2024-02-29T23:59:59.000Z");
    time_is("1999-12-31T23:59:59.5Z", "1999-12-31T23:59:59.500Z");
    ck_assert_int_eq(fs_time_parse(&t, "1970-01-01T00:00:00Z"), APR_SUCCESS);
    ck_assert(t == 0);
    ck_assert_int_eq(fs_time_parse(&t, "2026-06-01T11:30:05.123456Z"), APR_SUCCESS);
    ck_assert(t == at("2026-06-01T11:30:05Z") + 123456);
}
END_TEST

START_TEST(time_parse_zones)
{
    time_is("2026-06-01T13:30:05+02:00", "2026-06-01T11:30:05.000Z");
    time_is("2026-06-01T06:30:05-05:00", "2026-06-01T11:30:05.000Z");
    time_is("2026-06-01T11:30:05+00:00", "2026-06-01T11:30:05.000Z");
    time_is("2026-06-01T11:30:05-00:00", "2026-06-01T11:30:05.000Z");
    time_is("2026-06-01T17:00:05.250+05:30", "2026-06-01T11:30:05.250Z");
    time_is("2026-01-01T01:00:00+02:00", "2025-12-31T23:00:00.000Z");
    time_is("2025-12-31T23:00:00-14:00", "2026-01-01T13:00:00.000Z");
    ck_assert(at("2026-06-01T13:30:05+02:00") == now);
}
END_TEST

START_TEST(time_round_trip)
{
    static const apr_int64_t ms[] = {
        0, 1, 999, APR_INT64_C(1768471200123), APR_INT64_C(951782400000),
        APR_INT64_C(4102444799999), -1
    };
    int i;

    for (i = 0; ms[i] >= 0; ++i) {
        apr_time_t t = fs_time_from_ms(ms[i]), back = 0;
        const char *text = fs_time_instant(pool, t);
        ck_assert_int_eq(fs_time_to_ms(t), ms[i]);
        ck_assert_int_eq(fs_time_parse(&back, text), APR_SUCCESS);
        ck_assert_msg(back == t, "%s did not round trip", text);
    }
    ck_assert_str_eq(fs_time_instant(pool, fs_time_from_ms(APR_INT64_C(1768471200123))),
                     "2026-01-15T10:00:00.123Z");
    /* sub-millisecond parts are cut, not rounded */
    ck_assert_int_eq(fs_time_to_ms(apr_time_from_sec(10) + 999), 10000);
    ck_assert(fs_time_from_ms(1500) == apr_time_from_msec(1500));
}
END_TEST

START_TEST(time_malformed)
{
    ck_assert_int_eq(fs_time_parse(&now, NULL), APR_EINVAL);
    time_bad("");
    time_bad("tomorrow");
    time_bad("2026");
    time_bad("2026-06");
    time_bad("2026-6-1");
    time_bad("26-06-01");
    time_bad("2026/06/01");
    time_bad("2026-06-01x");
    time_bad("2026-06-01T");
    time_bad("2026-06-01T11:30:05");          /* a time needs a zone */
    time_bad("2026-06-01T11:30Z");
    time_bad("2026-06-01T11:30:5Z");
    time_bad("2026-06-01 11:30:05Z");
    time_bad("2026-06-01t11:30:05Z");
    time_bad("2026-06-01T11:30:05z");
    time_bad("2026-06-01T11:30:05.Z");
    time_bad("2026-06-01T11:30:05,5Z");
    time_bad("2026-06-01T11:30:05ZZ");
    time_bad("2026-06-01T11:30:05Z ");
    time_bad(" 2026-06-01T11:30:05Z");
    time_bad("2026-06-01T11:30:05+2:00");
    time_bad("2026-06-01T11:30:05+02");
    time_bad("2026-06-01T11:30:05+0200");
    time_bad("2026-06-01T11:30:05+02:00:00");
    time_bad("2026-06-01T11:30:05+15:00");
    time_bad("2026-06-01T11:30:05+02:60");
    time_bad("2026-00-01");
    time_bad("2026-13-01");
    time_bad("2026-06-00");
    time_bad("2026-06-32");
    time_bad("2026-06-01T24:00:00Z");
    time_bad("2026-06-01T11:60:00Z");
    time_bad("2026-06-01T11:30:61Z");
    time_bad("-026-06-01");
    time_bad("+2026-06-01");
}
END_TEST

/* Days that do not exist in their month must not roll into the next one. */
START_TEST(time_impossible_dates)
{
    time_bad("2026-02-29");
    time_bad("2026-02-30T10:00:00Z");
    time_bad("2026-04-31");
    time_bad("2100-02-29");
    time_is("2000-02-29", "2000-02-29T00:00:00.000Z");
}
END_TEST

/* ---- fs_oo ------------------------------------------------------------------------- */

START_TEST(oo_make)
{
    json_object *oo = fs_oo_make(pool, "not-supported", "channel type 'rest-hook' is not "
                                 "supported; see https://x.example/a \"quoted\"");
    json_object *issues = member(oo, "issue"), *issue;

    ck_assert_str_eq(str_member(oo, "resourceType"), "OperationOutcome");
    ck_assert_uint_eq(json_object_array_length(issues), 1);
    issue = idx(issues, 0);
    ck_assert_str_eq(str_member(issue, "severity"), "error");
    ck_assert_str_eq(str_member(issue, "code"), "not-supported");
    ck_assert_str_eq(str_member(issue, "diagnostics"),
                     "channel type 'rest-hook' is not supported; see https://x.example/a "
                     "\"quoted\"");
    ck_assert_str_eq(str_member(member(issue, "details"), "text"),
                     str_member(issue, "diagnostics"));
    ck_assert_str_eq(fs_json_str(pool, oo),
        "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\","
        "\"code\":\"not-supported\",\"details\":{\"text\":\"channel type 'rest-hook' is "
        "not supported; see https://x.example/a \\\"quoted\\\"\"},\"diagnostics\":"
        "\"channel type 'rest-hook' is not supported; see https://x.example/a "
        "\\\"quoted\\\"\"}]}");
    /* a NULL text still gives a well-formed document */
    oo = fs_oo_make(pool, "exception", NULL);
    ck_assert_str_eq(str_member(idx(member(oo, "issue"), 0), "diagnostics"), "");
}
END_TEST

START_TEST(oo_codes)
{
    ck_assert_str_eq(fs_oo_code_for_status(400), "invalid");
    ck_assert_str_eq(fs_oo_code_for_status(422), "invalid");
    ck_assert_str_eq(fs_oo_code_for_status(401), "login");
    ck_assert_str_eq(fs_oo_code_for_status(403), "forbidden");
    ck_assert_str_eq(fs_oo_code_for_status(404), "not-found");
    ck_assert_str_eq(fs_oo_code_for_status(410), "not-found");
    ck_assert_str_eq(fs_oo_code_for_status(405), "not-supported");
    ck_assert_str_eq(fs_oo_code_for_status(501), "not-supported");
    ck_assert_str_eq(fs_oo_code_for_status(409), "conflict");
    ck_assert_str_eq(fs_oo_code_for_status(412), "conflict");
    ck_assert_str_eq(fs_oo_code_for_status(413), "too-costly");
    ck_assert_str_eq(fs_oo_code_for_status(429), "throttled");
    ck_assert_str_eq(fs_oo_code_for_status(503), "transient");
    ck_assert_str_eq(fs_oo_code_for_status(500), "exception");
    ck_assert_str_eq(fs_oo_code_for_status(502), "exception");
}
END_TEST

/* A parse problem turns into the OperationOutcome the module answers with. */
START_TEST(problem_to_oo)
{
    fs_sub_t *s = NULL;
    fs_sub_problem_t prob;
    json_object *oo, *issue;

    memset(&prob, 0, sizeof(prob));
    ck_assert_int_eq(fs_sub_parse(&s, &prob, pool, parse(r4_sub(ENC_COMPLETE,
                                  "\"type\":\"rest-hook\"")), &r4, now), APR_EINVAL);
    oo = fs_oo_make(pool, prob.code, prob.text);
    issue = idx(member(oo, "issue"), 0);
    ck_assert_str_eq(str_member(issue, "code"), "not-supported");
    ck_assert_str_eq(str_member(issue, "diagnostics"), prob.text);
}
END_TEST

static Suite *shapes_suite(void)
{
    Suite *s = suite_create("shapes");
    TCase *tc = tcase_create("subscription");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, r4_backport_websocket);
    tcase_add_test(tc, r4_classic);
    tcase_add_test(tc, r5_subscription);
    tcase_add_test(tc, reject_structure);
    tcase_add_test(tc, reject_topics_and_filters);
    tcase_add_test(tc, reject_channel);
    tcase_add_test(tc, reject_payload);
    tcase_add_test(tc, reject_counts);
    tcase_add_test(tc, reject_status_and_end);
    tcase_add_test(tc, reject_embedded_nul);
    tcase_add_test(tc, to_json);
    suite_add_tcase(s, tc);

    tc = tcase_create("status");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, status_r4);
    tcase_add_test(tc, status_r5);
    tcase_add_test(tc, status_searchset);
    tcase_add_test(tc, status_searchset_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("time");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, time_parse_utc);
    tcase_add_test(tc, time_parse_zones);
    tcase_add_test(tc, time_round_trip);
    tcase_add_test(tc, time_malformed);
    tcase_add_test(tc, time_impossible_dates);
    suite_add_tcase(s, tc);

    tc = tcase_create("oo");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, oo_make);
    tcase_add_test(tc, oo_codes);
    tcase_add_test(tc, problem_to_oo);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    apr_initialize();
    atexit(apr_terminate);
    sr = srunner_create(shapes_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
