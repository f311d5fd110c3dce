/* Unit tests: fs_match (filters against resources, topic triggers, subscriptions).
 *
 * Resource JSON is written with single quotes and turned into JSON by J().
 * FHIRSUB_TOPICS_DIR (or -DTOPICS_DIR=...) locates the shipped conf/topics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <check.h>

#include "fs_check.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_filter.h"
#include "../../src/core/fs_topic.h"
#include "../../src/core/fs_sub.h"
#include "../../src/core/fs_match.h"
#include "../../src/core/fs_filter_cache.h"
#include "../../src/core/fs_subkey.h"

#ifndef TOPICS_DIR
#define TOPICS_DIR "../../conf/topics"
#endif

#define ENC_END \
    "http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4-encounter-complete"
#define EX_URL "http://example.org/fhir/SubscriptionTopic/"

/* ---- helpers ----------------------------------------------------------------------- */

/* JSON from text written with single quotes. */
static json_object *J(const char *text)
{
    char *s = apr_pstrdup(pool, text), *c;
    json_object *j = NULL;
    const char *err = NULL;
    for (c = s; *c; ++c) {
        if (*c == '\'') *c = '"';
    }
    ck_assert_msg(fs_json_parse(&j, pool, s, strlen(s), &err) == APR_SUCCESS,
                  "test JSON rejected: %s\n%s", err, s);
    return j;
}

static apr_array_header_t *F(const char *query)
{
    apr_array_header_t *out = apr_array_make(pool, 2, sizeof(fs_filter_t *));
    const char *err = NULL;
    ck_assert_msg(fs_filter_parse_query(out, pool, query, NULL, &err) == APR_SUCCESS,
                  "filter '%s' rejected: %s", query, err);
    ck_assert_int_gt(out->nelts, 0);
    return out;
}

/* What the subscription index relies on (fs_subkey.h): a filter with keys matches only
 * a resource that holds one of them. Checked on every match these tests make. */
static void check_findable(const apr_array_header_t *filters, json_object *res,
                           const char *query)
{
    fs_subkey_set_t *held = fs_subkey_set_make(pool);
    int i, j, found;

    fs_subkey_set_add(held, res);
    for (i = 0; i < filters->nelts; ++i) {
        apr_array_header_t *one = apr_array_make(pool, 1, sizeof(fs_filter_t *));
        apr_array_header_t *keys;
        APR_ARRAY_PUSH(one, fs_filter_t *) = APR_ARRAY_IDX(filters, i, fs_filter_t *);
        if (!(keys = fs_subkey_of_filters(pool, one))) continue;
        for (found = 0, j = 0; j < keys->nelts && !found; ++j) {
            found = fs_subkey_set_has(held, APR_ARRAY_IDX(keys, j, const char *));
        }
        ck_assert_msg(found, "%s matches, but the resource holds none of its keys (%s...)",
                      query, APR_ARRAY_IDX(keys, 0, const char *));
    }
}

static int M(const char *query, const char *resource)
{
    apr_array_header_t *filters = F(query);
    json_object *res = J(resource);
    int matched = fs_match_filters(filters, res);
    if (matched) check_findable(filters, res, query);
    return matched;
}

#define YES(q, r) ck_assert_msg(M(q, r), "expected a match: %s on %s", q, r)
#define NO(q, r) ck_assert_msg(!M(q, r), "expected no match: %s on %s", q, r)

static const char *topics_dir(void)
{
    const char *dir = getenv("FHIRSUB_TOPICS_DIR");
    return dir ? dir : TOPICS_DIR;
}

static const fs_topic_t *shipped(const char *name)
{
    fs_topic_t *t = NULL;
    const char *err = NULL;
    const char *path = apr_pstrcat(pool, topics_dir(), "/", name, NULL);
    ck_assert_msg(fs_topic_load_file(&t, pool, path, &err) == APR_SUCCESS,
                  "%s: %s (set FHIRSUB_TOPICS_DIR)", path, err);
    return t;
}

/* A topic with one Encounter trigger made of the given members. */
static const fs_topic_t *enc_topic(const char *trigger_members)
{
    const char *json = apr_pstrcat(pool, "{'resourceType':'SubscriptionTopic','url':'"
                                   EX_URL "t','status':'active','resourceTrigger':[{"
                                   "'resource':'Encounter',", trigger_members, "}]}", NULL);
    fs_topic_t *t = NULL;
    const char *err = NULL;
    json_object *j = J(json);
    ck_assert_msg(fs_topic_from_json(&t, pool, j, "test.json", &err) == APR_SUCCESS,
                  "topic rejected: %s\n%s", err, json);
    return t;
}

static const char *enc(const char *status)
{
    return apr_psprintf(pool, "{'resourceType':'Encounter','id':'e1','status':'%s',"
                        "'subject':{'reference':'Patient/1'}}", status);
}

static fs_match_change_t change(const char *type, fs_interaction_t interaction,
                                const char *previous, const char *current)
{
    fs_match_change_t c;
    c.resource_type = type;
    c.id = "e1";
    c.interaction = interaction;
    c.previous = previous ? J(previous) : NULL;
    c.current = current ? J(current) : NULL;
    return c;
}

static int fires(const fs_topic_t *t, fs_interaction_t interaction, const char *previous,
                 const char *current)
{
    fs_match_change_t c = change("Encounter", interaction, previous, current);
    return fs_match_topic(t, &c);
}

#define CREATE FS_INTERACTION_CREATE
#define UPDATE FS_INTERACTION_UPDATE
#define DELETE FS_INTERACTION_DELETE

/* ---- token ------------------------------------------------------------------------- */

START_TEST(token_code)
{
    const char *fin = enc("finished"), *inp = enc("in-progress");
    const char *none = "{'resourceType':'Encounter','id':'e1'}";

    YES("Encounter?status=finished", fin);
    NO("Encounter?status=finished", inp);
    NO("Encounter?status=finished", none);
    NO("Encounter?status=Finished", fin);                  /* codes are case-sensitive */
    NO("Encounter?status=finishe", fin);                   /* whole codes, no prefix */
    YES("Encounter?status=planned,finished", fin);         /* OR */
    NO("Encounter?status=planned,cancelled", fin);
    YES("Encounter?status=|finished", fin);                /* a code has no system */
    NO("Encounter?status=http://hl7.org/fhir/encounter-status|finished", fin);
    /* :not matches when no value matches, including an absent element */
    NO("Encounter?status:not=finished", fin);
    YES("Encounter?status:not=finished", inp);
    YES("Encounter?status:not=finished", none);
    NO("Encounter?status:not=planned,finished", fin);
    YES("Encounter?status:not=planned,cancelled", fin);
    /* :missing */
    YES("Encounter?status:missing=true", none);
    NO("Encounter?status:missing=true", fin);
    YES("Encounter?status:missing=false", fin);
    NO("Encounter?status:missing=false", none);
    NO("Encounter?status:missing=false",
       "{'resourceType':'Encounter','status':null}");
}
END_TEST

