/* Unit tests: fs_searchparam and fs_filter.
 *
 * FHIRSUB_DOCS_DIR (or -DDOCS_DIR=...) locates docs/ for the table/doc sync check; without
 * them it is found next to the topics dir (FHIRSUB_TOPICS_DIR / TOPICS_DIR), else ../../docs.
 * FHIRSUB_PRINT_SP_DOC=1 prints the parameter rows of docs/SEARCH-PARAMETERS.md instead
 * of running the tests (regenerate the doc table with it after changing the table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <check.h>

#include "../../src/core/fs_json.h"
#include "../../src/core/fs_searchparam.h"
#include "../../src/core/fs_filter.h"

static apr_pool_t *pool;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
    pool = NULL;
}

/* ---- helpers ----------------------------------------------------------------------- */

static apr_array_header_t *parse_ok(const char *criteria, const char *default_type)
{
    apr_array_header_t *out = apr_array_make(pool, 4, sizeof(fs_filter_t *));
    const char *err = NULL;
    apr_status_t rv = fs_filter_parse_query(out, pool, criteria, default_type, &err);
    ck_assert_msg(rv == APR_SUCCESS, "'%s' rejected: %s", criteria, err ? err : "?");
    ck_assert_int_gt(out->nelts, 0);
    return out;
}

static const fs_filter_t *parse_one(const char *criteria, const char *default_type)
{
    apr_array_header_t *out = parse_ok(criteria, default_type);
    ck_assert_int_eq(out->nelts, 1);
    return APR_ARRAY_IDX(out, 0, const fs_filter_t *);
}

static void parse_err(const char *criteria, const char *default_type, const char *expect)
{
    apr_array_header_t *out = apr_array_make(pool, 4, sizeof(fs_filter_t *));
    const char *err = NULL;
    apr_status_t rv = fs_filter_parse_query(out, pool, criteria, default_type, &err);
    ck_assert_msg(rv != APR_SUCCESS, "'%s' was accepted", criteria);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, expect) != NULL, "'%s': message '%s' lacks '%s'", criteria,
                  err, expect);
}

static const char *val(const fs_filter_t *f, int i)
{
    ck_assert_int_lt(i, f->values->nelts);
    return APR_ARRAY_IDX(f->values, i, const char *);
}

static json_object *jparse(const char *text)
{
    json_object *j;
    const char *err = NULL;
    ck_assert_msg(fs_json_parse(&j, pool, text, strlen(text), &err) == APR_SUCCESS, "%s", err);
    return j;
}

static fs_filter_t *r5_ok(const char *json, const char *default_type)
{
    fs_filter_t *f = NULL;
    const char *err = NULL;
    apr_status_t rv = fs_filter_from_r5(&f, pool, jparse(json), default_type, &err);
    ck_assert_msg(rv == APR_SUCCESS, "%s rejected: %s", json, err ? err : "?");
    return f;
}

static void r5_err(const char *json, const char *default_type, const char *expect)
{
    fs_filter_t *f = NULL;
    const char *err = NULL;
    apr_status_t rv = fs_filter_from_r5(&f, pool, jparse(json), default_type, &err);
    ck_assert_msg(rv != APR_SUCCESS, "%s was accepted", json);
    ck_assert_ptr_null(f);
    ck_assert_msg(strstr(err, expect) != NULL, "%s: message '%s' lacks '%s'", json, err, expect);
}

/* ---- accepted forms ------------------------------------------------------------------ */

START_TEST(query_with_type)
{
    const fs_filter_t *f = parse_one("Encounter?patient=Patient/123", NULL);
    ck_assert_str_eq(f->resource_type, "Encounter");
    ck_assert_str_eq(f->param, "patient");
    ck_assert_ptr_null(f->modifier);
    ck_assert_ptr_null(f->comparator);
    ck_assert_str_eq(f->value, "Patient/123");
    ck_assert_int_eq(f->values->nelts, 1);
    ck_assert_str_eq(val(f, 0), "Patient/123");
    ck_assert_ptr_eq(f->sp, fs_sp_find("Encounter", "patient"));
    ck_assert_str_eq(f->sp->target, "Patient");
}
END_TEST

START_TEST(query_default_type)
{
    const fs_filter_t *f = parse_one("patient=Patient/123", "Encounter");
    ck_assert_str_eq(f->resource_type, "Encounter");
    ck_assert_str_eq(f->param, "patient");
    /* an explicit type wins over the default */
    f = parse_one("Observation?code=1234-5", "Encounter");
    ck_assert_str_eq(f->resource_type, "Observation");
    f = parse_one("?status=finished", "Encounter");
    ck_assert_str_eq(f->resource_type, "Encounter");
    /* surrounding whitespace from JSON is tolerated */
    f = parse_one("  Encounter?status=finished \n", NULL);
    ck_assert_str_eq(f->value, "finished");
}
END_TEST

START_TEST(query_dotted)
{
    const fs_filter_t *f = parse_one("Encounter.patient=Patient/123", NULL);
    ck_assert_str_eq(f->resource_type, "Encounter");
    ck_assert_str_eq(f->param, "patient");
    ck_assert_str_eq(f->value, "Patient/123");
    f = parse_one("Observation.subject:Patient=123", NULL);
    ck_assert_str_eq(f->param, "subject");
    ck_assert_str_eq(f->modifier, "Patient");
    f = parse_one("Encounter?Encounter.status=finished", NULL);
    ck_assert_str_eq(f->param, "status");
}
END_TEST

