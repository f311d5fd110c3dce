/* Unit tests: fs_topic (loading, registry) and fs_filter_check_topic.
 *
 * FHIRSUB_TOPICS_DIR (or -DTOPICS_DIR=...) locates the shipped conf/topics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <check.h>

#include "fs_check.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_searchparam.h"
#include "../../src/core/fs_filter.h"
#include "../../src/core/fs_topic.h"

#ifndef TOPICS_DIR
#define TOPICS_DIR "../../conf/topics"
#endif

#define BACKPORT_URL \
    "http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4-encounter-complete"
#define EX_URL "http://example.org/fhir/SubscriptionTopic/"

/* ---- helpers ----------------------------------------------------------------------- */

static const char *topics_dir(void)
{
    const char *dir = getenv("FHIRSUB_TOPICS_DIR");
    return dir ? dir : TOPICS_DIR;
}

static const fs_topic_t *load_shipped(const char *name)
{
    fs_topic_t *t = NULL;
    const char *err = NULL;
    const char *path = apr_pstrcat(pool, topics_dir(), "/", name, NULL);
    ck_assert_msg(fs_topic_load_file(&t, pool, path, &err) == APR_SUCCESS,
                  "%s: %s (set FHIRSUB_TOPICS_DIR)", path, err);
    ck_assert_str_eq(t->source, path);
    return t;
}

static fs_topic_t *topic_ok(const char *json)
{
    fs_topic_t *t = NULL;
    const char *err = NULL;
    apr_status_t rv = fs_topic_parse(&t, pool, json, strlen(json), "test.json", &err);
    ck_assert_msg(rv == APR_SUCCESS, "rejected: %s\n%s", err, json);
    return t;
}

static void topic_err(const char *json, const char *expect)
{
    fs_topic_t *t = NULL;
    const char *err = NULL;
    apr_status_t rv = fs_topic_parse(&t, pool, json, strlen(json), "test.json", &err);
    ck_assert_msg(rv != APR_SUCCESS, "accepted: %s", json);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err, expect) != NULL, "message '%s' lacks '%s'", err, expect);
    ck_assert_msg(!strncmp(err, "test.json: ", 11), "message '%s' lacks the source", err);
}

/* A topic for one Encounter trigger with the given trigger members and canFilterBy. */
static const char *enc_topic(const char *trigger_members, const char *can_filter_by)
{
    return apr_psprintf(pool, "{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL "t\","
                        "\"status\":\"active\",\"resourceTrigger\":[{\"resource\":\"Encounter\""
                        "%s%s}]%s%s}", *trigger_members ? "," : "", trigger_members,
                        can_filter_by ? ",\"canFilterBy\":" : "",
                        can_filter_by ? can_filter_by : "");
}

static const fs_topic_trigger_t *trigger(const fs_topic_t *t, int i)
{
    ck_assert_int_lt(i, t->triggers->nelts);
    return APR_ARRAY_IDX(t->triggers, i, const fs_topic_trigger_t *);
}

static const fs_filter_t *filter_at(const apr_array_header_t *a, int i)
{
    ck_assert_ptr_nonnull(a);
    ck_assert_int_lt(i, a->nelts);
    return APR_ARRAY_IDX(a, i, const fs_filter_t *);
}

static const fs_filter_t *one_filter(const char *criteria, const char *default_type)
{
    apr_array_header_t *a = apr_array_make(pool, 2, sizeof(fs_filter_t *));
    const char *err = NULL;
    ck_assert_msg(fs_filter_parse_query(a, pool, criteria, default_type, &err) == APR_SUCCESS,
                  "%s: %s", criteria, err);
    return filter_at(a, 0);
}

static void allowed(const fs_topic_t *t, const char *criteria)
{
    const char *err = NULL;
    apr_status_t rv = fs_filter_check_topic(one_filter(criteria, fs_topic_default_type(t)), t,
                                            pool, &err);
    ck_assert_msg(rv == APR_SUCCESS, "%s refused by %s: %s", criteria, t->url, err);
}

static void refused(const fs_topic_t *t, const char *criteria, const char *expect)
{
    const char *err = NULL;
    apr_status_t rv = fs_filter_check_topic(one_filter(criteria, fs_topic_default_type(t)), t,
                                            pool, &err);
    ck_assert_msg(rv != APR_SUCCESS, "%s allowed by %s", criteria, t->url);
    ck_assert_msg(strstr(err, expect) != NULL, "message '%s' lacks '%s'", err, expect);
}

