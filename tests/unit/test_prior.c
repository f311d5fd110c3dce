/* Unit tests: fs_prior, which versions are read before a write is forwarded, and their
 * answers. Loads the shipped topics: FHIRSUB_TOPICS_DIR (or -DTOPICS_DIR=...) locates
 * conf/topics (encounter-end has `previous` criteria for Encounter updates). */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>

#include "fs_check.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_prior.h"

#ifndef TOPICS_DIR
#define TOPICS_DIR "../../conf/topics"
#endif

static fs_topics_t *shipped_topics(void)
{
    const char *dir = getenv("FHIRSUB_TOPICS_DIR") ? getenv("FHIRSUB_TOPICS_DIR") : TOPICS_DIR;
    fs_topics_t *topics;
    const char *err = NULL;
    ck_assert_int_eq(fs_topics_create(&topics, pool), APR_SUCCESS);
    ck_assert_msg(fs_topics_load_dir(topics, dir, &err) == APR_SUCCESS, "%s: %s", dir, err);
    return topics;
}

static json_object *json(const char *text)
{
    json_object *j = NULL;
    const char *err = NULL;
    ck_assert_msg(fs_json_parse(&j, pool, text, strlen(text), &err) == APR_SUCCESS, "%s", err);
    return j;
}

static apr_array_header_t *plan(const char *method, const char *path, const char *bundle,
                                const fs_topics_t *topics)
{
    apr_array_header_t *priors = NULL;
    ck_assert_int_eq(fs_prior_plan(&priors, pool, method, path, bundle ? json(bundle) : NULL,
                                   topics), APR_SUCCESS);
    ck_assert_ptr_nonnull(priors);
    return priors;
}

static fs_prior_t *prior_at(apr_array_header_t *priors, int i)
{
    ck_assert_int_lt(i, priors->nelts);
    return APR_ARRAY_IDX(priors, i, fs_prior_t *);
}

/* A read of type/id, or (id NULL) a search sending query, for the conditional cond. */
static void assert_prior(const fs_prior_t *pr, const char *type, const char *id,
                         const char *query, const char *cond)
{
    ck_assert_str_eq(pr->type, type);
    if (id) ck_assert_str_eq(pr->id, id);
    else ck_assert_ptr_null(pr->id);
    if (query) ck_assert_str_eq(pr->query, query);
    else ck_assert_ptr_null(pr->query);
    if (cond) ck_assert_str_eq(pr->cond, cond);
    else ck_assert_ptr_null(pr->cond);
    ck_assert_int_eq(pr->complete, 0);
    ck_assert_int_eq(pr->found->nelts, 0);
}

/* ---- plans ------------------------------------------------------------------- */

START_TEST(plain_writes)
{
    fs_topics_t *topics = shipped_topics();

    /* deletes always: the filters are tested on the deleted resource */
    assert_prior(prior_at(plan("DELETE", "Observation/o1", NULL, NULL), 0), "Observation", "o1",
                 NULL, NULL);
    assert_prior(prior_at(plan("DELETE", "Observation/o1?_format=json", NULL, NULL), 0),
                 "Observation", "o1", NULL, NULL);
    /* updates only for a type whose topic has `previous` criteria */
    assert_prior(prior_at(plan("PUT", "Encounter/e1", NULL, topics), 0), "Encounter", "e1", NULL,
                 NULL);
    assert_prior(prior_at(plan("PATCH", "Encounter/e1", NULL, topics), 0), "Encounter", "e1",
                 NULL, NULL);
    ck_assert_int_eq(plan("PUT", "Encounter/e1", NULL, NULL)->nelts, 0);
    ck_assert_int_eq(plan("PUT", "Patient/p1", NULL, topics)->nelts, 0);
    ck_assert_int_eq(plan("PUT", "Observation/o1", NULL, topics)->nelts, 0);
    /* creates, operations, history, a POST to the base without a Bundle: nothing */
    ck_assert_int_eq(plan("POST", "Encounter", NULL, topics)->nelts, 0);
    ck_assert_int_eq(plan("POST", "", NULL, topics)->nelts, 0);
    ck_assert_int_eq(plan("DELETE", "Patient/p1/_history/2", NULL, topics)->nelts, 0);
    ck_assert_int_eq(plan("DELETE", "Patient/$purge", NULL, topics)->nelts, 0);
    ck_assert_int_eq(plan("DELETE", "metadata", NULL, topics)->nelts, 0);
    ck_assert_int_eq(plan("DELETE", "Patient/a%20b", NULL, topics)->nelts, 0);
}
END_TEST