START_TEST(token_codeable_concept)
{
    const char *obs = "{'resourceType':'Observation','code':{'coding':["
                      "{'system':'http://snomed.info/sct','code':'777'},"
                      "{'system':'http://loinc.org','code':'1234-5'}],'text':'Glucose'}}";
    const char *nosys = "{'resourceType':'Observation','code':{'coding':[{'code':'1234-5'}]}}";

    YES("Observation?code=http://loinc.org|1234-5", obs);  /* second coding */
    YES("Observation?code=1234-5", obs);
    YES("Observation?code=http://loinc.org|", obs);
    YES("Observation?code=http://snomed.info/sct|777", obs);
    NO("Observation?code=http://snomed.info/sct|1234-5", obs);  /* same coding needed */
    NO("Observation?code=http://loinc.org|9999-9", obs);
    NO("Observation?code=|1234-5", obs);                   /* no-system requested */
    YES("Observation?code=|1234-5", nosys);
    NO("Observation?code=http://loinc.org|1234-5", nosys);
    NO("Observation?code=Glucose", obs);                   /* text is not a code */
    YES("Observation?code=9,http://loinc.org|1234-5", obs);
    YES("Observation?code:not=http://loinc.org|9", obs);
    NO("Observation?code:not=http://loinc.org|1234-5", obs);
    /* arrays of CodeableConcept (category) and a path through an array (component.code) */
    YES("Observation?category=vital-signs", "{'resourceType':'Observation','category':["
        "{'coding':[{'code':'laboratory'}]},{'coding':[{'code':'vital-signs'}]}]}");
    YES("Observation?combo-code=8480-6", "{'resourceType':'Observation','code':{'coding':"
        "[{'code':'85354-9'}]},'component':[{'code':{'coding':[{'code':'8462-4'}]}},"
        "{'code':{'coding':[{'code':'8480-6'}]}}]}");
    NO("Observation?component-code=85354-9", "{'resourceType':'Observation','code':{"
       "'coding':[{'code':'85354-9'}]},'component':[{'code':{'coding':[{'code':'1'}]}}]}");
}
END_TEST

START_TEST(token_coding_r4_r5)
{
    const char *r4 = "{'resourceType':'Encounter','class':{'system':"
                     "'http://terminology.hl7.org/CodeSystem/v3-ActCode','code':'AMB'}}";
    const char *r5 = "{'resourceType':'Encounter','class':[{'coding':[{'system':"
                     "'http://terminology.hl7.org/CodeSystem/v3-ActCode','code':'AMB'}]}]}";

    YES("Encounter?class=AMB", r4);
    YES("Encounter?class=AMB", r5);
    YES("Encounter?class=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB", r4);
    YES("Encounter?class=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB", r5);
    NO("Encounter?class=IMP", r4);
    NO("Encounter?class=IMP", r5);
    NO("Encounter?class=http://other|AMB", r5);
}
END_TEST

START_TEST(token_identifier_boolean_id)
{
    const char *pat = "{'resourceType':'Patient','id':'123','active':true,'identifier':["
                      "{'system':'urn:oid:1.2','value':'A-1'},"
                      "{'system':'urn:x','value':'a|b,c$d'}]}";

    YES("Patient?identifier=urn:oid:1.2|A-1", pat);
    YES("Patient?identifier=A-1", pat);
    NO("Patient?identifier=urn:oid:9|A-1", pat);
    NO("Patient?identifier=a-1", pat);
    /* escapes: \| \, \$ are literal characters of the value */
    YES("Patient?identifier=urn:x|a\\|b\\,c\\$d", pat);
    NO("Patient?identifier=urn:x|a\\|b", pat);
    YES("Patient?active=true", pat);
    NO("Patient?active=false", pat);
    YES("Patient?active=false", "{'resourceType':'Patient','active':false}");
    NO("Patient?active=true", "{'resourceType':'Patient'}");
    NO("Patient?active=true", "{'resourceType':'Patient','active':'true'}");
    YES("Patient?active:missing=true", "{'resourceType':'Patient'}");
    YES("Patient?_id=123", pat);
    NO("Patient?_id=12", pat);
    NO("Patient?_id=1234", pat);
    YES("Patient?_id=9,123", pat);
    YES("Patient?gender=female", "{'resourceType':'Patient','gender':'female'}");
}
END_TEST

/* ---- reference --------------------------------------------------------------------- */

START_TEST(reference_forms)
{
    const char *rel = "{'resourceType':'Observation','subject':{'reference':'Patient/1'}}";
    const char *abs = "{'resourceType':'Observation','subject':{'reference':"
                      "'https://fhir.example.org/r4/Patient/1/_history/3'}}";
    const char *grp = "{'resourceType':'Observation','subject':{'reference':'Group/1'}}";

    YES("Observation?subject=Patient/1", rel);
    YES("Observation?subject=Patient/1", abs);             /* base URL and _history ignored */
    YES("Observation?subject=http://other.example/fhir/Patient/1", rel);
    YES("Observation?subject=http://other.example/fhir/Patient/1/_history/9", abs);
    YES("Observation?subject=1", rel);                     /* bare id: any type */
    YES("Observation?subject=1", grp);
    NO("Observation?subject=Patient/12", rel);
    NO("Observation?subject=Patient/1", grp);
    NO("Observation?subject=Group/1", rel);
    YES("Observation?subject:Patient=1", rel);
    NO("Observation?subject:Patient=1", grp);
    YES("Observation?subject:Group=1", grp);
    YES("Observation?patient=1", rel);                     /* patient targets Patient */
    NO("Observation?patient=1", grp);
    YES("Observation?patient=Patient/1", abs);
    YES("Observation?subject=Patient/2,Patient/1", rel);   /* OR */
    NO("Observation?subject=Patient/1",
       "{'resourceType':'Observation','subject':{'reference':'#p1'}}");
    NO("Observation?subject=Patient/1",
       "{'resourceType':'Observation','subject':{'display':'Patient 1'}}");
    NO("Observation?subject=1",
       "{'resourceType':'Observation','subject':{'reference':'urn:uuid:1'}}");
    NO("Observation?subject=1",
       "{'resourceType':'Observation','subject':{'reference':'http://example.org/1'}}");
    YES("Observation?subject:missing=true", "{'resourceType':'Observation'}");
    NO("Observation?subject:missing=true", rel);
    YES("Observation?subject:missing=false", rel);
}
END_TEST

START_TEST(reference_arrays_and_alternative_paths)
{
    const char *r4 = "{'resourceType':'Encounter','participant':["
                     "{'individual':{'reference':'Practitioner/a'}},"
                     "{'individual':{'reference':'RelatedPerson/b'}}]}";
    const char *r5 = "{'resourceType':'Encounter','participant':["
                     "{'actor':{'reference':'Practitioner/c'}}]}";

    YES("Encounter?participant=RelatedPerson/b", r4);
    YES("Encounter?practitioner=a", r4);
    NO("Encounter?practitioner=b", r4);                    /* b is a RelatedPerson */
    YES("Encounter?practitioner=Practitioner/c", r5);
    NO("Encounter?practitioner=Practitioner/a", r5);
    YES("Encounter?location=Location/l1", "{'resourceType':'Encounter','location':["
        "{'location':{'reference':'Location/l0'}},{'location':{'reference':'Location/l1'}}]}");
}
END_TEST

/* ---- string ------------------------------------------------------------------------ */

START_TEST(string_modes)
{
    const char *pat = "{'resourceType':'Patient','name':[{'family':'Smith','given':"
                      "['John','Ronald'],'prefix':['Dr.']},{'text':'Johnny B. Goode'}],"
                      "'address':[{'city':'Paris'},{'city':'Saint-\u00c9tienne'}]}";

    YES("Patient?family=smi", pat);                        /* starts with, any case */
    YES("Patient?family=SMITH", pat);
    NO("Patient?family=mith", pat);
    NO("Patient?family=smithy", pat);
    YES("Patient?family:contains=MIT", pat);
    NO("Patient?family:contains=mitt", pat);
    YES("Patient?family:exact=Smith", pat);
    NO("Patient?family:exact=smith", pat);
    NO("Patient?family:exact=Smit", pat);
    YES("Patient?given=ron", pat);                         /* second given name */
    NO("Patient?given=smith", pat);
    YES("Patient?name=dr", pat);                           /* HumanName: prefix */
    YES("Patient?name=johnny b", pat);                     /* HumanName: text */
    YES("Patient?name=ronald", pat);
    YES("Patient?name:contains=goode", pat);
    NO("Patient?name=goode", pat);
    YES("Patient?address-city=saint-etienne", pat);        /* accents ignored */
    NO("Patient?address-city:exact=Saint-Etienne", pat);
    YES("Patient?address-city=lyon,paris", pat);
    NO("Patient?address-city=lyon", pat);
    YES("Patient?family:missing=true", "{'resourceType':'Patient','name':[{'text':'x'}]}");
}
END_TEST