/* ---- the shipped topics ------------------------------------------------------------ */

START_TEST(shipped_encounter_end)
{
    const fs_topic_t *t = load_shipped("encounter-end.json");
    const fs_topic_trigger_t *tr;
    const fs_filter_t *f;

    ck_assert_str_eq(t->url, BACKPORT_URL);
    ck_assert_str_eq(t->status, "active");
    ck_assert(!t->basic);
    ck_assert_int_eq(t->triggers->nelts, 1);
    tr = trigger(t, 0);
    ck_assert_str_eq(tr->resource_type, "Encounter"); /* written as a StructureDefinition URL */
    ck_assert_int_eq(tr->interactions, FS_TOPIC_CREATE | FS_TOPIC_UPDATE);
    ck_assert_str_eq(tr->previous_text, "status:not=finished");
    f = filter_at(tr->previous, 0);
    ck_assert_str_eq(f->param, "status");
    ck_assert_str_eq(f->modifier, "not");
    ck_assert_str_eq(f->value, "finished");
    ck_assert_int_eq(tr->previous->nelts, 1);
    ck_assert_str_eq(tr->current_text, "status=finished");
    f = filter_at(tr->current, 0);
    ck_assert_ptr_null(f->modifier);
    ck_assert_str_eq(f->value, "finished");
    ck_assert_int_eq(tr->result_for_create, FS_TOPIC_TEST_PASSES);
    ck_assert_int_eq(tr->result_for_delete, FS_TOPIC_TEST_FAILS);
    ck_assert(tr->require_both);
    ck_assert_ptr_nonnull(tr->fhirpath); /* kept alongside queryCriteria */
    ck_assert_str_eq(fs_topic_default_type(t), "Encounter");
    ck_assert_ptr_nonnull(fs_topic_can_filter(t, "Encounter", "patient"));
    ck_assert_ptr_nonnull(fs_topic_can_filter(t, "Encounter", "subject"));
    ck_assert_ptr_nonnull(fs_topic_can_filter(t, "Encounter", "class"));
    ck_assert_ptr_null(fs_topic_can_filter(t, "Encounter", "status"));
    ck_assert_int_eq(t->shapes->nelts, 1);
    ck_assert_int_eq(APR_ARRAY_IDX(t->shapes, 0, fs_topic_shape_t *)->include->nelts, 7);
    ck_assert_int_eq(APR_ARRAY_IDX(t->shapes, 0, fs_topic_shape_t *)->rev_include->nelts, 1);
    ck_assert_ptr_nonnull(strstr(t->json, "\"url\":\"" BACKPORT_URL "\""));
}
END_TEST

START_TEST(shipped_encounter_start)
{
    const fs_topic_t *t = load_shipped("encounter-start.json");
    const fs_topic_trigger_t *tr = trigger(t, 0);
    ck_assert_str_eq(t->url, EX_URL "encounter-start");
    ck_assert_int_eq(tr->interactions, FS_TOPIC_CREATE | FS_TOPIC_UPDATE);
    ck_assert_str_eq(filter_at(tr->previous, 0)->modifier, "not");
    ck_assert_str_eq(filter_at(tr->previous, 0)->value, "in-progress");
    ck_assert_str_eq(filter_at(tr->current, 0)->value, "in-progress");
    ck_assert(tr->require_both);
    ck_assert_ptr_null(tr->fhirpath);
    allowed(t, "Encounter?patient=Patient/123");
    allowed(t, "subject=Group/1");
    allowed(t, "Encounter.class=http://terminology.hl7.org/CodeSystem/v3-ActCode|EMER");
}
END_TEST

START_TEST(shipped_patient_change)
{
    const fs_topic_t *t = load_shipped("patient-change.json");
    const fs_topic_trigger_t *tr = trigger(t, 0);
    ck_assert_str_eq(t->url, EX_URL "patient-change");
    ck_assert_str_eq(tr->resource_type, "Patient");
    ck_assert_int_eq(tr->interactions, FS_TOPIC_ALL);
    ck_assert_ptr_null(tr->previous);
    ck_assert_ptr_null(tr->current);
    allowed(t, "Patient?_id=123");
    allowed(t, "identifier=http://example.org/mrn|42");
    allowed(t, "family:exact=Smith");
    refused(t, "Patient?link=Patient/2", "does not offer filtering by Patient.link");
}
END_TEST