START_TEST(query_and)
{
    apr_array_header_t *a = parse_ok("Encounter?patient=Patient/1&status=finished&class="
                                     "http://terminology.hl7.org/CodeSystem/v3-ActCode|IMP",
                                     NULL);
    const fs_filter_t *f;
    ck_assert_int_eq(a->nelts, 3);
    f = APR_ARRAY_IDX(a, 0, const fs_filter_t *);
    ck_assert_str_eq(f->param, "patient");
    f = APR_ARRAY_IDX(a, 1, const fs_filter_t *);
    ck_assert_str_eq(f->param, "status");
    ck_assert_str_eq(f->value, "finished");
    f = APR_ARRAY_IDX(a, 2, const fs_filter_t *);
    ck_assert_str_eq(f->param, "class");
    ck_assert_str_eq(f->value, "http://terminology.hl7.org/CodeSystem/v3-ActCode|IMP");
    /* the same parameter twice is an AND, e.g. a date range */
    a = parse_ok("Observation?date=ge2024-01-01&date=lt2024-02-01", NULL);
    ck_assert_int_eq(a->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(a, 1, const fs_filter_t *)->comparator, "lt");
}
END_TEST

START_TEST(classic_criteria)
{
    apr_array_header_t *a = apr_array_make(pool, 4, sizeof(fs_filter_t *));
    const char *type = NULL, *err = NULL;
    const fs_filter_t *f;

    ck_assert_int_eq(fs_filter_parse_criteria(&type, a, pool, "Observation?code=http://loinc.org"
                                              "|1234-5&subject=Patient/1", &err), APR_SUCCESS);
    ck_assert_str_eq(type, "Observation");
    ck_assert_int_eq(a->nelts, 2);
    f = APR_ARRAY_IDX(a, 0, const fs_filter_t *);
    ck_assert_str_eq(f->param, "code");
    ck_assert_str_eq(f->value, "http://loinc.org|1234-5");
    f = APR_ARRAY_IDX(a, 1, const fs_filter_t *);
    ck_assert_str_eq(f->param, "subject");

    /* a bare type subscribes to every change of that type */
    a = apr_array_make(pool, 4, sizeof(fs_filter_t *));
    ck_assert_int_eq(fs_filter_parse_criteria(&type, a, pool, "Patient", &err), APR_SUCCESS);
    ck_assert_str_eq(type, "Patient");
    ck_assert_int_eq(a->nelts, 0);
    ck_assert_int_eq(fs_filter_parse_criteria(&type, a, pool, "Patient?", &err), APR_SUCCESS);
    ck_assert_int_eq(a->nelts, 0);

    ck_assert_int_ne(fs_filter_parse_criteria(&type, a, pool, "code=1234-5", &err), APR_SUCCESS);
    ck_assert_ptr_null(type);
    ck_assert_ptr_nonnull(strstr(err, "must start with a resource type"));
    ck_assert_int_ne(fs_filter_parse_criteria(&type, a, pool, "Practitioner?name=x", &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "resource type 'Practitioner' is not supported"));
    ck_assert_int_ne(fs_filter_parse_criteria(&type, a, pool, "Observation?foo=1", &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "'foo' is not supported for Observation"));
}
END_TEST

START_TEST(percent_decoding)
{
    const fs_filter_t *f = parse_one("Observation?code=http%3A%2F%2Floinc.org%7C1234-5", NULL);
    ck_assert_str_eq(f->value, "http://loinc.org|1234-5");
    f = parse_one("Patient?name=John%20Smith", NULL);
    ck_assert_str_eq(f->value, "John Smith");
    f = parse_one("Patient?family=M%C3%BCller", NULL);
    ck_assert_str_eq(f->value, "M\xc3\xbcller");
    /* names are decoded too */
    f = parse_one("Encounter?status%3Anot=finished", NULL);
    ck_assert_str_eq(f->modifier, "not");
    /* '+' stays: unencoded timezone offsets are common in criteria strings */
    f = parse_one("Observation?date=ge2024-01-01T00:00:00+01:00", NULL);
    ck_assert_str_eq(f->comparator, "ge");
    ck_assert_str_eq(f->value, "2024-01-01T00:00:00+01:00");
    f = parse_one("Observation?date=ge2024-01-01T00:00:00%2B01:00", NULL);
    ck_assert_str_eq(f->value, "2024-01-01T00:00:00+01:00");

    parse_err("Patient?name=a%zzb", NULL, "invalid percent-encoding '%zz'");
    parse_err("Patient?name=ab%2", NULL, "invalid percent-encoding '%2'");
    parse_err("Patient?name=a%00b", NULL, "'%00' is not allowed");
}
END_TEST