/* A conditional write searches; the query goes out URI-encoded with a page size. */
START_TEST(conditional_writes)
{
    fs_topics_t *topics = shipped_topics();

    assert_prior(prior_at(plan("DELETE", "Patient?identifier=http://x|1 2", NULL, NULL), 0),
                 "Patient", NULL, "identifier=http://x%7C1%202&_count=100",
                 "identifier=http://x|1 2");
    /* escapes stay as they are; a page size the client chose is kept */
    assert_prior(prior_at(plan("DELETE", "Patient?identifier=x%7C1&_count=5", NULL, NULL), 0),
                 "Patient", NULL, "identifier=x%7C1&_count=5", "identifier=x%7C1&_count=5");
    assert_prior(prior_at(plan("PUT", "Encounter?identifier=x|1", NULL, topics), 0),
                 "Encounter", NULL, "identifier=x%7C1&_count=100", "identifier=x|1");
    ck_assert_int_eq(plan("PUT", "Patient?identifier=x|1", NULL, topics)->nelts, 0);
    ck_assert_int_eq(plan("DELETE", "Patient?", NULL, topics)->nelts, 0);
}
END_TEST

#define ENTRY(method, url) "{\"request\":{\"method\":\"" method "\",\"url\":\"" url "\"}}"
#define BUNDLE(type, entries) \
    "{\"resourceType\":\"Bundle\",\"type\":\"" type "\",\"entry\":[" entries "]}"

/* Entries: conditionals in entry order, then the ids of each type (first seen first), a
 * few read one by one; nothing twice. */
START_TEST(bundle_entries)
{
    fs_topics_t *topics = shipped_topics();
    apr_array_header_t *priors = plan("POST", "", BUNDLE("batch",
        ENTRY("PUT", "Encounter/e1") "," ENTRY("DELETE", "Observation/o1") ","
        ENTRY("PUT", "Encounter/e2") "," ENTRY("DELETE", "Observation?code=x|1") ","
        ENTRY("DELETE", "Observation/o1") "," ENTRY("PATCH", "Encounter/e1") ","
        ENTRY("POST", "Encounter") "," ENTRY("GET", "Patient/p2") ","
        ENTRY("PUT", "Patient/p3") "," ENTRY("DELETE", "Patient/p1") ","
        ENTRY("DELETE", "Observation?code=x|1") "," ENTRY("DELETE", "http://h/Patient/p9") ","
        "{\"request\":{\"method\":\"DELETE\"}}"), topics);

    ck_assert_int_eq(priors->nelts, 5);
    assert_prior(prior_at(priors, 0), "Observation", NULL, "code=x%7C1&_count=100", "code=x|1");
    assert_prior(prior_at(priors, 1), "Encounter", "e1", NULL, NULL);
    assert_prior(prior_at(priors, 2), "Encounter", "e2", NULL, NULL);
    assert_prior(prior_at(priors, 3), "Observation", "o1", NULL, NULL);
    assert_prior(prior_at(priors, 4), "Patient", "p1", NULL, NULL);
}
END_TEST

/* A Bundle deleting n Observations o0..o(n-1). */
static apr_array_header_t *plan_deletes(int n)
{
    char *entries = "";
    int i;
    for (i = 0; i < n; ++i) {
        entries = apr_psprintf(pool, "%s%s{\"request\":{\"method\":\"DELETE\",\"url\":"
                               "\"Observation/o%d\"}}", entries, i ? "," : "", i);
    }
    return plan("POST", "", apr_psprintf(pool, BUNDLE("transaction", "%s"), entries), NULL);
}