START_TEST(shipped_observation_change)
{
    const fs_topic_t *t = load_shipped("observation-change.json");
    ck_assert_str_eq(t->url, EX_URL "observation-change");
    ck_assert_int_eq(trigger(t, 0)->interactions, FS_TOPIC_ALL);
    allowed(t, "Observation?code=http://loinc.org|8867-4");
    allowed(t, "patient=Patient/1");
    allowed(t, "subject:Patient=1");
    allowed(t, "category=vital-signs");
    allowed(t, "status:not=preliminary");
    allowed(t, "date=ge2024-01-01");
    allowed(t, "date=2024-01-01");
}
END_TEST

START_TEST(shipped_dir)
{
    fs_topics_t *reg;
    const char *err = NULL;
    int i;
    ck_assert_int_eq(fs_topics_create(&reg, pool), APR_SUCCESS);
    ck_assert_msg(fs_topics_load_dir(reg, topics_dir(), &err) == APR_SUCCESS, "%s", err);
    ck_assert_int_eq(fs_topics_count(reg), 4);
    /* name order */
    ck_assert_str_eq(fs_topics_at(reg, 0)->url, BACKPORT_URL);
    ck_assert_str_eq(fs_topics_at(reg, 3)->url, EX_URL "patient-change");
    ck_assert_ptr_null(fs_topics_at(reg, 4));
    for (i = 0; i < fs_topics_count(reg); ++i) {
        ck_assert_ptr_eq(fs_topics_get(reg, fs_topics_at(reg, i)->url), fs_topics_at(reg, i));
    }
    ck_assert_ptr_nonnull(fs_topics_get(reg, EX_URL "encounter-start"));
    ck_assert_ptr_nonnull(fs_topics_get(reg, EX_URL "encounter-start|1.0.0"));
    ck_assert_ptr_null(fs_topics_get(reg, EX_URL "encounter-start|2.0.0"));
    ck_assert_ptr_null(fs_topics_get(reg, EX_URL "nope"));
    ck_assert_ptr_null(fs_topics_get(reg, NULL));
    /* loading the same directory again hits the duplicate check */
    ck_assert_int_eq(fs_topics_load_dir(reg, topics_dir(), &err), APR_EEXIST);
    ck_assert_ptr_nonnull(strstr(err, "is already defined by"));
    ck_assert_int_ne(fs_topics_load_dir(reg, "/nonexistent/topics", &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/topics: cannot open topic directory"));
}
END_TEST

/* ---- rejections at load ------------------------------------------------------------ */

START_TEST(reject_malformed_json)
{
    topic_err("{", "invalid JSON");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",}", "invalid JSON");
    topic_err("{\"resourceType\":\"SubscriptionTopic\"} x", "invalid JSON");
    topic_err("", "empty body");
    topic_err("[]", "a SubscriptionTopic must be a JSON object");
    topic_err("{\"resourceType\":\"Patient\"}", "resourceType: 'Patient' is not SubscriptionTopic");
    topic_err("{\"url\":\"" EX_URL "x\"}", "resourceType: '(missing)'");
}
END_TEST

START_TEST(reject_file_problems)
{
    fs_topic_t *t;
    const char *err = NULL;
    ck_assert_int_ne(fs_topic_load_file(&t, pool, "/nonexistent/x.json", &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.json: cannot read"));
}
END_TEST

START_TEST(reject_missing_url)
{
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"resourceTrigger\":[{\"resource\":"
              "\"Encounter\"}]}", "SubscriptionTopic.url: is required");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"\",\"resourceTrigger\":"
              "[{\"resource\":\"Encounter\"}]}", "SubscriptionTopic.url: must be a non-empty string");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":7}", "must be a non-empty string");
}
END_TEST

START_TEST(reject_duplicate_url)
{
    fs_topics_t *reg;
    const char *err = NULL;
    fs_topic_t *a = topic_ok(enc_topic("", NULL)), *b = topic_ok(enc_topic("", NULL));
    ck_assert_int_eq(fs_topics_create(&reg, pool), APR_SUCCESS);
    ck_assert_int_eq(fs_topics_add(reg, a, &err), APR_SUCCESS);
    ck_assert_int_eq(fs_topics_add(reg, b, &err), APR_EEXIST);
    ck_assert_ptr_nonnull(strstr(err, "topic url '" EX_URL "t' is already defined by test.json"));
    ck_assert_int_eq(fs_topics_count(reg), 1);
    ck_assert_ptr_eq(fs_topics_get(reg, EX_URL "t"), a);
}
END_TEST