START_TEST(or_values)
{
    const fs_filter_t *f = parse_one("Encounter?status=finished,cancelled", NULL);
    ck_assert_int_eq(f->values->nelts, 2);
    ck_assert_str_eq(val(f, 0), "finished");
    ck_assert_str_eq(val(f, 1), "cancelled");
    ck_assert_str_eq(f->value, "finished,cancelled");
    /* a decoded %2C is a separator, as on a FHIR server */
    f = parse_one("Encounter?status=finished%2Ccancelled", NULL);
    ck_assert_int_eq(f->values->nelts, 2);
    /* "\," is a literal comma */
    f = parse_one("Patient?name=Smith\\,John,Doe", NULL);
    ck_assert_int_eq(f->values->nelts, 2);
    ck_assert_str_eq(val(f, 0), "Smith,John");
    ck_assert_str_eq(val(f, 1), "Doe");
    ck_assert_str_eq(f->value, "Smith\\,John,Doe");
    /* other escapes are the matcher's: kept */
    f = parse_one("Observation?code=a\\|b|c", NULL);
    ck_assert_str_eq(val(f, 0), "a\\|b|c");
    f = parse_one("Observation?date=ge2024-01-01,ge2025-01-01", NULL);
    ck_assert_str_eq(f->comparator, "ge");
    ck_assert_str_eq(val(f, 1), "2025-01-01");
    ck_assert_str_eq(f->value, "2024-01-01,2025-01-01");

    parse_err("Encounter?status=finished,,cancelled", NULL, "empty alternative");
    parse_err("Encounter?status=finished,", NULL, "empty alternative");
    parse_err("Observation?date=ge2024,lt2025", NULL, "different comparators (ge, lt)");
    parse_err("Observation?date=ge2024,2025", NULL, "different comparators (ge, eq)");
}
END_TEST

START_TEST(modifiers)
{
    const fs_filter_t *f = parse_one("Encounter?status:not=finished", NULL);
    ck_assert_str_eq(f->modifier, "not");
    f = parse_one("Patient?name:exact=Smith", NULL);
    ck_assert_str_eq(f->modifier, "exact");
    f = parse_one("Patient?family:contains=mit", NULL);
    ck_assert_str_eq(f->modifier, "contains");
    f = parse_one("Observation?subject:Patient=123", NULL);
    ck_assert_str_eq(f->modifier, "Patient");
    f = parse_one("Encounter?patient:Patient=123", NULL);
    ck_assert_str_eq(f->modifier, "Patient");
    f = parse_one("Observation?encounter:missing=true", NULL);
    ck_assert_str_eq(f->modifier, "missing");
    f = parse_one("Observation?date:missing=false", NULL);
    ck_assert_ptr_null(f->comparator);
    f = parse_one("Patient?_profile:below=http://hl7.org/fhir/us/core", NULL);
    ck_assert_str_eq(f->modifier, "below");

    parse_err("Encounter?status:exact=x", NULL,
              "modifier ':exact' is not supported on token parameter 'Encounter.status'; "
              "supported: :not, :missing");
    parse_err("Observation?code:in=http://example.org/vs", NULL, "':in' is not supported");
    parse_err("Observation?code:text=blood", NULL, "':text' is not supported");
    parse_err("Encounter?patient:Group=1", NULL, "supported: :missing, :Patient");
    parse_err("Observation?subject:patient=1", NULL, "':patient' is not supported");
    parse_err("Patient?name:=x", NULL, "empty modifier after 'name:'");
    parse_err("Observation?code:missing=maybe", NULL, "':missing' takes 'true' or 'false'");
    parse_err("Observation?date:exact=2024", NULL, "supported: :missing");
    parse_err("Observation?subject:Patient=Group/1", NULL, "only references to Patient match");
}
END_TEST

START_TEST(date_comparators)
{
    const fs_filter_t *f = parse_one("Observation?date=ge2024-01-01", NULL);
    const char *const *c;
    ck_assert_str_eq(f->comparator, "ge");
    ck_assert_str_eq(f->value, "2024-01-01");
    f = parse_one("Observation?date=2024", NULL);
    ck_assert_str_eq(f->comparator, "eq");
    f = parse_one("Encounter?date=lt2024-06-01T10:00:00Z", NULL);
    ck_assert_str_eq(f->comparator, "lt");
    f = parse_one("Encounter?date=2024-06-01T10:00:00.123-05:00", NULL);
    ck_assert_str_eq(f->value, "2024-06-01T10:00:00.123-05:00");
    f = parse_one("Patient?birthdate=1970-03", NULL);
    ck_assert_str_eq(f->value, "1970-03");
    for (c = fs_sp_comparators(); *c; ++c) {
        f = parse_one(apr_pstrcat(pool, "Observation?_lastUpdated=", *c, "2024-02-29", NULL),
                      NULL);
        ck_assert_str_eq(f->comparator, *c);
    }
    /* prefixes only mean something on dates: on a token they are part of the value */
    f = parse_one("Encounter?status=gt5", NULL);
    ck_assert_ptr_null(f->comparator);
    ck_assert_str_eq(f->value, "gt5");

    parse_err("Observation?date=2024-13-01", NULL, "invalid value '2024-13-01' for date "
              "parameter 'Observation.date'");
    parse_err("Observation?date=xx2024", NULL, "optionally prefixed by one of eq, ne, gt");
    parse_err("Observation?date=ge", NULL, "invalid value 'ge'");
    parse_err("Observation?date=2024-01-01T25:00", NULL, "invalid value");
    parse_err("Observation?date=2024-01-01T10:00+1", NULL, "invalid value");
    parse_err("Observation?date=24-01-01", NULL, "invalid value");
}
END_TEST