START_TEST(string_accents)
{
    /* precomposed and decomposed (u + U+0308) spellings; search values both ways */
    const char *pre = "{'resourceType':'Patient','name':[{'family':'M\u00fcller'}]}";
    const char *dec = "{'resourceType':'Patient','name':[{'family':'Mu\u0308ller'}]}";
    const char *ext = "{'resourceType':'Patient','name':[{'family':'\u0141ukasz\u00f3w'}]}";

    YES("Patient?family=muller", pre);
    YES("Patient?family=muller", dec);
    YES("Patient?family=M%C3%9CLL", pre);                  /* "MÜLL", percent-encoded */
    YES("Patient?family=m\xc3\xbc", dec);
    YES("Patient?family=lukaszow", ext);
    NO("Patient?family=mueller", pre);
    YES("Patient?family:exact=M\xc3\xbcller", pre);
    NO("Patient?family:exact=Muller", pre);
    YES("Patient?family=%C3%A6", "{'resourceType':'Patient','name':[{'family':'\u00c6sir'}]}");
}
END_TEST

/* ---- date -------------------------------------------------------------------------- */

START_TEST(date_prefixes_on_a_day)
{
    const char *p = "{'resourceType':'Patient','birthDate':'1980-05-17'}";

    YES("Patient?birthdate=1980", p);                      /* the value's precision */
    YES("Patient?birthdate=1980-05", p);
    YES("Patient?birthdate=1980-05-17", p);
    YES("Patient?birthdate=eq1980-05-17", p);
    NO("Patient?birthdate=1980-05-18", p);
    NO("Patient?birthdate=1981", p);
    NO("Patient?birthdate=1980-05-17T10:00Z", p);          /* the day is not within it */
    YES("Patient?birthdate=ne1981", p);
    NO("Patient?birthdate=ne1980", p);
    YES("Patient?birthdate=gt1980-05-16", p);
    NO("Patient?birthdate=gt1980-05-17", p);
    NO("Patient?birthdate=gt1980", p);
    YES("Patient?birthdate=ge1980-05-17", p);
    YES("Patient?birthdate=ge1980", p);
    NO("Patient?birthdate=ge1980-05-18", p);
    YES("Patient?birthdate=lt1980-05-18", p);
    NO("Patient?birthdate=lt1980-05-17", p);
    YES("Patient?birthdate=le1980-05-17", p);
    NO("Patient?birthdate=le1980-05-16", p);
    YES("Patient?birthdate=sa1980-05-16", p);
    NO("Patient?birthdate=sa1980-05", p);
    YES("Patient?birthdate=eb1980-06", p);
    NO("Patient?birthdate=eb1980-05-17", p);
    YES("Patient?birthdate=eb1980-05-18", p);              /* ends where the value starts */
    YES("Patient?birthdate=1970,1980", p);                 /* OR */
    YES("Patient?birthdate=ge1980-01-01&birthdate=lt1981-01-01", p);   /* AND */
    NO("Patient?birthdate=ge1980-06-01&birthdate=lt1981-01-01", p);
    NO("Patient?birthdate=1980", "{'resourceType':'Patient'}");
    NO("Patient?birthdate=1980", "{'resourceType':'Patient','birthDate':'garbage'}");
    YES("Patient?birthdate:missing=true", "{'resourceType':'Patient'}");
    YES("Patient?birthdate:missing=false",
        "{'resourceType':'Patient','birthDate':'garbage'}");
}
END_TEST

START_TEST(date_times_and_zones)
{
    /* 10:30 at +02:00 is 08:30 UTC */
    const char *o = "{'resourceType':'Observation','effectiveDateTime':"
                    "'2026-06-15T10:30:00+02:00'}";
    const char *late = "{'resourceType':'Observation','effectiveDateTime':"
                       "'2026-06-01T01:00:00+02:00'}";
    const char *part = "{'resourceType':'Observation','effectiveDateTime':'2026-06'}";
    const char *inst = "{'resourceType':'Observation','effectiveInstant':"
                       "'2026-06-15T08:30:00.250Z'}";

    YES("Observation?date=2026-06", o);
    YES("Observation?date=2026-06-15", o);
    YES("Observation?date=2026-06-15T08:30:00Z", o);
    YES("Observation?date=2026-06-15T10:30:00%2B02:00", o);
    YES("Observation?date=2026-06-15T10:30:00+02:00", o);   /* '+' kept as is */
    YES("Observation?date=2026-06-15T08:30Z", o);           /* the minute */
    NO("Observation?date=2026-06-15T10:30:00Z", o);
    YES("Observation?date=gt2026-06-15T08:29Z", o);
    NO("Observation?date=gt2026-06-15T08:30Z", o);
    YES("Observation?date=lt2026-06-15T08:30:01Z", o);
    NO("Observation?date=lt2026-06-15T08:30:00Z", o);
    YES("Observation?date=2026-05-31", late);               /* days are UTC days */
    NO("Observation?date=2026-06-01", late);
    YES("Observation?date=2026-06-15T08:30:00Z", inst);     /* .250 is within the second */
    YES("Observation?date=2026-06-15T08:30:00.2Z", inst);   /* .2 covers .200-.299 */
    NO("Observation?date=2026-06-15T08:30:00.3Z", inst);
    YES("Observation?date=2026-06-15T08:30:00.25Z", inst);
    NO("Observation?date=2026-06-15T08:30:00.251Z", inst);
    YES("Observation?date=2026-06-15T08:30:00.123456789Z", "{'resourceType':'Observation',"
        "'effectiveInstant':'2026-06-15T08:30:00.123456Z'}");  /* microseconds at most */
    NO("Observation?date=gt2026-06-15T08:30:00Z", inst);
    YES("Observation?date=ge2026-06-15T08:30:00Z", inst);
    /* a partial resource value is a range too */
    YES("Observation?date=2026", part);
    NO("Observation?date=2026-06-15", part);
    YES("Observation?date=gt2026-06-15", part);
    YES("Observation?date=lt2026-06-15", part);
    NO("Observation?date=sa2026-06-15", part);
    YES("Observation?date=sa2026-05", part);
}
END_TEST

START_TEST(date_periods)
{
    const char *closed = "{'resourceType':'Encounter','period':{'start':'2026-06-01T08:00:00Z',"
                         "'end':'2026-06-01T09:00:00Z'}}";
    const char *open = "{'resourceType':'Encounter','period':{'start':'2026-06-01'}}";
    const char *r5 = "{'resourceType':'Encounter','actualPeriod':{'end':'2026-06-01'}}";

    YES("Encounter?date=2026-06-01", closed);
    YES("Encounter?date=2026-06", closed);
    NO("Encounter?date=2026-06-01T08:30Z", closed);        /* not fully within */
    YES("Encounter?date=ap2026-06-01T08:30Z", closed);
    YES("Encounter?date=ge2026-06-01", closed);
    NO("Encounter?date=gt2026-06-01", closed);
    YES("Encounter?date=gt2026-06-01T08:30Z", closed);     /* extends after */
    YES("Encounter?date=lt2026-06-01T08:30Z", closed);     /* starts before */
    NO("Encounter?date=lt2026-06-01T08:00Z", closed);
    YES("Encounter?date=sa2026-05-31", closed);
    NO("Encounter?date=sa2026-06-01T08:30Z", closed);
    YES("Encounter?date=eb2026-06-01T09:01Z", closed);
    NO("Encounter?date=eb2026-06-01T09:00Z", closed);      /* 09:00:00 is in that minute */
    /* an open end reaches forward without limit */
    NO("Encounter?date=2026-06-01", open);
    YES("Encounter?date=gt2030", open);
    YES("Encounter?date=ge2026-06-01", open);
    NO("Encounter?date=lt2026-06-01", open);
    YES("Encounter?date=lt2026-06-02", open);
    YES("Encounter?date=ne2026-06-01", open);
    /* R5 actualPeriod without a start */
    YES("Encounter?date=lt1900", r5);
    NO("Encounter?date=gt2026-06-01", r5);
    YES("Encounter?date=le2026-06-01", r5);
    NO("Encounter?date=2026", "{'resourceType':'Encounter','period':{}}");
    NO("Encounter?date=2026-06", "{'resourceType':'Encounter','period':{"
       "'start':'2026-06-02','end':'2026-06-01'}}");         /* inverted: ignored */
}
END_TEST