START_TEST(reject_fhirpath_only)
{
    topic_err(enc_topic("\"fhirPathCriteria\":\"%current.status = 'finished'\"", NULL),
              "test.json: resourceTrigger[0].fhirPathCriteria: FHIRPath criteria are not "
              "supported; use queryCriteria");
    /* with queryCriteria it is kept, for display */
    ck_assert_ptr_nonnull(trigger(topic_ok(enc_topic(
        "\"fhirPathCriteria\":\"%current.status = 'finished'\","
        "\"queryCriteria\":{\"current\":\"status=finished\"}", NULL)), 0)->fhirpath);
}
END_TEST

START_TEST(reject_query_criteria)
{
    topic_err(enc_topic("\"queryCriteria\":{\"current\":\"foo=bar\"}", NULL),
              "test.json: resourceTrigger[0].queryCriteria.current: search parameter 'foo' is "
              "not supported for Encounter; supported: account");
    topic_err(enc_topic("\"queryCriteria\":{\"previous\":\"status:exact=x\"}", NULL),
              "resourceTrigger[0].queryCriteria.previous: modifier ':exact'");
    topic_err(enc_topic("\"queryCriteria\":{\"current\":\"Observation?code=x\"}", NULL),
              "queryCriteria.current: 'Observation?code=x' tests Observation, but the trigger "
              "is for Encounter");
    topic_err(enc_topic("\"queryCriteria\":{\"current\":\"status=finished&_sort=date\"}", NULL),
              "'_sort' is a search result parameter");
    topic_err(enc_topic("\"queryCriteria\":{}", NULL),
              "resourceTrigger[0].queryCriteria: has neither previous nor current");
    topic_err(enc_topic("\"queryCriteria\":\"status=finished\"", NULL),
              "resourceTrigger[0].queryCriteria: must be a JSON object");
    topic_err(enc_topic("\"queryCriteria\":{\"current\":\"status=finished\","
                        "\"resultForCreate\":\"maybe\"}", NULL),
              "queryCriteria.resultForCreate: 'maybe' is not one of test-passes, test-fails");
    topic_err(enc_topic("\"queryCriteria\":{\"current\":\"status=finished\","
                        "\"requireBoth\":\"yes\"}", NULL),
              "queryCriteria.requireBoth: must be true or false");
}
END_TEST

START_TEST(query_criteria_forms)
{
    const fs_topic_trigger_t *tr = trigger(topic_ok(enc_topic(
        "\"queryCriteria\":{\"previous\":\"Encounter?status:not=finished\","
        "\"current\":\"Encounter.status=finished&class=AMB,IMP\"}", NULL)), 0);
    ck_assert_int_eq(tr->previous->nelts, 1);
    ck_assert_int_eq(tr->current->nelts, 2);
    ck_assert_int_eq(filter_at(tr->current, 1)->values->nelts, 2);
    ck_assert_int_eq(tr->result_for_create, FS_TOPIC_RESULT_UNSET);
    ck_assert_int_eq(tr->result_for_delete, FS_TOPIC_RESULT_UNSET);
    ck_assert(!tr->require_both);
    ck_assert_ptr_null(tr->fhirpath);
}
END_TEST

START_TEST(reject_triggers)
{
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL "x\"}",
              "resourceTrigger: is required");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL "x\","
              "\"resourceTrigger\":[]}", "resourceTrigger: must be a non-empty array");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL "x\","
              "\"eventTrigger\":[{\"event\":{\"text\":\"x\"},\"resource\":\"Encounter\"}]}",
              "eventTrigger: event triggers are not supported");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL "x\","
              "\"resourceTrigger\":[{}]}", "resourceTrigger[0].resource: is required");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL "x\","
              "\"resourceTrigger\":[{\"resource\":\"Practitioner\"}]}",
              "resourceTrigger[0].resource: resource type 'Practitioner' is not supported; "
              "supported: AllergyIntolerance");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL "x\","
              "\"resourceTrigger\":[{\"resource\":\"http://example.org/x\"}]}",
              "'http://example.org/x' is neither a resource type nor a StructureDefinition URL");
    topic_err(enc_topic("\"supportedInteraction\":[\"create\",\"read\"]", NULL),
              "resourceTrigger[0].supportedInteraction[1]: 'read' is not one of create, update, "
              "delete");
    topic_err(enc_topic("\"supportedInteraction\":\"create\"", NULL),
              "supportedInteraction: must be a non-empty array");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL "x\",\"status\":"
              "\"live\",\"resourceTrigger\":[{\"resource\":\"Encounter\"}]}",
              "status: 'live' is not one of draft, active, retired, unknown");
}
END_TEST