START_TEST(reject_types_and_params)
{
    parse_err("Foo?x=1", NULL, "resource type 'Foo' is not supported in filters; supported: "
              "AllergyIntolerance, Appointment");
    parse_err("encounter?status=x", NULL, "'encounter' is not a resource type name");
    parse_err("Resource?_id=1", NULL, "resource type 'Resource' is not supported");
    parse_err("http://x/fhir/Encounter?status=x", NULL, "is not a resource type name");
    parse_err("Foo.status=x", NULL, "resource type 'Foo' is not supported");
    parse_err("Encounter?foo=1", NULL, "search parameter 'foo' is not supported for Encounter; "
              "supported: account, based-on, class");
    parse_err("Encounter?foo=1", NULL, "type, _id, _lastUpdated, _profile");
    parse_err("Encounter?length=gt5", NULL, "'length' is not supported");
    parse_err("Encounter?_has:Observation:encounter:code=x", NULL,
              "search parameter '_has' is not supported");
    parse_err("status=finished", NULL, "names no resource type");
    parse_err("Encounter?Observation.code=x", NULL,
              "names resource type Observation, but the criteria are for Encounter");
    parse_err("Encounter?subject.name=x", NULL, "chained search parameters such as "
              "'subject.name' are not supported");
    parse_err("Encounter?subject:Patient.name=x", NULL, "chained search parameters");
}
END_TEST

START_TEST(reject_result_params)
{
    static const char *const params[] = {
        "_sort=date", "_count=10", "_include=Encounter:patient", "_revinclude=Observation:encounter",
        "_summary=true", "_elements=id", "_total=accurate", "_contained=true", NULL
    };
    const char *const *p;
    for (p = params; *p; ++p) {
        parse_err(apr_pstrcat(pool, "Encounter?status=finished&", *p, NULL), NULL,
                  "is a search result parameter and has no meaning in a subscription filter");
    }
}
END_TEST

START_TEST(reject_malformed)
{
    parse_err("", "Encounter", "empty filter criteria");
    parse_err("   ", "Encounter", "empty filter criteria");
    parse_err("Encounter?", NULL, "has no search parameters after '?'");
    parse_err("Encounter?status", NULL, "'status' is not of the form param=value");
    parse_err("Encounter?status=", NULL, "'Encounter.status' has an empty value");
    parse_err("Encounter?=finished", NULL, "has no parameter name");
    parse_err("Encounter?&status=x", NULL, "empty parameter in");
    parse_err("Encounter?status=x&", NULL, "empty parameter in");
    parse_err("Encounter?status=x&&class=y", NULL, "empty parameter in");
    parse_err("Encounter?patient=Patient/", NULL, "the reference has no id");
    parse_err("Encounter?patient=Group/1", NULL,
              "invalid value 'Group/1' for reference parameter 'Encounter.patient': only "
              "references to Patient match");
    parse_err("Patient?active=yes", NULL, "expected 'true' or 'false'");
    parse_err("Patient?_id=a%20b", NULL, "a resource id is 1-64");
    parse_err("Observation?code=|", NULL, "a token needs a system or a code");
}
END_TEST

START_TEST(references)
{
    const fs_filter_t *f = parse_one(
        "Encounter?patient=https://fhir.example.org/fhir/Patient/123", NULL);
    ck_assert_str_eq(f->value, "https://fhir.example.org/fhir/Patient/123");
    f = parse_one("Encounter?patient=Patient/123/_history/4", NULL);
    ck_assert_str_eq(f->value, "Patient/123/_history/4");
    f = parse_one("Encounter?patient=123", NULL);
    ck_assert_str_eq(f->value, "123");
    f = parse_one("Encounter?subject=Group/7", NULL);
    ck_assert_str_eq(f->value, "Group/7");
    f = parse_one("Task?owner=Practitioner/1,Organization/2", NULL);
    ck_assert_int_eq(f->values->nelts, 2);
    f = parse_one("Appointment?actor=Patient/1", NULL);
    ck_assert_str_eq(f->sp->paths[0].path, "participant.actor");
    parse_err("Appointment?practitioner=Patient/1", NULL, "only references to Practitioner");
}
END_TEST

/* ---- R5 filterBy --------------------------------------------------------------------- */

START_TEST(r5_filter_by)
{
    fs_filter_t *f = r5_ok("{\"resourceType\":\"Encounter\",\"filterParameter\":\"patient\","
                           "\"value\":\"Patient/123\"}", NULL);
    ck_assert_str_eq(f->resource_type, "Encounter");
    ck_assert_str_eq(f->param, "patient");
    ck_assert_str_eq(f->value, "Patient/123");
    ck_assert_ptr_null(f->modifier);

    f = r5_ok("{\"resourceType\":\"http://hl7.org/fhir/StructureDefinition/Observation\","
              "\"filterParameter\":\"date\",\"comparator\":\"gt\",\"value\":\"2024-01-01\"}", NULL);
    ck_assert_str_eq(f->resource_type, "Observation");
    ck_assert_str_eq(f->comparator, "gt");
    ck_assert_str_eq(f->value, "2024-01-01");

    f = r5_ok("{\"filterParameter\":\"status\",\"modifier\":\"not\",\"value\":\"finished\"}",
              "Encounter");
    ck_assert_str_eq(f->resource_type, "Encounter");
    ck_assert_str_eq(f->modifier, "not");

    /* eq is what every plain search means: harmless on any type */
    f = r5_ok("{\"resourceType\":\"Encounter\",\"filterParameter\":\"status\","
              "\"comparator\":\"eq\",\"value\":\"finished\"}", NULL);
    ck_assert_ptr_null(f->comparator);
    f = r5_ok("{\"resourceType\":\"Observation\",\"filterParameter\":\"date\","
              "\"value\":\"le2024\"}", NULL);
    ck_assert_str_eq(f->comparator, "le");
    f = r5_ok("{\"resourceType\":\"Observation\",\"filterParameter\":\"subject:Patient\","
              "\"value\":\"123\"}", NULL);
    ck_assert_str_eq(f->param, "subject");
    ck_assert_str_eq(f->modifier, "Patient");
    f = r5_ok("{\"resourceType\":\"Encounter\",\"filterParameter\":\"status\","
              "\"value\":\"finished,cancelled\"}", NULL);
    ck_assert_int_eq(f->values->nelts, 2);
}
END_TEST