START_TEST(date_approximately_and_last_updated)
{
    /* ap widens the value by 10% of its distance from now (assumed 2020..2080) */
    YES("Patient?birthdate=ap2000-01-01", "{'resourceType':'Patient','birthDate':'2001-06-01'}");
    YES("Patient?birthdate=ap2000-01-01", "{'resourceType':'Patient','birthDate':'1998-06-01'}");
    NO("Patient?birthdate=ap2000-01-01", "{'resourceType':'Patient','birthDate':'2010-01-01'}");
    NO("Patient?birthdate=ap2000-01-01", "{'resourceType':'Patient','birthDate':'1990-01-01'}");
    YES("Patient?_lastUpdated=2026-06-01",
        "{'resourceType':'Patient','meta':{'lastUpdated':'2026-06-01T10:00:00.123Z'}}");
    YES("Patient?_lastUpdated=ge2026-06-01T10:00:00Z",
        "{'resourceType':'Patient','meta':{'lastUpdated':'2026-06-01T10:00:00.123Z'}}");
    NO("Patient?_lastUpdated=gt2026-06-01T10:00:00Z",
       "{'resourceType':'Patient','meta':{'lastUpdated':'2026-06-01T10:00:00.123Z'}}");
    NO("Patient?_lastUpdated=2026-06-01", "{'resourceType':'Patient'}");
}
END_TEST

/* ---- uri --------------------------------------------------------------------------- */

START_TEST(uri_modes)
{
    const char *p = "{'resourceType':'Patient','meta':{'profile':["
                    "'http://example.org/StructureDefinition/p|1.0','http://x.org/a/b']}}";

    YES("Patient?_profile=http://x.org/a/b", p);
    NO("Patient?_profile=http://x.org/a", p);
    NO("Patient?_profile=http://x.org/a/b/c", p);
    NO("Patient?_profile=HTTP://X.ORG/a/b", p);
    YES("Patient?_profile=http://example.org/StructureDefinition/p", p);   /* any version */
    YES("Patient?_profile=http://example.org/StructureDefinition/p|1.0", p);
    NO("Patient?_profile=http://example.org/StructureDefinition/p|2.0", p);
    NO("Patient?_profile=http://example.org/StructureDefinition/", p);
    YES("Patient?_profile:below=http://x.org/a", p);
    YES("Patient?_profile:below=http://x.org/", p);
    YES("Patient?_profile:below=http://x.org/a/b", p);
    NO("Patient?_profile:below=http://x.org/a/bc", p);
    NO("Patient?_profile:below=http://x.org/a/", "{'resourceType':'Patient','meta':{"
       "'profile':['http://x.org/ab']}}");
    YES("Patient?_profile:above=http://x.org/a/b/c/d", p);
    YES("Patient?_profile:above=http://x.org/a/b", p);
    NO("Patient?_profile:above=http://x.org/a/bc", p);
    NO("Patient?_profile:above=http://x.org/a", p);
    YES("Patient?_profile:missing=true", "{'resourceType':'Patient','meta':{'profile':[]}}");
    YES("Patient?_profile:missing=false", p);
}
END_TEST

/* ---- filters: type and AND --------------------------------------------------------- */

START_TEST(filters_type_and_and)
{
    const char *obs = "{'resourceType':'Observation','status':'final',"
                      "'subject':{'reference':'Patient/1'}}";
    apr_array_header_t *empty = apr_array_make(pool, 1, sizeof(fs_filter_t *));

    NO("Encounter?status=final", obs);                     /* another type */
    NO("Observation?status=final", "{'status':'final'}");  /* no resourceType */
    YES("Observation?status=final&subject=Patient/1", obs);
    NO("Observation?status=final&subject=Patient/2", obs);
    NO("Observation?status=amended&subject=Patient/1", obs);
    ck_assert_int_eq(fs_match_filters(empty, J(obs)), 1);
    ck_assert_int_eq(fs_match_filters(NULL, J(obs)), 1);
    ck_assert_int_eq(fs_match_filter(APR_ARRAY_IDX(F("Observation?status=final"), 0,
                                                   fs_filter_t *), NULL), 0);
    ck_assert_int_eq(fs_match_filter(APR_ARRAY_IDX(F("Observation?status=final"), 0,
                                                   fs_filter_t *), J("[1]")), 0);
}
END_TEST

START_TEST(filters_from_r5_and_storage)
{
    /* R5 filterBy with an explicit comparator and a modifier, and the stored form */
    const char *obs = "{'resourceType':'Observation','effectiveDateTime':'2026-06-15',"
                      "'subject':{'reference':'Patient/7'}}";
    apr_array_header_t *fl = apr_array_make(pool, 2, sizeof(fs_filter_t *)), *back;
    fs_filter_t *f;
    const char *err = NULL;

    ck_assert_int_eq(fs_filter_from_r5(&f, pool, J("{'resourceType':'Observation',"
                     "'filterParameter':'date','comparator':'ge','value':'2026-06'}"),
                     NULL, &err), APR_SUCCESS);
    APR_ARRAY_PUSH(fl, fs_filter_t *) = f;
    ck_assert_int_eq(fs_filter_from_r5(&f, pool, J("{'resourceType':'Observation',"
                     "'filterParameter':'subject','modifier':'Patient','value':'7'}"),
                     NULL, &err), APR_SUCCESS);
    APR_ARRAY_PUSH(fl, fs_filter_t *) = f;
    ck_assert_int_eq(fs_match_filters(fl, J(obs)), 1);
    back = apr_array_make(pool, 2, sizeof(fs_filter_t *));
    ck_assert_int_eq(fs_filters_from_json(back, pool, fs_filters_to_json(pool, fl), &err),
                     APR_SUCCESS);
    ck_assert_int_eq(fs_match_filters(back, J(obs)), 1);
    ck_assert_int_eq(fs_match_filters(back, J("{'resourceType':'Observation',"
                     "'effectiveDateTime':'2026-05-31','subject':{'reference':'Patient/7'}}")),
                     0);
}
END_TEST

/* ---- index keys (fs_subkey) --------------------------------------------------------- */

/* The keys of a query's filters, joined in sorted order; "-" when it has none. */
static const char *keys_of(const char *query)
{
    apr_array_header_t *keys = fs_subkey_of_filters(pool, F(query));
    int i, j;
    if (!keys) return "-";
    for (i = 1; i < keys->nelts; ++i) {          /* insertion sort: a handful of keys */
        for (j = i; j > 0 && strcmp(APR_ARRAY_IDX(keys, j - 1, const char *),
                                    APR_ARRAY_IDX(keys, j, const char *)) > 0; --j) {
            const char *t = APR_ARRAY_IDX(keys, j, const char *);
            APR_ARRAY_IDX(keys, j, const char *) = APR_ARRAY_IDX(keys, j - 1, const char *);
            APR_ARRAY_IDX(keys, j - 1, const char *) = t;
        }
    }
    return apr_array_pstrcat(pool, keys, ' ');
}