START_TEST(bundle_many_ids)
{
    apr_array_header_t *priors = plan_deletes(FS_PRIOR_READS_PER_TYPE);

    ck_assert_int_eq(priors->nelts, FS_PRIOR_READS_PER_TYPE);
    assert_prior(prior_at(priors, FS_PRIOR_READS_PER_TYPE - 1), "Observation",
                 apr_psprintf(pool, "o%d", FS_PRIOR_READS_PER_TYPE - 1), NULL, NULL);
    /* more: `_id` searches */
    priors = plan_deletes(FS_PRIOR_IDS_PER_SEARCH + 2);
    ck_assert_int_eq(priors->nelts, 2);
    ck_assert_ptr_nonnull(strstr(prior_at(priors, 0)->query, "_id=o0,o1,"));
    ck_assert_ptr_nonnull(strstr(prior_at(priors, 0)->query, ",o49&_count=50"));
    assert_prior(prior_at(priors, 1), "Observation", NULL, "_id=o50,o51&_count=2", NULL);
}
END_TEST

START_TEST(not_a_transaction)
{
    ck_assert_int_eq(plan("POST", "", BUNDLE("collection", ENTRY("DELETE", "Patient/p1")),
                          NULL)->nelts, 0);
    ck_assert_int_eq(plan("POST", "", "{\"resourceType\":\"Parameters\",\"type\":\"batch\"}",
                          NULL)->nelts, 0);
    /* a Bundle sent to a type is a create, not a transaction */
    ck_assert_int_eq(plan("POST", "Bundle", BUNDLE("batch", ENTRY("DELETE", "Patient/p1")),
                          NULL)->nelts, 0);
}
END_TEST

/* ---- answers ----------------------------------------------------------------- */

static fs_prior_t *answered(const char *method, const char *path, int status, const char *body,
                            int complete)
{
    fs_prior_t *pr = prior_at(plan(method, path, NULL, NULL), 0);
    fs_prior_answer(pr, pool, status, body, body ? strlen(body) : 0, complete);
    return pr;
}

#define OBS(id, subject) "{\"resourceType\":\"Observation\",\"id\":\"" id "\"," \
                         "\"subject\":{\"reference\":\"Patient/" subject "\"}}"

START_TEST(read_answers)
{
    fs_prior_t *pr = answered("DELETE", "Observation/o1", 200, OBS("o1", "x"), 1);
    ck_assert_int_eq(pr->complete, 1);
    ck_assert_int_eq(pr->found->nelts, 1);
    /* gone already: known, nothing found */
    pr = answered("DELETE", "Observation/o1", 404, "{\"resourceType\":\"OperationOutcome\"}", 1);
    ck_assert_int_eq(pr->complete, 1);
    ck_assert_int_eq(pr->found->nelts, 0);
    ck_assert_int_eq(answered("DELETE", "Observation/o1", 410, NULL, 1)->complete, 1);
    /* unknown: server error, refused, cut at the bound, not JSON, another resource */
    ck_assert_int_eq(answered("DELETE", "Observation/o1", 500, NULL, 1)->complete, 0);
    ck_assert_int_eq(answered("DELETE", "Observation/o1", 401, NULL, 1)->complete, 0);
    pr = answered("DELETE", "Observation/o1", 200, OBS("o1", "x"), 0);
    ck_assert_int_eq(pr->complete, 0);
    ck_assert_int_eq(pr->found->nelts, 0);
    ck_assert_int_eq(answered("DELETE", "Observation/o1", 200, "{\"x\":", 1)->complete, 0);
    ck_assert_int_eq(answered("DELETE", "Observation/o1", 200, OBS("o2", "x"), 1)->found->nelts,
                     0);
    ck_assert_int_eq(answered("DELETE", "Observation/o1", 200,
                              "{\"resourceType\":\"Patient\",\"id\":\"o1\"}", 1)->found->nelts, 0);
}
END_TEST

#define SEARCHSET(entries, links) "{\"resourceType\":\"Bundle\",\"type\":\"searchset\"," \
                                  "\"entry\":[" entries "],\"link\":[" links "]}"
#define MATCH(res) "{\"resource\":" res ",\"search\":{\"mode\":\"match\"}}"