START_TEST(r5_filter_by_rejects)
{
    r5_err("{\"resourceType\":\"Encounter\",\"filterParameter\":\"status\","
           "\"comparator\":\"gt\",\"value\":\"finished\"}", NULL,
           "comparator 'gt' is not supported on token parameter 'Encounter.status': "
           "comparators apply to date parameters only");
    r5_err("{\"resourceType\":\"Observation\",\"filterParameter\":\"date\","
           "\"comparator\":\"xx\",\"value\":\"2024\"}", NULL,
           "comparator 'xx' is not supported on date parameter 'Observation.date'; supported: "
           "eq, ne, gt, lt, ge, le, sa, eb, ap");
    r5_err("{\"resourceType\":\"Observation\",\"filterParameter\":\"date\","
           "\"comparator\":\"gt\",\"value\":\"ge2024\"}", NULL, "invalid value 'ge2024'");
    r5_err("{\"resourceType\":\"Observation\",\"filterParameter\":\"date\","
           "\"comparator\":\"gt\",\"modifier\":\"missing\",\"value\":\"true\"}", NULL,
           "cannot be combined with ':missing'");
    r5_err("{\"filterParameter\":\"status\",\"value\":\"finished\"}", NULL,
           "filterBy.resourceType is missing");
    r5_err("{\"resourceType\":\"Encounter\",\"value\":\"finished\"}", NULL,
           "filterBy.filterParameter is missing");
    r5_err("{\"resourceType\":\"Encounter\",\"filterParameter\":\"status\"}", NULL,
           "filterBy.value is missing");
    r5_err("{\"resourceType\":\"Encounter\",\"filterParameter\":\"status\",\"value\":3}", NULL,
           "filterBy.value must be a string");
    r5_err("{\"resourceType\":\"Encounter\",\"filterParameter\":\"status\",\"value\":\"\"}", NULL,
           "has an empty value");
    r5_err("[1]", NULL, "filterBy entry must be a JSON object");
    r5_err("{\"resourceType\":\"Encounter\",\"filterParameter\":\"subject:Patient\","
           "\"modifier\":\"missing\",\"value\":\"true\"}", NULL,
           "a modifier both in filterParameter");
    r5_err("{\"resourceType\":\"Encounter\",\"filterParameter\":\"_count\",\"value\":\"1\"}",
           NULL, "search result parameter");
    r5_err("{\"resourceType\":\"Encounter\",\"filterParameter\":\"status\","
           "\"modifier\":\"contains\",\"value\":\"fin\"}", NULL, "':contains' is not supported");
}
END_TEST

/* ---- serialisation ------------------------------------------------------------------- */

static void assert_same_filter(const fs_filter_t *a, const fs_filter_t *b)
{
    int i;
    ck_assert_str_eq(a->resource_type, b->resource_type);
    ck_assert_str_eq(a->param, b->param);
    ck_assert_pstr_eq(a->modifier, b->modifier);
    ck_assert_pstr_eq(a->comparator, b->comparator);
    ck_assert_str_eq(a->value, b->value);
    ck_assert_ptr_eq(a->sp, b->sp);
    ck_assert_int_eq(a->values->nelts, b->values->nelts);
    for (i = 0; i < a->values->nelts; ++i) ck_assert_str_eq(val(a, i), val(b, i));
}

static const char *const ROUNDTRIP[] = {
    "Encounter?patient=Patient/123",
    "Encounter?status:not=finished,cancelled",
    "Observation?date=ge2024-01-01T00:00:00+01:00",
    "Observation?date=sa2024,sa2025",
    "Observation?code=http://loinc.org|1234-5",
    "Observation?subject:Patient=123",
    "Observation?encounter:missing=true",
    "Patient?name=Smith\\,John,Doe",
    "Patient?name:exact=Jean%20Fran%C3%A7ois%20%26%20Co%3D%23",
    "Observation?code=a\\|b|c\\\\",
    "Patient?_profile:below=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient",
    NULL
};