START_TEST(keys_of_filters)
{
    char long_value[FS_SUBKEY_MAX_LEN + 2];

    ck_assert_str_eq(keys_of("Patient?identifier=urn:oid:1.2|A-1"), "Patient.identifier=A-1");
    ck_assert_str_eq(keys_of("Observation?code=9,http://loinc.org|1234-5"),
                     "Observation.code=1234-5 Observation.code=9");
    ck_assert_str_eq(keys_of("Encounter?status=|finished"), "Encounter.status=finished");
    ck_assert_str_eq(keys_of("Patient?active=true"), "Patient.active=true");
    ck_assert_str_eq(keys_of("Patient?_id=123"), "Patient._id=123");
    ck_assert_str_eq(keys_of("Observation?subject=http://x.example/fhir/Patient/1/_history/9"),
                     "Observation.subject=1");
    ck_assert_str_eq(keys_of("Observation?subject:Patient=1"), "Observation.subject=1");
    ck_assert_str_eq(keys_of("Encounter?patient=Patient/p7,p8"),
                     "Encounter.patient=p7 Encounter.patient=p8");
    /* the first filter with keys keys the subscription */
    ck_assert_str_eq(keys_of("Patient?name=Smith&identifier=A-1&_id=5"),
                     "Patient.identifier=A-1");
    /* no key: any code, modifiers, escapes, other parameter types, too long */
    ck_assert_str_eq(keys_of("Observation?code=http://loinc.org|"), "-");
    ck_assert_str_eq(keys_of("Observation?code=1,http://loinc.org|"), "-");
    ck_assert_str_eq(keys_of("Observation?code:not=1"), "-");
    ck_assert_str_eq(keys_of("Patient?active:missing=true"), "-");
    ck_assert_str_eq(keys_of("Observation?subject:missing=true"), "-");
    ck_assert_str_eq(keys_of("Patient?identifier=urn:x|a\\|b"), "-");
    ck_assert_str_eq(keys_of("Patient?name=Smith"), "-");
    ck_assert_str_eq(keys_of("Observation?date=ge2024-01-01"), "-");
    memset(long_value, 'v', sizeof(long_value) - 1);
    long_value[sizeof(long_value) - 1] = '\0';
    ck_assert_str_eq(keys_of(apr_pstrcat(pool, "Patient?identifier=", long_value, NULL)), "-");
    ck_assert_str_eq(keys_of(apr_pstrcat(pool, "Patient?identifier=a,", long_value, NULL)),
                     "-");
}
END_TEST

START_TEST(keys_of_resources)
{
    fs_subkey_set_t *set = fs_subkey_set_make(pool);
    json_object *arr = NULL;
    const char *err = NULL, *json;
    int i;

    ck_assert_int_eq(fs_subkey_set_add(set, J(
        "{'resourceType':'Observation','id':'o1','status':'final','code':{'coding':["
        "{'system':'http://loinc.org','code':'1234-5'}]},'subject':{'reference':"
        "'https://x.example/Patient/p1/_history/2'},'performer':[{'display':'nobody'}]}")),
        APR_SUCCESS);
    ck_assert(fs_subkey_set_has(set, "Observation.code=1234-5"));
    ck_assert(fs_subkey_set_has(set, "Observation.status=final"));
    ck_assert(fs_subkey_set_has(set, "Observation._id=o1"));
    ck_assert(fs_subkey_set_has(set, "Observation.subject=p1"));
    ck_assert(fs_subkey_set_has(set, "Observation.patient=p1"));
    ck_assert(!fs_subkey_set_has(set, "Observation.code=http://loinc.org|1234-5"));
    ck_assert(!fs_subkey_set_has(set, "Patient._id=o1"));
    /* the JSON the candidate query reads */
    json = fs_subkey_set_json(set);
    ck_assert_int_eq(fs_json_parse(&arr, pool, json, strlen(json), &err), APR_SUCCESS);
    ck_assert(json_object_is_type(arr, json_type_array));
    ck_assert_int_ge((int)json_object_array_length(arr), 5);
    /* a resource with more keys than an index lookup takes: the write reads all */
    set = fs_subkey_set_make(pool);
    arr = json_object_new_array();
    for (i = 0; i <= FS_SUBKEY_MAX_PER_WRITE; ++i) {
        json_object *ident = json_object_new_object();
        json_object_object_add(ident, "value",
                               json_object_new_string(apr_psprintf(pool, "v%d", i)));
        json_object_array_add(arr, ident);
    }
    json = apr_psprintf(pool, "{\"resourceType\":\"Patient\",\"identifier\":%s}",
                        json_object_to_json_string(arr));
    json_object_put(arr);
    ck_assert_int_eq(fs_json_parse(&arr, pool, json, strlen(json), &err), APR_SUCCESS);
    ck_assert_int_eq(fs_subkey_set_add(set, arr), APR_ENOSPC);
    /* no resourceType: no filter can match, nothing to find */
    set = fs_subkey_set_make(pool);
    ck_assert_int_eq(fs_subkey_set_add(set, J("{'id':'x'}")), APR_SUCCESS);
    ck_assert_str_eq(fs_subkey_set_json(set), "[]");
}
END_TEST

/* ---- topics ------------------------------------------------------------------------ */

START_TEST(topic_encounter_end)
{
    const fs_topic_t *t = shipped("encounter-end.json");

    ck_assert_str_eq(t->url, ENC_END);
    ck_assert(fires(t, UPDATE, enc("in-progress"), enc("finished")));
    ck_assert(!fires(t, UPDATE, enc("finished"), enc("finished")));
    ck_assert(!fires(t, UPDATE, enc("planned"), enc("in-progress")));
    ck_assert(!fires(t, UPDATE, NULL, enc("finished")));    /* unknown previous */
    ck_assert(fires(t, CREATE, NULL, enc("finished")));     /* resultForCreate passes */
    ck_assert(!fires(t, CREATE, NULL, enc("in-progress")));
    ck_assert(!fires(t, CREATE, NULL, NULL));               /* unknown current */
    ck_assert(!fires(t, DELETE, enc("finished"), NULL));    /* not a supported interaction */
    ck_assert(fires(t, UPDATE, "{'resourceType':'Encounter'}", enc("finished")));
    {
        fs_match_change_t c = change("Observation", UPDATE, enc("in-progress"),
                                     enc("finished"));
        ck_assert(!fs_match_topic(t, &c));                  /* not a trigger type */
    }
    ck_assert(fs_topic_needs_previous(t, "Encounter", UPDATE));
    ck_assert(!fs_topic_needs_previous(t, "Encounter", CREATE));
    ck_assert(!fs_topic_needs_previous(t, "Encounter", DELETE));
    ck_assert(!fs_topic_needs_previous(t, "Observation", UPDATE));
}
END_TEST

START_TEST(topic_encounter_start)
{
    const fs_topic_t *t = shipped("encounter-start.json");

    ck_assert(fires(t, UPDATE, enc("planned"), enc("in-progress")));
    ck_assert(!fires(t, UPDATE, enc("in-progress"), enc("in-progress")));
    ck_assert(!fires(t, UPDATE, enc("in-progress"), enc("finished")));
    ck_assert(fires(t, CREATE, NULL, enc("in-progress")));
    ck_assert(!fires(t, CREATE, NULL, enc("planned")));
    ck_assert(fs_topic_needs_previous(t, "Encounter", UPDATE));
}
END_TEST

START_TEST(topic_any_interaction)
{
    const fs_topic_t *pt = shipped("patient-change.json");
    const fs_topic_t *ot = shipped("observation-change.json");
    const char *pat = "{'resourceType':'Patient','id':'e1'}";
    fs_match_change_t c;

    c = change("Patient", CREATE, NULL, pat);
    ck_assert(fs_match_topic(pt, &c));
    ck_assert(!fs_match_topic(ot, &c));
    c = change("Patient", UPDATE, NULL, pat);               /* no previous needed */
    ck_assert(fs_match_topic(pt, &c));
    c = change("Patient", DELETE, NULL, NULL);
    ck_assert(fs_match_topic(pt, &c));
    c = change("Observation", DELETE, NULL, NULL);
    ck_assert(fs_match_topic(ot, &c));
    ck_assert(!fs_match_topic(pt, &c));
    ck_assert(!fs_topic_needs_previous(pt, "Patient", UPDATE));
    ck_assert(!fs_topic_needs_previous(pt, "Patient", DELETE));
    ck_assert(!fs_match_topic(NULL, &c));
}
END_TEST