START_TEST(reject_can_filter_by)
{
    topic_err(enc_topic("", "[{\"resource\":\"Encounter\",\"filterParameter\":\"_in\"}]"),
              "canFilterBy[0].filterParameter: '_in' is not supported for Encounter; supported:");
    topic_err(enc_topic("", "[{\"resource\":\"Encounter\",\"filterParameter\":\"subject\"},"
                        "{\"resource\":\"Encounter\",\"filterParameter\":\"length\"}]"),
              "canFilterBy[1].filterParameter: 'length' is not supported");
    topic_err(enc_topic("", "[{\"resource\":\"Encounter\"}]"),
              "canFilterBy[0].filterParameter: is required");
    topic_err(enc_topic("", "[{\"resource\":\"Encounter\",\"filterParameter\":\"date\","
                        "\"comparator\":[\"gt\",\"bigger\"]}]"),
              "canFilterBy[0].comparator[1]: unknown comparator 'bigger'");
    topic_err(enc_topic("", "[{\"resource\":\"Foo\",\"filterParameter\":\"x\"}]"),
              "canFilterBy[0].resource: resource type 'Foo' is not supported");
    /* without resource: the topic's only type, or an error when there are several */
    ck_assert_str_eq(APR_ARRAY_IDX(topic_ok(enc_topic("", "[{\"filterParameter\":\"patient\"}]"))
                                   ->can_filter_by, 0, fs_topic_can_filter_t *)->resource_type,
                     "Encounter");
    topic_err("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL "x\","
              "\"resourceTrigger\":[{\"resource\":\"Encounter\"},{\"resource\":\"Observation\"}],"
              "\"canFilterBy\":[{\"filterParameter\":\"patient\"}]}",
              "canFilterBy[0].resource: is required when the topic has several resource types");
}
END_TEST

/* ---- canFilterBy checks -------------------------------------------------------------- */

START_TEST(check_topic_filters)
{
    const fs_topic_t *obs = load_shipped("observation-change.json");
    const fs_topic_t *pat = load_shipped("patient-change.json");
    const fs_topic_t *none = topic_ok(enc_topic("", NULL));
    apr_array_header_t *a = apr_array_make(pool, 2, sizeof(fs_filter_t *));
    const char *err = NULL;

    refused(obs, "Observation?value-concept=x", "topic '" EX_URL "observation-change' does not "
            "offer filtering by Observation.value-concept; it offers: Observation.code, "
            "Observation.subject");
    refused(obs, "Observation?status:missing=true", "does not allow modifier ':missing' on "
            "Observation.status; allowed: not");
    refused(obs, "Observation?date=sa2024", "does not allow comparator 'sa' on Observation.date; "
            "allowed: eq, gt, ge, lt, le");
    refused(pat, "Encounter?patient=Patient/1", "does not offer filtering by Encounter.patient");
    refused(none, "Encounter?status=finished", "topic '" EX_URL "t' declares no canFilterBy and "
            "so accepts no filters, but 'Encounter?status=finished' was requested");

    ck_assert_int_eq(fs_filter_parse_query(a, pool, "Observation?code=x&patient=Patient/1", NULL,
                                           &err), APR_SUCCESS);
    ck_assert_int_eq(fs_filters_check_topic(a, obs, pool, &err), APR_SUCCESS);
    APR_ARRAY_PUSH(a, const fs_filter_t *) = one_filter("Observation?method=x", NULL);
    ck_assert_int_ne(fs_filters_check_topic(a, obs, pool, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "Observation.method"));
    ck_assert_int_eq(fs_filters_check_topic(NULL, none, pool, &err), APR_SUCCESS);
}
END_TEST