START_TEST(json_roundtrip)
{
    apr_array_header_t *in = apr_array_make(pool, 8, sizeof(fs_filter_t *));
    apr_array_header_t *back = apr_array_make(pool, 8, sizeof(fs_filter_t *));
    const char *const *c;
    const char *json, *err = NULL;
    int i;

    for (c = ROUNDTRIP; *c; ++c) {
        ck_assert_int_eq(fs_filter_parse_query(in, pool, *c, NULL, &err), APR_SUCCESS);
    }
    json = fs_filters_to_json(pool, in);
    ck_assert_msg(fs_filters_from_json(back, pool, json, &err) == APR_SUCCESS, "%s", err);
    ck_assert_int_eq(back->nelts, in->nelts);
    for (i = 0; i < in->nelts; ++i) {
        assert_same_filter(APR_ARRAY_IDX(in, i, const fs_filter_t *),
                           APR_ARRAY_IDX(back, i, const fs_filter_t *));
    }
    /* the stored form is R5 filterBy, slashes unescaped */
    in = apr_array_make(pool, 2, sizeof(fs_filter_t *));
    ck_assert_int_eq(fs_filter_parse_query(in, pool, "Observation?date=gt2024&status:not=final",
                                           NULL, &err), APR_SUCCESS);
    ck_assert_str_eq(fs_filters_to_json(pool, in),
                     "[{\"resourceType\":\"Observation\",\"filterParameter\":\"date\","
                     "\"comparator\":\"gt\",\"value\":\"2024\"},{\"resourceType\":\"Observation\","
                     "\"filterParameter\":\"status\",\"modifier\":\"not\",\"value\":\"final\"}]");
    ck_assert_str_eq(fs_filters_to_json(pool, NULL), "[]");
    back = apr_array_make(pool, 2, sizeof(fs_filter_t *));
    ck_assert_int_eq(fs_filters_from_json(back, pool, "[]", &err), APR_SUCCESS);
    ck_assert_int_eq(back->nelts, 0);
}
END_TEST