START_TEST(topic_result_for_delete)
{
    const fs_topic_t *pass = enc_topic("'supportedInteraction':['delete'],'queryCriteria':{"
                                       "'previous':'status=finished','current':'status=x',"
                                       "'resultForDelete':'test-passes','requireBoth':true}");
    const fs_topic_t *fail = enc_topic("'supportedInteraction':['delete'],'queryCriteria':{"
                                       "'current':'status=finished',"
                                       "'resultForDelete':'test-fails'}");
    const fs_topic_t *unset = enc_topic("'supportedInteraction':['delete'],'queryCriteria':{"
                                        "'current':'status=finished'}");

    ck_assert(fires(pass, DELETE, enc("finished"), NULL));
    ck_assert(!fires(pass, DELETE, enc("planned"), NULL));  /* previous test fails */
    ck_assert(!fires(pass, DELETE, NULL, NULL));            /* unknown previous */
    ck_assert(!fires(pass, UPDATE, enc("finished"), enc("x")));  /* delete only */
    ck_assert(fs_topic_needs_previous(pass, "Encounter", DELETE));
    ck_assert(!fs_topic_needs_previous(pass, "Encounter", UPDATE));
    ck_assert(!fires(fail, DELETE, enc("finished"), NULL));
    ck_assert(fires(unset, DELETE, enc("finished"), NULL)); /* absent: passes */
    ck_assert(!fs_topic_needs_previous(fail, "Encounter", DELETE));
}
END_TEST

START_TEST(topic_require_both_false)
{
    const fs_topic_t *t = enc_topic("'queryCriteria':{'previous':'status=planned',"
                                    "'current':'status=finished','requireBoth':false,"
                                    "'resultForCreate':'test-fails'}");
    const fs_topic_t *cur = enc_topic("'queryCriteria':{'current':'status=finished'}");
    const fs_topic_t *prev = enc_topic("'queryCriteria':{'previous':'status=planned',"
                                       "'resultForCreate':'test-fails'}");
    const fs_topic_t *plain = enc_topic("'supportedInteraction':['update']");

    ck_assert(fires(t, UPDATE, enc("planned"), enc("in-progress")));   /* previous only */
    ck_assert(fires(t, UPDATE, enc("in-progress"), enc("finished")));  /* current only */
    ck_assert(!fires(t, UPDATE, enc("in-progress"), enc("cancelled")));
    ck_assert(fires(t, UPDATE, NULL, enc("finished")));     /* unknown previous fails */
    ck_assert(!fires(t, UPDATE, NULL, enc("planned")));
    ck_assert(fires(t, CREATE, NULL, enc("finished")));
    ck_assert(!fires(t, CREATE, NULL, enc("planned")));     /* resultForCreate fails */
    ck_assert(fires(t, DELETE, enc("in-progress"), NULL));  /* resultForDelete unset */
    /* a test without criteria takes no part */
    ck_assert(fires(cur, UPDATE, NULL, enc("finished")));
    ck_assert(!fires(cur, UPDATE, enc("finished"), enc("planned")));
    ck_assert(!fs_topic_needs_previous(cur, "Encounter", UPDATE));
    ck_assert(fires(prev, UPDATE, enc("planned"), enc("finished")));
    ck_assert(!fires(prev, CREATE, NULL, enc("planned")));
    ck_assert(!fires(prev, UPDATE, enc("finished"), enc("planned")));
    /* no queryCriteria: type and interaction alone */
    ck_assert(fires(plain, UPDATE, NULL, NULL));
    ck_assert(!fires(plain, CREATE, NULL, enc("finished")));
}
END_TEST

/* ---- subscriptions ----------------------------------------------------------------- */

static fs_topics_t *load_topics(void)
{
    fs_topics_t *topics;
    const char *err = NULL;
    ck_assert_int_eq(fs_topics_create(&topics, pool), APR_SUCCESS);
    ck_assert_msg(fs_topics_load_dir(topics, topics_dir(), &err) == APR_SUCCESS,
                  "%s: %s (set FHIRSUB_TOPICS_DIR)", topics_dir(), err);
    return topics;
}

static fs_sub_t *sub_parse(const char *json, fs_topics_t *topics, fs_fhir_version_t v)
{
    fs_sub_policy_t policy;
    fs_sub_problem_t prob;
    fs_sub_t *s = NULL;

    memset(&policy, 0, sizeof(policy));
    memset(&prob, 0, sizeof(prob));
    policy.version = v;
    policy.topics = topics;
    policy.allowed_content = FS_CONTENT_ALL;
    policy.min_heartbeat = 1;
    policy.max_heartbeat = 3600;
    ck_assert_msg(fs_sub_parse(&s, &prob, pool, J(json), &policy, apr_time_now())
                  == APR_SUCCESS, "subscription rejected: %s\n%s", prob.text, json);
    return s;
}

static fs_sub_t *r4_sub(const char *criteria, const char *filter, fs_topics_t *topics)
{
    const char *ext = filter ? apr_pstrcat(pool, ",'_criteria':{'extension':[{'url':'"
        "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
        "backport-filter-criteria','valueString':'", filter, "'}]}", NULL) : "";
    return sub_parse(apr_pstrcat(pool, "{'resourceType':'Subscription','status':'requested',"
                                 "'reason':'test','criteria':'", criteria, "'", ext,
                                 ",'channel':{'type':'websocket'}}", NULL), topics, FS_FHIR_R4);
}

static apr_array_header_t *sub_filters(const fs_sub_t *s)
{
    apr_array_header_t *fl = NULL;
    const char *err = NULL;
    ck_assert_msg(fs_match_sub_filters(&fl, pool, s, &err) == APR_SUCCESS, "%s", err);
    return fl;
}

static const char *obs(const char *system, const char *code, const char *subject)
{
    return apr_psprintf(pool, "{'resourceType':'Observation','id':'o1','status':'final',"
                        "'code':{'coding':[{'system':'%s','code':'%s'}]},"
                        "'subject':{'reference':'%s'}}", system, code, subject);
}

static int sub_fires(const fs_sub_t *s, const fs_topic_t *t, const apr_array_header_t *fl,
                     const char *type, fs_interaction_t i, const char *prev, const char *cur)
{
    fs_match_change_t c = change(type, i, prev, cur);
    return fs_match_subscription(s, t, fl, &c);
}