START_TEST(check_topic_r4b_modifiers)
{
    /* R4B: comparators among the modifiers, "=" for plain equality, "type" for :[Type] */
    const fs_topic_t *t = topic_ok(enc_topic("", "["
        "{\"filterParameter\":\"date\",\"modifier\":[\"=\",\"gt\",\"lt\"]},"
        "{\"filterParameter\":\"subject\",\"modifier\":[\"type\"]},"
        "{\"filterParameter\":\"status\",\"modifier\":[\"=\"]},"
        "{\"filterParameter\":\"class\"}]"));
    allowed(t, "date=gt2024");
    allowed(t, "date=2024");
    refused(t, "date=ge2024", "does not allow comparator 'ge' on Encounter.date; allowed: gt, lt, eq");
    allowed(t, "subject:Patient=1");
    allowed(t, "subject=Group/1");
    refused(t, "subject:missing=true", "does not allow modifier ':missing'");
    allowed(t, "status=finished");
    refused(t, "status:not=finished", "does not allow modifier ':not' on Encounter.status");
    allowed(t, "class:not=AMB");
    allowed(t, "class:missing=true");
}
END_TEST

START_TEST(multi_trigger_topic)
{
    const fs_topic_t *t = topic_ok("{\"resourceType\":\"SubscriptionTopic\",\"url\":\"" EX_URL
        "m\",\"resourceTrigger\":[{\"resource\":\"Encounter\",\"queryCriteria\":{\"current\":"
        "\"status=finished\"}},{\"resource\":\"Observation\",\"supportedInteraction\":[\"create\"],"
        "\"queryCriteria\":{\"current\":\"status=final\"}}],\"canFilterBy\":["
        "{\"resource\":\"Encounter\",\"filterParameter\":\"patient\"},"
        "{\"resource\":\"http://hl7.org/fhir/StructureDefinition/Observation\","
        "\"filterParameter\":\"patient\"}]}");
    apr_array_header_t *a = apr_array_make(pool, 2, sizeof(fs_filter_t *));
    const char *err = NULL;

    ck_assert_ptr_null(fs_topic_default_type(t));
    ck_assert_str_eq(filter_at(trigger(t, 1)->current, 0)->resource_type, "Observation");
    ck_assert_int_eq(trigger(t, 1)->interactions, FS_TOPIC_CREATE);
    /* without a default type, filters must name their type */
    ck_assert_int_ne(fs_filter_parse_query(a, pool, "patient=Patient/1", fs_topic_default_type(t),
                                           &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "names no resource type"));
    allowed(t, "Observation?patient=Patient/1");
    allowed(t, "Encounter.patient=Patient/1");
    ck_assert_str_eq(fs_topic_filter_names(pool, t, NULL), "Encounter.patient, Observation.patient");
    ck_assert_str_eq(fs_topic_filter_names(pool, t, "Observation"), "patient");
}
END_TEST

/* ---- R4 Basic topics ------------------------------------------------------------------ */

#define XV "http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic."

static const char *basic_topic(const char *can_filter_param)
{
    return apr_psprintf(pool,
        "{\"resourceType\":\"Basic\",\"id\":\"r4-encounter-complete\","
        "\"extension\":["
        "{\"url\":\"http://hl7.org/fhir/StructureDefinition/artifact-url\","
        "\"valueUri\":\"" BACKPORT_URL "\"},"
        "{\"url\":\"" XV "title\",\"valueString\":\"Encounter Complete\"},"
        "{\"url\":\"" XV "resourceTrigger\",\"extension\":["
        " {\"url\":\"description\",\"valueMarkdown\":\"Triggered when an encounter is completed.\"},"
        " {\"url\":\"resource\",\"valueUri\":\"http://hl7.org/fhir/StructureDefinition/Encounter\"},"
        " {\"url\":\"supportedInteraction\",\"valueCode\":\"create\"},"
        " {\"url\":\"supportedInteraction\",\"valueCode\":\"update\"},"
        " {\"url\":\"queryCriteria\",\"extension\":["
        "  {\"url\":\"previous\",\"valueString\":\"status:not=finished\"},"
        "  {\"url\":\"resultForCreate\",\"valueCode\":\"test-passes\"},"
        "  {\"url\":\"current\",\"valueString\":\"status=finished\"},"
        "  {\"url\":\"resultForDelete\",\"valueCode\":\"test-fails\"},"
        "  {\"url\":\"requireBoth\",\"valueBoolean\":true}]},"
        " {\"url\":\"fhirPathCriteria\",\"valueString\":\"%%current.status = 'finished'\"}]},"
        "{\"url\":\"" XV "canFilterBy\",\"extension\":["
        " {\"url\":\"resource\",\"valueUri\":\"Encounter\"},"
        " {\"url\":\"filterParameter\",\"valueString\":\"%s\"}]},"
        "{\"url\":\"" XV "notificationShape\",\"extension\":["
        " {\"url\":\"resource\",\"valueUri\":\"Encounter\"},"
        " {\"url\":\"include\",\"valueString\":\"Encounter:patient\"},"
        " {\"url\":\"include\",\"valueString\":\"Encounter:location\"},"
        " {\"url\":\"http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
        "backport-related-query\",\"extension\":[{\"url\":\"query\",\"valueString\":\"x\"}]}]}],"
        "\"modifierExtension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/artifact-status\","
        "\"valueCode\":\"draft\"}],"
        "\"code\":{\"coding\":[{\"system\":\"http://hl7.org/fhir/fhir-types\","
        "\"code\":\"SubscriptionTopic\"}]}}", can_filter_param);
}