START_TEST(json_rejects)
{
    apr_array_header_t *out = apr_array_make(pool, 2, sizeof(fs_filter_t *));
    const char *err = NULL;
    ck_assert_int_ne(fs_filters_from_json(out, pool, "not json", &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "stored filters: invalid JSON"));
    ck_assert_int_ne(fs_filters_from_json(out, pool, "{}", &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "a JSON array was expected"));
    ck_assert_int_ne(fs_filters_from_json(out, pool, "[{\"resourceType\":\"Encounter\","
                     "\"filterParameter\":\"status\",\"value\":\"a\"},{\"resourceType\":"
                     "\"Encounter\",\"filterParameter\":\"foo\",\"value\":\"x\"}]", &err),
                     APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "stored filter [1]: search parameter 'foo'"));
    ck_assert_int_ne(fs_filters_from_json(out, pool, "[{\"filterParameter\":\"status\","
                     "\"value\":\"a\"}]", &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(strstr(err, "resourceType is missing"));
}
END_TEST

START_TEST(to_criteria)
{
    const char *const *c;
    ck_assert_str_eq(fs_filter_to_criteria(pool, parse_one("patient=Patient/123", "Encounter")),
                     "Encounter?patient=Patient/123");
    ck_assert_str_eq(fs_filter_to_criteria(pool, parse_one("Encounter.status:not=finished",
                                                           NULL)),
                     "Encounter?status:not=finished");
    ck_assert_str_eq(fs_filter_to_criteria(pool, parse_one("Observation?date=ge2024,ge2025",
                                                           NULL)),
                     "Observation?date=ge2024,ge2025");
    ck_assert_str_eq(fs_filter_to_criteria(pool, parse_one("Observation?date=eq2024", NULL)),
                     "Observation?date=2024");
    ck_assert_str_eq(fs_filter_to_criteria(pool, parse_one("Patient?name=a%20b%26c,d\\,e",
                                                           NULL)),
                     "Patient?name=a%20b%26c,d\\,e");
    /* every form reads back into the same filter */
    for (c = ROUNDTRIP; *c; ++c) {
        const fs_filter_t *f = parse_one(*c, NULL);
        assert_same_filter(f, parse_one(fs_filter_to_criteria(pool, f), NULL));
    }
}
END_TEST

/* ---- the table ----------------------------------------------------------------------- */

START_TEST(sp_lookup)
{
    const fs_sp_t *sp = fs_sp_find("Observation", "code");
    ck_assert_ptr_nonnull(sp);
    ck_assert_int_eq(sp->type, FS_SP_TOKEN);
    ck_assert_str_eq(sp->paths[0].path, "code");
    ck_assert_int_eq(sp->paths[0].elem, FS_SP_EL_CODEABLE_CONCEPT);
    ck_assert_ptr_null(sp->paths[1].path);

    sp = fs_sp_find("Observation", "date");
    ck_assert_int_eq(sp->type, FS_SP_DATE);
    ck_assert_str_eq(sp->paths[0].path, "effectiveDateTime");
    ck_assert_str_eq(sp->paths[1].path, "effectivePeriod");
    ck_assert_int_eq(sp->paths[1].elem, FS_SP_EL_PERIOD);
    ck_assert_str_eq(sp->paths[2].path, "effectiveInstant");

    sp = fs_sp_find("Observation", "patient");
    ck_assert_str_eq(sp->paths[0].path, "subject");
    ck_assert_str_eq(sp->target, "Patient");
    ck_assert_ptr_null(fs_sp_find("Observation", "subject")->target);
    ck_assert_int_eq(fs_sp_find("Encounter", "class")->paths[0].elem, FS_SP_EL_CODING);
    ck_assert_str_eq(fs_sp_find("Encounter", "date")->paths[0].path, "period");
    ck_assert_int_eq(fs_sp_find("Encounter", "status")->paths[0].elem, FS_SP_EL_CODE);
    ck_assert_str_eq(fs_sp_find("Task", "patient")->paths[0].path, "for");
    ck_assert_int_eq(fs_sp_find("Patient", "active")->paths[0].elem, FS_SP_EL_BOOLEAN);

    ck_assert_ptr_null(fs_sp_find("Observation", "nope"));
    ck_assert_ptr_null(fs_sp_find("Practitioner", "_id"));
    ck_assert_ptr_null(fs_sp_find("Resource", "_id"));
    ck_assert_ptr_null(fs_sp_find(NULL, "_id"));

    ck_assert(fs_sp_resource_known("Encounter"));
    ck_assert(!fs_sp_resource_known("encounter"));
    ck_assert(!fs_sp_resource_known("Foo"));
    ck_assert(!fs_sp_resource_known("Resource"));
    ck_assert(!fs_sp_resource_known(""));
    ck_assert(!fs_sp_resource_known(NULL));
    ck_assert(fs_sp_type_name_ok("Practitioner"));
    ck_assert(!fs_sp_type_name_ok("P"));
    ck_assert(!fs_sp_type_name_ok("Patient1"));
    ck_assert(!fs_sp_type_name_ok("Pa-tient"));
    ck_assert_str_eq(fs_sp_type_from_canonical("http://hl7.org/fhir/StructureDefinition/Encounter"),
                     "Encounter");
    ck_assert_str_eq(fs_sp_type_from_canonical("Encounter"), "Encounter");

    ck_assert(fs_sp_modifier_ok(fs_sp_find("Observation", "subject"), "Group"));
    ck_assert(!fs_sp_modifier_ok(fs_sp_find("Observation", "patient"), "Group"));
    ck_assert(fs_sp_comparator_ok(fs_sp_find("Observation", "date"), "sa"));
    ck_assert(!fs_sp_comparator_ok(fs_sp_find("Observation", "code"), "eq"));
    ck_assert_ptr_nonnull(strstr(fs_sp_names(pool, "Encounter"), "status, subject, type, _id"));
    ck_assert_ptr_nonnull(strstr(fs_sp_resource_types(pool), "Encounter, Immunization"));
}
END_TEST

static int elem_fits(fs_sp_type_t t, fs_sp_elem_t e)
{
    switch (t) {
    case FS_SP_TOKEN:
        return e == FS_SP_EL_CODE || e == FS_SP_EL_BOOLEAN || e == FS_SP_EL_CODING
               || e == FS_SP_EL_CODEABLE_CONCEPT || e == FS_SP_EL_IDENTIFIER;
    case FS_SP_REFERENCE: return e == FS_SP_EL_REFERENCE;
    case FS_SP_STRING: return e == FS_SP_EL_STRING || e == FS_SP_EL_HUMAN_NAME;
    case FS_SP_DATE: return e == FS_SP_EL_DATE || e == FS_SP_EL_PERIOD;
    case FS_SP_URI: return e == FS_SP_EL_URI;
    }
    return 0;
}

START_TEST(sp_table_sane)
{
    apr_size_t n, i, j;
    const fs_sp_t *t = fs_sp_table(&n);
    ck_assert_int_gt(n, 100);
    for (i = 0; i < n; ++i) {
        int k;
        ck_assert_msg(fs_sp_type_name_ok(t[i].resource_type), "%s", t[i].resource_type);
        ck_assert_ptr_nonnull(t[i].paths[0].path);
        for (k = 0; k < FS_SP_MAX_PATHS && t[i].paths[k].path; ++k) {
            ck_assert_msg(elem_fits(t[i].type, t[i].paths[k].elem), "%s.%s path %d",
                          t[i].resource_type, t[i].name, k);
        }
        ck_assert_msg(!t[i].target || (t[i].type == FS_SP_REFERENCE
                                       && fs_sp_type_name_ok(t[i].target)),
                      "%s.%s target", t[i].resource_type, t[i].name);
        /* names are unique per type and table order groups types (fs_sp_resource_types) */
        for (j = i + 1; j < n; ++j) {
            ck_assert_msg(strcmp(t[i].resource_type, t[j].resource_type)
                          || strcmp(t[i].name, t[j].name), "%s.%s twice",
                          t[i].resource_type, t[i].name);
            if (j > i + 1 && !strcmp(t[i].resource_type, t[j].resource_type)) {
                ck_assert_msg(!strcmp(t[j - 1].resource_type, t[i].resource_type),
                              "%s entries are not grouped", t[i].resource_type);
            }
        }
        if (strcmp(t[i].resource_type, FS_SP_ANY_TYPE)) {
            ck_assert_ptr_eq(fs_sp_find(t[i].resource_type, t[i].name), &t[i]);
            ck_assert_ptr_nonnull(fs_sp_find(t[i].resource_type, "_id"));
            ck_assert_ptr_nonnull(fs_sp_find(t[i].resource_type, "_lastUpdated"));
        }
    }
}
END_TEST

/* ---- docs/SEARCH-PARAMETERS.md stays in sync with the table ------------------------- */

static const char *doc_row(apr_pool_t *p, const fs_sp_t *sp)
{
    const char *paths = "";
    int k;
    for (k = 0; k < FS_SP_MAX_PATHS && sp->paths[k].path; ++k) {
        paths = apr_psprintf(p, "%s%s`%s` (%s)", paths, k ? ", " : "", sp->paths[k].path,
                             fs_sp_elem_str(sp->paths[k].elem));
    }
    return apr_psprintf(p, "| %s | `%s` | %s | %s | %s |",
                        strcmp(sp->resource_type, FS_SP_ANY_TYPE) ? sp->resource_type
                                                                  : "*every type*",
                        sp->name, fs_sp_type_str(sp->type), paths,
                        sp->target ? sp->target : "");
}

/* FHIRSUB_DOCS_DIR, DOCS_DIR, else next to the topics (conf/topics/../../docs), which the
 * build already points the tests at. */
static const char *docs_dir(void)
{
    if (getenv("FHIRSUB_DOCS_DIR")) return getenv("FHIRSUB_DOCS_DIR");
#ifdef DOCS_DIR
    return DOCS_DIR;
#else
    if (getenv("FHIRSUB_TOPICS_DIR")) {
        return apr_pstrcat(pool, getenv("FHIRSUB_TOPICS_DIR"), "/../../docs", NULL);
    }
#ifdef TOPICS_DIR
    return TOPICS_DIR "/../../docs";
#else
    return "../../docs";
#endif
#endif
}

static const char *read_doc(void)
{
    const char *dir = docs_dir();
    const char *path = apr_pstrcat(pool, dir, "/SEARCH-PARAMETERS.md", NULL);
    apr_file_t *fd;
    apr_finfo_t fi;
    apr_size_t len;
    char *text;
    ck_assert_msg(apr_file_open(&fd, path, APR_FOPEN_READ, 0, pool) == APR_SUCCESS,
                  "cannot open %s (set FHIRSUB_DOCS_DIR)", path);
    ck_assert_int_eq(apr_file_info_get(&fi, APR_FINFO_SIZE, fd), APR_SUCCESS);
    text = apr_palloc(pool, (apr_size_t)fi.size + 1);
    ck_assert_int_eq(apr_file_read_full(fd, text, (apr_size_t)fi.size, &len), APR_SUCCESS);
    text[len] = '\0';
    apr_file_close(fd);
    return text;
}

START_TEST(doc_in_sync)
{
    const char *doc = read_doc(), *begin, *end, *s;
    apr_size_t n, i;
    const fs_sp_t *t = fs_sp_table(&n);
    apr_size_t rows = 0;

    begin = strstr(doc, "<!-- sp-table:begin -->");
    end = strstr(doc, "<!-- sp-table:end -->");
    ck_assert_msg(begin && end && begin < end, "doc lacks the sp-table markers");
    for (i = 0; i < n; ++i) {
        const char *row = apr_pstrcat(pool, "\n", doc_row(pool, &t[i]), "\n", NULL);
        s = strstr(begin, row);
        ck_assert_msg(s && s < end, "docs/SEARCH-PARAMETERS.md lacks the row%s(regenerate "
                      "with FHIRSUB_PRINT_SP_DOC=1)", row);
    }
    /* and has no stale rows: one row per entry between the markers */
    for (s = begin; (s = strstr(s, "\n| ")) && s < end; ++s) ++rows;
    ck_assert_int_eq(rows, n + 1); /* + the header */
}
END_TEST

static void print_doc_rows(void)
{
    apr_pool_t *p;
    apr_size_t n, i;
    const fs_sp_t *t = fs_sp_table(&n);
    apr_pool_create(&p, NULL);
    printf("| Resource | Parameter | Type | Element paths (FHIR type) | Target |\n");
    printf("|---|---|---|---|---|\n");
    for (i = 0; i < n; ++i) printf("%s\n", doc_row(p, &t[i]));
    apr_pool_destroy(p);
}

/* ---- runner -------------------------------------------------------------------------- */

static Suite *filter_suite(void)
{
    Suite *s = suite_create("fs_filter");
    TCase *tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, query_with_type);
    tcase_add_test(tc, query_default_type);
    tcase_add_test(tc, query_dotted);
    tcase_add_test(tc, query_and);
    tcase_add_test(tc, classic_criteria);
    tcase_add_test(tc, percent_decoding);
    tcase_add_test(tc, or_values);
    tcase_add_test(tc, modifiers);
    tcase_add_test(tc, date_comparators);
    tcase_add_test(tc, reject_types_and_params);
    tcase_add_test(tc, reject_result_params);
    tcase_add_test(tc, reject_malformed);
    tcase_add_test(tc, references);
    suite_add_tcase(s, tc);

    tc = tcase_create("r5_and_storage");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, r5_filter_by);
    tcase_add_test(tc, r5_filter_by_rejects);
    tcase_add_test(tc, json_roundtrip);
    tcase_add_test(tc, json_rejects);
    tcase_add_test(tc, to_criteria);
    suite_add_tcase(s, tc);

    tc = tcase_create("searchparam");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, sp_lookup);
    tcase_add_test(tc, sp_table_sane);
    tcase_add_test(tc, doc_in_sync);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    apr_initialize();
    atexit(apr_terminate);
    if (getenv("FHIRSUB_PRINT_SP_DOC")) {
        print_doc_rows();
        return EXIT_SUCCESS;
    }
    sr = srunner_create(filter_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