START_TEST(subscription_classic)
{
    fs_sub_t *s = r4_sub("Observation?code=http://loinc.org|1234-5&subject=Patient/1", NULL,
                         NULL);
    apr_array_header_t *fl = sub_filters(s);
    const char *hit = obs("http://loinc.org", "1234-5", "Patient/1");
    const char *pat = "{'resourceType':'Patient','id':'1'}";
    fs_sub_t copy;

    ck_assert_int_eq(s->shape, FS_SHAPE_CLASSIC);
    ck_assert_int_eq(fl->nelts, 2);
    ck_assert(sub_fires(s, NULL, fl, "Observation", CREATE, NULL, hit));
    ck_assert(sub_fires(s, NULL, fl, "Observation", UPDATE, NULL, hit));
    ck_assert(!sub_fires(s, NULL, fl, "Observation", CREATE, NULL,
                         obs("http://loinc.org", "9999-9", "Patient/1")));
    ck_assert(!sub_fires(s, NULL, fl, "Observation", CREATE, NULL,
                         obs("http://other", "1234-5", "Patient/1")));
    ck_assert(!sub_fires(s, NULL, fl, "Observation", CREATE, NULL,
                         obs("http://loinc.org", "1234-5", "Patient/2")));
    ck_assert(!sub_fires(s, NULL, fl, "Patient", CREATE, NULL, pat));
    ck_assert(sub_fires(s, NULL, fl, "Observation", DELETE, hit, NULL));   /* previous */
    ck_assert(!sub_fires(s, NULL, fl, "Observation", DELETE, NULL, NULL)); /* unknown */
    ck_assert(fs_match_needs_previous(s, NULL, fl, "Observation", DELETE));
    ck_assert(!fs_match_needs_previous(s, NULL, fl, "Observation", UPDATE));
    ck_assert(!fs_match_needs_previous(s, NULL, fl, "Patient", DELETE));
    /* the same filters read back from the criteria when none are stored */
    copy = *s;
    copy.filters_json = NULL;
    fl = sub_filters(&copy);
    ck_assert_int_eq(fl->nelts, 2);
    ck_assert(sub_fires(&copy, NULL, fl, "Observation", CREATE, NULL, hit));
    ck_assert(!sub_fires(&copy, NULL, fl, "Observation", CREATE, NULL,
                         obs("http://loinc.org", "1234-5", "Patient/2")));
}
END_TEST

START_TEST(subscription_classic_type_only)
{
    fs_sub_t *s = r4_sub("Observation", NULL, NULL), fake;
    apr_array_header_t *fl = sub_filters(s);

    memset(&fake, 0, sizeof(fake));

    ck_assert_int_eq(fl->nelts, 0);
    ck_assert(sub_fires(s, NULL, fl, "Observation", CREATE, NULL,
                        obs("http://loinc.org", "1", "Patient/1")));
    ck_assert(sub_fires(s, NULL, fl, "Observation", DELETE, NULL, NULL));
    ck_assert(!sub_fires(s, NULL, fl, "ObservationDefinition", CREATE, NULL,
                         "{'resourceType':'ObservationDefinition'}"));
    ck_assert(!sub_fires(s, NULL, fl, "Patient", CREATE, NULL, "{'resourceType':'Patient'}"));
    ck_assert(!fs_match_needs_previous(s, NULL, fl, "Observation", DELETE));
    /* the type is the whole name before '?' */
    fake.shape = FS_SHAPE_CLASSIC;
    fake.criteria = "Patients?x=1";
    ck_assert(!sub_fires(&fake, NULL, NULL, "Patient", CREATE, NULL,
                         "{'resourceType':'Patient'}"));
    fake.criteria = "Patient?x=1";
    ck_assert(sub_fires(&fake, NULL, NULL, "Patient", CREATE, NULL,
                        "{'resourceType':'Patient'}"));
}
END_TEST

START_TEST(subscription_backport_observation_code)
{
    fs_topics_t *topics = load_topics();
    const char *url = EX_URL "observation-change";
    const fs_topic_t *t = fs_topics_get(topics, url);
    fs_sub_t *s = r4_sub(url, "Observation?code=http://loinc.org|8867-4", topics);
    apr_array_header_t *fl = sub_filters(s);
    const char *hr = obs("http://loinc.org", "8867-4", "Patient/1");
    const char *bp = obs("http://loinc.org", "85354-9", "Patient/1");

    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(s->shape, FS_SHAPE_BACKPORT);
    ck_assert_int_eq(fl->nelts, 1);
    ck_assert(sub_fires(s, t, fl, "Observation", CREATE, NULL, hr));
    ck_assert(sub_fires(s, t, fl, "Observation", UPDATE, bp, hr));
    ck_assert(!sub_fires(s, t, fl, "Observation", UPDATE, hr, bp));  /* current counts */
    ck_assert(!sub_fires(s, t, fl, "Observation", CREATE, NULL, bp));
    ck_assert(sub_fires(s, t, fl, "Observation", DELETE, hr, NULL));
    ck_assert(!sub_fires(s, t, fl, "Observation", DELETE, bp, NULL));
    ck_assert(!sub_fires(s, t, fl, "Observation", DELETE, NULL, NULL));
    ck_assert(!sub_fires(s, NULL, fl, "Observation", CREATE, NULL, hr));   /* no topic */
    ck_assert(!sub_fires(s, fs_topics_get(topics, EX_URL "patient-change"), NULL, "Patient",
                         CREATE, NULL, "{'resourceType':'Patient'}"));    /* another topic */
    ck_assert(!sub_fires(s, t, fl, "Patient", CREATE, NULL, "{'resourceType':'Patient'}"));
    ck_assert(!sub_fires(s, t, NULL, "Patient", CREATE, NULL, "{'resourceType':'Patient'}"));
    ck_assert(sub_fires(s, t, NULL, "Observation", CREATE, NULL, bp));     /* no filters */
    ck_assert(fs_match_needs_previous(s, t, fl, "Observation", DELETE));
    ck_assert(!fs_match_needs_previous(s, t, fl, "Observation", UPDATE));
    ck_assert(!fs_match_needs_previous(s, t, fl, "Observation", CREATE));
}
END_TEST

/* The filter cache answers what fs_match_sub_filters parses, once per distinct filters:
 * the same entry for equal filters, another for other filters, the criteria of a classic
 * subscription without stored filters, kept parse errors, and parsing into the caller's
 * pool once full. */