START_TEST(search_answers)
{
    fs_prior_t *pr = answered("DELETE", "Observation?code=x", 200, SEARCHSET(
        MATCH(OBS("o1", "x")) ","
        "{\"resource\":" OBS("o2", "y") "}," /* no mode: a match */
        "{\"resource\":{\"resourceType\":\"Patient\",\"id\":\"x\"},"
        "\"search\":{\"mode\":\"include\"}},"
        "{\"resource\":{\"resourceType\":\"OperationOutcome\"},\"search\":{\"mode\":\"outcome\"}}",
        "{\"relation\":\"self\",\"url\":\"http://h/Observation\"}"), 1);
    ck_assert_int_eq(pr->complete, 1);
    ck_assert_int_eq(pr->found->nelts, 2);
    ck_assert_str_eq(fs_json_get_str(APR_ARRAY_IDX(pr->found, 1, json_object *), "id"), "o2");

    /* more pages: what was found counts, but it is not everything */
    pr = answered("DELETE", "Observation?code=x", 200, SEARCHSET(MATCH(OBS("o1", "x")),
        "{\"relation\":\"next\",\"url\":\"http://h/Observation?page=2\"}"), 1);
    ck_assert_int_eq(pr->complete, 0);
    ck_assert_int_eq(pr->found->nelts, 1);

    pr = answered("DELETE", "Observation?code=x", 200, SEARCHSET("", ""), 1);
    ck_assert_int_eq(pr->complete, 1);
    ck_assert_int_eq(pr->found->nelts, 0);
    ck_assert_int_eq(answered("DELETE", "Observation?code=x", 400, NULL, 1)->complete, 0);
    ck_assert_int_eq(answered("DELETE", "Observation?code=x", 404, NULL, 1)->complete, 0);
    ck_assert_int_eq(answered("DELETE", "Observation?code=x", 200, OBS("o1", "x"), 1)->complete,
                     0);
}
END_TEST

static void answer(fs_prior_t *pr, int status, const char *body)
{
    fs_prior_answer(pr, pool, status, body, body ? strlen(body) : 0, 1);
}

START_TEST(lookups)
{
    apr_array_header_t *priors = plan("POST", "", BUNDLE("batch",
        ENTRY("DELETE", "Observation/o1") "," ENTRY("DELETE", "Observation/o2") ","
        ENTRY("DELETE", "Observation?code=x|1") "," ENTRY("DELETE", "Patient/p1")), NULL);
    apr_hash_t *versions;

    ck_assert_int_eq(priors->nelts, 4);
    answer(prior_at(priors, 0), 200, SEARCHSET(MATCH(OBS("o3", "z")), ""));
    answer(prior_at(priors, 1), 404, NULL);
    answer(prior_at(priors, 2), 200, OBS("o2", "y"));
    answer(prior_at(priors, 3), 410, NULL);
    versions = fs_prior_versions(pool, priors);
    ck_assert_ptr_nonnull(fs_prior_version(versions, "Observation", "o2"));
    ck_assert_ptr_nonnull(fs_prior_version(versions, "Observation", "o3"));
    ck_assert_ptr_null(fs_prior_version(versions, "Observation", "o1"));
    ck_assert_ptr_null(fs_prior_version(versions, "Patient", "p1"));
    ck_assert_ptr_null(fs_prior_version(versions, "Patient", NULL));
    ck_assert_ptr_eq(fs_prior_of_cond(priors, "Observation", "code=x|1"), prior_at(priors, 0));
    ck_assert_ptr_null(fs_prior_of_cond(priors, "Patient", "code=x|1"));
    ck_assert_ptr_null(fs_prior_of_cond(priors, "Observation", "code=x|2"));
}
END_TEST

static Suite *prior_suite(void)
{
    Suite *s = suite_create("prior");
    TCase *tc = fs_check_tcase("plan");
    tcase_add_test(tc, plain_writes);
    tcase_add_test(tc, conditional_writes);
    tcase_add_test(tc, bundle_entries);
    tcase_add_test(tc, bundle_many_ids);
    tcase_add_test(tc, not_a_transaction);
    suite_add_tcase(s, tc);
    tc = fs_check_tcase("answers");
    tcase_add_test(tc, read_answers);
    tcase_add_test(tc, search_answers);
    tcase_add_test(tc, lookups);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(prior_suite());
}