START_TEST(basic_topic_r4)
{
    const fs_topic_t *t = topic_ok(basic_topic("subject"));
    const fs_topic_trigger_t *tr = trigger(t, 0);
    ck_assert(t->basic);
    ck_assert_str_eq(t->url, BACKPORT_URL);
    ck_assert_str_eq(t->title, "Encounter Complete");
    ck_assert_str_eq(t->status, "draft");
    ck_assert_str_eq(tr->resource_type, "Encounter");
    ck_assert_int_eq(tr->interactions, FS_TOPIC_CREATE | FS_TOPIC_UPDATE);
    ck_assert_str_eq(filter_at(tr->previous, 0)->modifier, "not");
    ck_assert_str_eq(filter_at(tr->current, 0)->value, "finished");
    ck_assert_int_eq(tr->result_for_create, FS_TOPIC_TEST_PASSES);
    ck_assert_int_eq(tr->result_for_delete, FS_TOPIC_TEST_FAILS);
    ck_assert(tr->require_both);
    ck_assert_ptr_nonnull(fs_topic_can_filter(t, "Encounter", "subject"));
    ck_assert_int_eq(APR_ARRAY_IDX(t->shapes, 0, fs_topic_shape_t *)->include->nelts, 2);
    /* served back as loaded: the Basic resource */
    ck_assert_ptr_nonnull(strstr(t->json, "\"resourceType\":\"Basic\""));

    topic_err(basic_topic("_in"), "canFilterBy[0].filterParameter: '_in' is not supported");
    topic_err("{\"resourceType\":\"Basic\",\"code\":{\"coding\":[{\"code\":\"x\"}]}}",
              "this Basic resource is not a SubscriptionTopic");
    topic_err("{\"resourceType\":\"Basic\",\"code\":{\"coding\":[{\"system\":"
              "\"http://hl7.org/fhir/fhir-types\",\"code\":\"SubscriptionTopic\"}]}}",
              "SubscriptionTopic.url: is required");
}
END_TEST

/* ---- runner -------------------------------------------------------------------------- */

static Suite *topic_suite(void)
{
    Suite *s = suite_create("fs_topic");
    TCase *tc = tcase_create("shipped");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, shipped_encounter_end);
    tcase_add_test(tc, shipped_encounter_start);
    tcase_add_test(tc, shipped_patient_change);
    tcase_add_test(tc, shipped_observation_change);
    tcase_add_test(tc, shipped_dir);
    suite_add_tcase(s, tc);

    tc = tcase_create("load");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, reject_malformed_json);
    tcase_add_test(tc, reject_file_problems);
    tcase_add_test(tc, reject_missing_url);
    tcase_add_test(tc, reject_duplicate_url);
    tcase_add_test(tc, reject_fhirpath_only);
    tcase_add_test(tc, reject_query_criteria);
    tcase_add_test(tc, query_criteria_forms);
    tcase_add_test(tc, reject_triggers);
    tcase_add_test(tc, reject_can_filter_by);
    tcase_add_test(tc, basic_topic_r4);
    suite_add_tcase(s, tc);

    tc = tcase_create("can_filter_by");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, check_topic_filters);
    tcase_add_test(tc, check_topic_r4b_modifiers);
    tcase_add_test(tc, multi_trigger_topic);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(topic_suite());
}