START_TEST(filter_cache_parses_once)
{
    fs_topics_t *topics = load_topics();
    const char *url = EX_URL "observation-change";
    fs_sub_t *a = r4_sub(url, "Observation?code=http://loinc.org|8867-4", topics);
    fs_sub_t *b = r4_sub(url, "Observation?code=http://loinc.org|8867-4", topics);
    fs_sub_t *other = r4_sub(url, "Observation?code=http://loinc.org|85354-9", topics);
    fs_sub_t *classic = r4_sub("Observation?code=http://loinc.org|1234-5", NULL, NULL);
    fs_sub_t *none = r4_sub("Observation", NULL, NULL), broken = *a;
    const apr_array_header_t *fa = NULL, *fb = NULL, *fo = NULL, *fc = NULL, *fn = NULL;
    fs_filter_cache_t *cache = NULL, *small = NULL;
    const char *err = NULL;

    ck_assert_int_eq(fs_filter_cache_create(&cache, pool, 10), APR_SUCCESS);
    ck_assert_int_eq(fs_filter_cache_get(cache, pool, a, &fa, &err), APR_SUCCESS);
    ck_assert_int_eq(fs_filter_cache_get(cache, pool, b, &fb, &err), APR_SUCCESS);
    ck_assert_int_eq(fs_filter_cache_get(cache, pool, other, &fo, &err), APR_SUCCESS);
    ck_assert_ptr_eq(fa, fb);
    ck_assert_ptr_ne(fa, fo);
    ck_assert_int_eq(fa->nelts, 1);
    ck_assert_str_eq(APR_ARRAY_IDX(fo, 0, fs_filter_t *)->value, "http://loinc.org|85354-9");
    ck_assert(sub_fires(a, fs_topics_get(topics, url), fa, "Observation", CREATE, NULL,
                        obs("http://loinc.org", "8867-4", "Patient/1")));
    classic->filters_json = NULL;
    ck_assert_int_eq(fs_filter_cache_get(cache, pool, classic, &fc, &err), APR_SUCCESS);
    ck_assert_int_eq(fc->nelts, 1);
    ck_assert_str_eq(APR_ARRAY_IDX(fc, 0, fs_filter_t *)->param, "code");
    ck_assert_int_eq(fs_filter_cache_get(cache, pool, none, &fn, &err), APR_SUCCESS);
    ck_assert_int_eq(fn->nelts, 0);
    broken.filters_json = "[{\"resourceType\":\"Observation\"";
    ck_assert_int_ne(fs_filter_cache_get(cache, pool, &broken, &fn, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(err);
    err = NULL;
    ck_assert_int_ne(fs_filter_cache_get(cache, pool, &broken, &fn, &err), APR_SUCCESS);
    ck_assert_ptr_nonnull(err);
    /* full: a second distinct filter is parsed anew each time (another array) */
    ck_assert_int_eq(fs_filter_cache_create(&small, pool, 1), APR_SUCCESS);
    ck_assert_int_eq(fs_filter_cache_get(small, pool, a, &fa, &err), APR_SUCCESS);
    ck_assert_int_eq(fs_filter_cache_get(small, pool, a, &fb, &err), APR_SUCCESS);
    ck_assert_ptr_eq(fa, fb);
    ck_assert_int_eq(fs_filter_cache_get(small, pool, other, &fo, &err), APR_SUCCESS);
    ck_assert_int_eq(fs_filter_cache_get(small, pool, other, &fb, &err), APR_SUCCESS);
    ck_assert_ptr_ne(fo, fb);
    ck_assert_str_eq(APR_ARRAY_IDX(fb, 0, fs_filter_t *)->value, "http://loinc.org|85354-9");
    /* without a cache: parsed into the pool */
    ck_assert_int_eq(fs_filter_cache_get(NULL, pool, a, &fa, &err), APR_SUCCESS);
    ck_assert_int_eq(fa->nelts, 1);
}
END_TEST

START_TEST(subscription_r5_encounter_end)
{
    fs_topics_t *topics = load_topics();
    const fs_topic_t *t = fs_topics_get(topics, ENC_END);
    fs_sub_t *s = sub_parse("{'resourceType':'Subscription','status':'requested','topic':'"
                            ENC_END "','channelType':{'code':'websocket'},'filterBy':["
                            "{'filterParameter':'patient','value':'Patient/1'}]}",
                            topics, FS_FHIR_R5);
    apr_array_header_t *fl = sub_filters(s);
    const char *other = "{'resourceType':'Encounter','id':'e1','status':'finished',"
                        "'subject':{'reference':'Patient/2'}}";

    ck_assert_int_eq(s->shape, FS_SHAPE_R5);
    ck_assert(sub_fires(s, t, fl, "Encounter", UPDATE, enc("in-progress"), enc("finished")));
    ck_assert(!sub_fires(s, t, fl, "Encounter", UPDATE, enc("finished"), enc("finished")));
    ck_assert(!sub_fires(s, t, fl, "Encounter", UPDATE, NULL, enc("finished")));
    ck_assert(!sub_fires(s, t, fl, "Encounter", UPDATE, enc("in-progress"), other));
    ck_assert(sub_fires(s, t, fl, "Encounter", CREATE, NULL, enc("finished")));
    ck_assert(fs_match_needs_previous(s, t, fl, "Encounter", UPDATE));
    ck_assert(!fs_match_needs_previous(s, t, fl, "Encounter", DELETE));    /* no delete */
    ck_assert(!fs_match_needs_previous(s, t, fl, "Patient", UPDATE));
}
END_TEST

START_TEST(subscription_patient_id_on_delete)
{
    fs_topics_t *topics = load_topics();
    const char *url = EX_URL "patient-change";
    const fs_topic_t *t = fs_topics_get(topics, url);
    fs_sub_t *by_id = r4_sub(url, "Patient?_id=e1", topics);
    fs_sub_t *by_name = r4_sub(url, "family=smith", topics);
    fs_sub_t *wrong = r4_sub(url, "_id=e2", topics);
    apr_array_header_t *fid = sub_filters(by_id), *fname = sub_filters(by_name);
    const char *smith = "{'resourceType':'Patient','id':'e1','name':[{'family':'Smith'}]}";

    /* the deleted body is unknown: _id is decided on the id, other filters fail */
    ck_assert(sub_fires(by_id, t, fid, "Patient", DELETE, NULL, NULL));
    ck_assert(!sub_fires(wrong, t, sub_filters(wrong), "Patient", DELETE, NULL, NULL));
    ck_assert(!sub_fires(by_name, t, fname, "Patient", DELETE, NULL, NULL));
    ck_assert(sub_fires(by_name, t, fname, "Patient", DELETE, smith, NULL));
    ck_assert(sub_fires(by_name, t, fname, "Patient", UPDATE, NULL, smith));
    ck_assert(sub_fires(by_id, t, fid, "Patient", UPDATE, NULL, smith));
    ck_assert(!fs_match_needs_previous(by_id, t, fid, "Patient", DELETE));
    ck_assert(fs_match_needs_previous(by_name, t, fname, "Patient", DELETE));
    ck_assert(!fs_match_needs_previous(by_name, t, fname, "Patient", UPDATE));
}
END_TEST

START_TEST(subscription_filter_for_other_type)
{
    fs_topics_t *topics = load_topics();
    const char *url = EX_URL "observation-change";
    const fs_topic_t *t = fs_topics_get(topics, url);
    fs_sub_t *s = r4_sub(url, NULL, topics);
    apr_array_header_t *fl = F("Patient?_id=o1");

    ck_assert(!sub_fires(s, t, fl, "Observation", CREATE, NULL,
                         obs("http://loinc.org", "1", "Patient/1")));
    ck_assert(sub_fires(s, t, sub_filters(s), "Observation", CREATE, NULL,
                        obs("http://loinc.org", "1", "Patient/1")));
    /* an unknown deleted body decides no filter but _id, not even :not */
    s = r4_sub(url, "status:not=final", topics);
    fl = sub_filters(s);
    ck_assert(!sub_fires(s, t, fl, "Observation", DELETE, NULL, NULL));
    ck_assert(sub_fires(s, t, fl, "Observation", DELETE,
                        "{'resourceType':'Observation','status':'amended'}", NULL));
    ck_assert(!sub_fires(s, t, fl, "Observation", DELETE,
                         "{'resourceType':'Observation','status':'final'}", NULL));
}
END_TEST

/* ---- runner ------------------------------------------------------------------------ */

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    return tc;
}

static Suite *match_suite(void)
{
    Suite *s = suite_create("fs_match");
    TCase *tc = tcase("params");
    tcase_add_test(tc, token_code);
    tcase_add_test(tc, token_codeable_concept);
    tcase_add_test(tc, token_coding_r4_r5);
    tcase_add_test(tc, token_identifier_boolean_id);
    tcase_add_test(tc, reference_forms);
    tcase_add_test(tc, reference_arrays_and_alternative_paths);
    tcase_add_test(tc, string_modes);
    tcase_add_test(tc, string_accents);
    tcase_add_test(tc, date_prefixes_on_a_day);
    tcase_add_test(tc, date_times_and_zones);
    tcase_add_test(tc, date_periods);
    tcase_add_test(tc, date_approximately_and_last_updated);
    tcase_add_test(tc, uri_modes);
    tcase_add_test(tc, filters_type_and_and);
    tcase_add_test(tc, filters_from_r5_and_storage);
    tcase_add_test(tc, keys_of_filters);
    tcase_add_test(tc, keys_of_resources);
    suite_add_tcase(s, tc);

    tc = tcase("topics");
    tcase_add_test(tc, topic_encounter_end);
    tcase_add_test(tc, topic_encounter_start);
    tcase_add_test(tc, topic_any_interaction);
    tcase_add_test(tc, topic_result_for_delete);
    tcase_add_test(tc, topic_require_both_false);
    suite_add_tcase(s, tc);

    tc = tcase("subscriptions");
    tcase_add_test(tc, subscription_classic);
    tcase_add_test(tc, subscription_classic_type_only);
    tcase_add_test(tc, subscription_backport_observation_code);
    tcase_add_test(tc, subscription_r5_encounter_end);
    tcase_add_test(tc, subscription_patient_id_on_delete);
    tcase_add_test(tc, subscription_filter_for_other_type);
    tcase_add_test(tc, filter_cache_parses_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(match_suite());
}
