/* Unit tests: fs_change_derive, what a captured write changed. */
#include <string.h>
#include <apr_strings.h>

#include "fs_check.h"
#include "../../src/core/fs_change.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_prior.h"

static fs_capture_t cap;

static void capture(const char *method, const char *path, int status, const char *req,
                    const char *resp)
{
    memset(&cap, 0, sizeof(cap));
    cap.method = method;
    cap.path = path;
    cap.status = status;
    cap.req_body = req;
    cap.req_len = req ? strlen(req) : 0;
    cap.req_complete = 1;
    cap.resp_body = resp;
    cap.resp_len = resp ? strlen(resp) : 0;
    cap.resp_complete = 1;
}

static apr_array_header_t *derive_rv(apr_status_t expect)
{
    apr_array_header_t *changes = NULL;
    ck_assert_int_eq(fs_change_derive(&changes, pool, &cap, apr_time_now()), expect);
    ck_assert_ptr_nonnull(changes);
    return changes;
}

static apr_array_header_t *derive(void)
{
    return derive_rv(APR_SUCCESS);
}

/* The reads fs_prior plans for the capture, answered with status: searches with body,
 * reads (when 200) with the resource they asked for, status final. */
static void answer_priors(int status, const char *body)
{
    apr_array_header_t *priors = NULL;
    json_object *bundle = NULL;
    const char *err = NULL;
    int i;

    if (!*cap.path && cap.req_body) {
        ck_assert_int_eq(fs_json_parse(&bundle, pool, cap.req_body, cap.req_len, &err),
                         APR_SUCCESS);
    }
    ck_assert_int_eq(fs_prior_plan(&priors, pool, cap.method, cap.path, bundle, NULL),
                     APR_SUCCESS);
    for (i = 0; i < priors->nelts; ++i) {
        fs_prior_t *pr = APR_ARRAY_IDX(priors, i, fs_prior_t *);
        const char *text = pr->id && status == 200
            ? apr_psprintf(pool, "{\"resourceType\":\"%s\",\"id\":\"%s\",\"status\":\"final\"}",
                           pr->type, pr->id)
            : body;
        fs_prior_answer(pr, pool, status, text, text ? strlen(text) : 0, 1);
    }
    cap.priors = priors;
}

static const fs_change_t *only_change(void)
{
    apr_array_header_t *changes = derive();
    ck_assert_int_eq(changes->nelts, 1);
    return APR_ARRAY_IDX(changes, 0, const fs_change_t *);
}

static void assert_change(const fs_change_t *c, const char *type, const char *id,
                          const char *vid, const char *interaction, const char *method,
                          const char *url)
{
    ck_assert_str_eq(c->resource_type, type);
    ck_assert_str_eq(c->resource_id, id);
    ck_assert_str_eq(c->version_id, vid);
    ck_assert_str_eq(c->interaction, interaction);
    ck_assert_str_eq(c->request_method, method);
    ck_assert_str_eq(c->request_url, url);
    ck_assert_int_eq((int)strlen(c->id), 36);
}

#define ENC_RESP "{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"meta\":{\"versionId\":\"3\"}," \
                 "\"status\":\"finished\"}"

START_TEST(create_from_answer)
{
    const fs_change_t *c;
    capture("POST", "Encounter", 201, "{\"resourceType\":\"Encounter\",\"status\":\"x\"}",
            ENC_RESP);
    cap.location = "http://h/fhir/R4/Encounter/e1/_history/3";
    c = only_change();
    assert_change(c, "Encounter", "e1", "3", "create", "POST", "Encounter");
    ck_assert_str_eq(c->response_status, "201");
    ck_assert_ptr_nonnull(c->resource);
    ck_assert_str_eq(fs_json_get_str(c->resource, "status"), "finished");
    ck_assert_ptr_nonnull(strstr(c->body, "\"finished\""));
}
END_TEST

/* Prefer: return=minimal: no answer body, the sent resource and the Location. */
START_TEST(create_minimal_uses_request)
{
    const fs_change_t *c;
    capture("POST", "Patient", 201, "{\"resourceType\":\"Patient\",\"gender\":\"male\"}", NULL);
    cap.location = "http://h/fhir/R4/Patient/p9/_history/1";
    c = only_change();
    assert_change(c, "Patient", "p9", "1", "create", "POST", "Patient");
    ck_assert_str_eq(fs_json_get_str(c->resource, "gender"), "male");
    ck_assert_str_eq(fs_json_get_str(c->resource, "id"), "p9");
}
END_TEST

START_TEST(update_and_put_create)
{
    capture("PUT", "Encounter/e1", 200, NULL, ENC_RESP);
    assert_change(only_change(), "Encounter", "e1", "3", "update", "PUT", "Encounter/e1");
    capture("PUT", "Encounter/e1", 201, NULL, ENC_RESP);
    assert_change(only_change(), "Encounter", "e1", "3", "create", "PUT", "Encounter/e1");
}
END_TEST

/* A patch body is no resource: without an answer the change is id-only. */
START_TEST(patch_minimal_is_id_only)
{
    const fs_change_t *c;
    capture("PATCH", "Encounter/e1", 200, "[{\"op\":\"replace\",\"path\":\"/status\"}]", NULL);
    cap.etag = "W/\"4\"";
    c = only_change();
    assert_change(c, "Encounter", "e1", "4", "update", "PATCH", "Encounter/e1");
    ck_assert_ptr_null(c->resource);
    ck_assert_str_eq(c->body, "");
}
END_TEST

START_TEST(delete_has_no_resource)
{
    const fs_change_t *c;
    capture("DELETE", "Encounter/e1", 200, NULL,
            "{\"resourceType\":\"OperationOutcome\",\"issue\":[]}");
    c = only_change();
    assert_change(c, "Encounter", "e1", "", "delete", "DELETE", "Encounter/e1");
    ck_assert_ptr_null(c->resource);
}
END_TEST

/* Truncated bodies (over the capture bound) give id-only changes, never garbage. */
START_TEST(truncated_body_is_id_only)
{
    const fs_change_t *c;
    capture("PUT", "Encounter/e1", 200, NULL, ENC_RESP);
    cap.resp_complete = 0;
    c = only_change();
    ck_assert_ptr_null(c->resource);
    ck_assert_str_eq(c->resource_id, "e1");
}
END_TEST

/* An answer about another type (an OperationOutcome) is not the resource. */
START_TEST(answer_of_other_type_ignored)
{
    const fs_change_t *c;
    capture("PUT", "Patient/p1", 200, "{\"resourceType\":\"Patient\",\"id\":\"p1\"}",
            "{\"resourceType\":\"OperationOutcome\"}");
    c = only_change();
    ck_assert_str_eq(fs_json_get_str(c->resource, "resourceType"), "Patient");
}
END_TEST

START_TEST(failures_and_non_writes)
{
    capture("POST", "Encounter", 400, "{}", "{}");
    ck_assert_int_eq(derive()->nelts, 0);
    capture("PUT", "Encounter/e1", 412, NULL, ENC_RESP);
    ck_assert_int_eq(derive()->nelts, 0);
    /* If-None-Exist found the resource: 200, nothing was created */
    capture("POST", "Patient", 200, "{\"resourceType\":\"Patient\"}",
            "{\"resourceType\":\"Patient\",\"id\":\"p1\"}");
    ck_assert_int_eq(derive()->nelts, 0);
    capture("POST", "Encounter/_search", 200, NULL, "{\"resourceType\":\"Bundle\"}");
    ck_assert_int_eq(derive()->nelts, 0);
    capture("POST", "Patient/$validate", 200, NULL, "{\"resourceType\":\"OperationOutcome\"}");
    ck_assert_int_eq(derive()->nelts, 0);
    capture("POST", "Patient/p1/$everything", 200, NULL, "{}");
    ck_assert_int_eq(derive()->nelts, 0);
    capture("PUT", "Patient/p1/_history/2", 200, NULL, "{}");
    ck_assert_int_eq(derive()->nelts, 0);
    capture("DELETE", "metadata", 200, NULL, NULL);
    ck_assert_int_eq(derive()->nelts, 0);
    /* a POST to the base that is not a transaction/batch (e.g. a search) */
    capture("POST", "", 200, "{\"resourceType\":\"Parameters\"}", "{}");
    ck_assert_int_eq(derive()->nelts, 0);
}
END_TEST

START_TEST(conditional_update)
{
    const fs_change_t *c;
    capture("PUT", "Patient?identifier=x|1", 200, NULL,
            "{\"resourceType\":\"Patient\",\"id\":\"p7\",\"meta\":{\"versionId\":\"2\"}}");
    c = only_change();
    assert_change(c, "Patient", "p7", "2", "update", "PUT", "Patient/p7");
}
END_TEST

#define OBS_O1 "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\"}"
#define SEARCH_O1_O2 "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"entry\":[" \
    "{\"resource\":" OBS_O1 "},{\"resource\":{\"resourceType\":\"Observation\",\"id\":\"o2\"}}]}"

/* The version read before a delete goes with its change, for the filters. */
START_TEST(delete_with_previous)
{
    const fs_change_t *c;
    capture("DELETE", "Observation/o1", 200, NULL, NULL);
    answer_priors(200, NULL);
    c = only_change();
    ck_assert_ptr_null(c->resource);
    ck_assert_ptr_nonnull(c->previous);
    ck_assert_str_eq(fs_json_get_str(c->previous, "status"), "final");
    /* gone before: nothing to go with it */
    answer_priors(404, NULL);
    ck_assert_ptr_null(only_change()->previous);
}
END_TEST

/* DELETE Type?search names no id: one delete per resource the search before it found. */
START_TEST(conditional_delete)
{
    apr_array_header_t *changes;
    const fs_change_t *c;

    capture("DELETE", "Observation?code=x|1", 200, NULL, NULL);
    answer_priors(200, SEARCH_O1_O2);
    changes = derive();
    ck_assert_int_eq(changes->nelts, 2);
    c = APR_ARRAY_IDX(changes, 0, const fs_change_t *);
    assert_change(c, "Observation", "o1", "", "delete", "DELETE", "Observation/o1");
    ck_assert_str_eq(fs_json_get_str(c->previous, "id"), "o1");
    c = APR_ARRAY_IDX(changes, 1, const fs_change_t *);
    assert_change(c, "Observation", "o2", "", "delete", "DELETE", "Observation/o2");
    ck_assert_ptr_null(c->resource);
    ck_assert_str_eq(c->response_status, "200");

    /* found nothing: deleted nothing */
    answer_priors(200, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\"}");
    ck_assert_int_eq(derive()->nelts, 0);
    /* the search failed, or was never made: unknown, and said so */
    answer_priors(500, NULL);
    ck_assert_int_eq(derive_rv(APR_INCOMPLETE)->nelts, 0);
    cap.priors = NULL;
    ck_assert_int_eq(derive_rv(APR_INCOMPLETE)->nelts, 0);
    /* a failed conditional delete is no change, whatever was found */
    capture("DELETE", "Observation?code=x|1", 412, NULL, NULL);
    answer_priors(200, SEARCH_O1_O2);
    ck_assert_int_eq(derive()->nelts, 0);
}
END_TEST

/* Only updates and deletes have a version before; a PUT that created has none. */
START_TEST(update_with_previous)
{
    const fs_change_t *c;
    capture("PUT", "Observation/o1", 200, NULL, NULL);
    cap.priors = NULL;
    ck_assert_ptr_null(only_change()->previous);
    capture("DELETE", "Observation/o1", 200, NULL, NULL);
    answer_priors(200, NULL);
    cap.method = "PUT";   /* the same read, as a topic with `previous` criteria plans it */
    c = only_change();
    ck_assert_str_eq(c->interaction, "update");
    ck_assert_ptr_nonnull(c->previous);
    cap.status = 201;
    c = only_change();
    ck_assert_str_eq(c->interaction, "create");
    ck_assert_ptr_null(c->previous);
}
END_TEST

#define TX_HEAD(type) "{\"resourceType\":\"Bundle\",\"type\":\"" type "\",\"entry\":["
#define TX_REQ TX_HEAD("transaction") TX_ENTRIES
#define TX_ENTRIES \
  "{\"resource\":{\"resourceType\":\"Patient\",\"gender\":\"female\"}," \
  "\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}," \
  "{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"status\":\"finished\"}," \
  "\"request\":{\"method\":\"PUT\",\"url\":\"Encounter/e1\"}}," \
  "{\"request\":{\"method\":\"GET\",\"url\":\"Patient?name=x\"}}," \
  "{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation/o1\"}}]}"
#define TX_RESP "{\"resourceType\":\"Bundle\",\"type\":\"transaction-response\",\"entry\":[" \
  "{\"response\":{\"status\":\"201 Created\",\"location\":\"Patient/p5/_history/1\"}}," \
  "{\"resource\":{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"meta\":{\"versionId\":" \
  "\"2\"},\"status\":\"finished\"},\"response\":{\"status\":\"200 OK\"}}," \
  "{\"response\":{\"status\":\"200 OK\"}}," \
  "{\"response\":{\"status\":\"204 No Content\"}}]}"

START_TEST(transaction_entries)
{
    apr_array_header_t *changes;
    const fs_change_t *c;

    capture("POST", "", 200, TX_REQ, TX_RESP);
    changes = derive();
    ck_assert_int_eq(changes->nelts, 3);   /* the GET is no write */
    c = APR_ARRAY_IDX(changes, 0, const fs_change_t *);
    assert_change(c, "Patient", "p5", "1", "create", "POST", "Patient");
    ck_assert_str_eq(fs_json_get_str(c->resource, "gender"), "female");
    ck_assert_str_eq(c->response_status, "201 Created");
    c = APR_ARRAY_IDX(changes, 1, const fs_change_t *);
    assert_change(c, "Encounter", "e1", "2", "update", "PUT", "Encounter/e1");
    c = APR_ARRAY_IDX(changes, 2, const fs_change_t *);
    assert_change(c, "Observation", "o1", "", "delete", "DELETE", "Observation/o1");
}
END_TEST

/* A batch entry that failed makes no change; the others still do. */
START_TEST(batch_partial_failure)
{
    apr_array_header_t *changes;
    const char *resp = "{\"resourceType\":\"Bundle\",\"type\":\"batch-response\",\"entry\":["
        "{\"response\":{\"status\":\"400 Bad Request\"}},"
        "{\"response\":{\"status\":\"200 OK\",\"etag\":\"W/\\\"9\\\"\"}},"
        "{\"response\":{\"status\":\"200 OK\"}},"
        "{\"response\":{\"status\":\"404 Not Found\"}}]}";
    capture("POST", "", 200, TX_HEAD("batch") TX_ENTRIES, resp);
    changes = derive();
    ck_assert_int_eq(changes->nelts, 1);
    assert_change(APR_ARRAY_IDX(changes, 0, const fs_change_t *), "Encounter", "e1", "9",
                  "update", "PUT", "Encounter/e1");
}
END_TEST

/* Mismatched entry counts: nothing can be paired safely. */
START_TEST(transaction_mismatch)
{
    capture("POST", "", 200, TX_REQ, "{\"resourceType\":\"Bundle\",\"type\":"
            "\"transaction-response\",\"entry\":[{\"response\":{\"status\":\"201\"}}]}");
    ck_assert_int_eq(derive()->nelts, 0);
}
END_TEST

/* Entries get the versions read before the Bundle; a conditional DELETE entry one delete
 * per resource found; failed entries none; a resource deleted twice one delete. */
START_TEST(bundle_previous_and_conditional_delete)
{
    apr_array_header_t *changes;
    const fs_change_t *c;
    const char *req = TX_HEAD("batch")
        "{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation?code=x|1\"}},"
        "{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation/o1\"}},"
        "{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation/o9\"}},"
        "{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation?code=x|2\"}}]}";
    const char *resp = "{\"resourceType\":\"Bundle\",\"type\":\"batch-response\",\"entry\":["
        "{\"response\":{\"status\":\"200 OK\"}},{\"response\":{\"status\":\"204\"}},"
        "{\"response\":{\"status\":\"404 Not Found\"}},{\"response\":{\"status\":\"412\"}}]}";

    capture("POST", "", 200, req, resp);
    answer_priors(200, SEARCH_O1_O2);   /* each search finds o1 and o2, each read its own */
    changes = derive();
    ck_assert_int_eq(changes->nelts, 2);   /* DELETE Observation/o1 again: nothing new */
    c = APR_ARRAY_IDX(changes, 0, const fs_change_t *);
    assert_change(c, "Observation", "o1", "", "delete", "DELETE", "Observation/o1");
    ck_assert_str_eq(c->response_status, "200 OK");
    ck_assert_str_eq(fs_json_get_str(c->previous, "status"), "final");
    c = APR_ARRAY_IDX(changes, 1, const fs_change_t *);
    assert_change(c, "Observation", "o2", "", "delete", "DELETE", "Observation/o2");
    ck_assert_ptr_nonnull(c->previous);
}
END_TEST

/* The same conditional DELETE in two batch entries (both answered 2xx): each resource
 * its search found is deleted once, so one delete each. */
START_TEST(bundle_repeated_conditional_delete)
{
    apr_array_header_t *changes;
    const char *req = TX_HEAD("batch")
        "{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation?code=x|1\"}},"
        "{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation?code=x|1\"}}]}";
    const char *resp = "{\"resourceType\":\"Bundle\",\"type\":\"batch-response\",\"entry\":["
        "{\"response\":{\"status\":\"200 OK\"}},{\"response\":{\"status\":\"204\"}}]}";

    capture("POST", "", 200, req, resp);
    answer_priors(200, SEARCH_O1_O2);
    changes = derive();
    ck_assert_int_eq(changes->nelts, 2);
    assert_change(APR_ARRAY_IDX(changes, 0, const fs_change_t *), "Observation", "o1", "",
                  "delete", "DELETE", "Observation/o1");
    assert_change(APR_ARRAY_IDX(changes, 1, const fs_change_t *), "Observation", "o2", "",
                  "delete", "DELETE", "Observation/o2");
}
END_TEST

static Suite *change_suite(void)
{
    Suite *s = suite_create("change");
    TCase *tc = fs_check_tcase("single");
    tcase_add_test(tc, create_from_answer);
    tcase_add_test(tc, create_minimal_uses_request);
    tcase_add_test(tc, update_and_put_create);
    tcase_add_test(tc, patch_minimal_is_id_only);
    tcase_add_test(tc, delete_has_no_resource);
    tcase_add_test(tc, truncated_body_is_id_only);
    tcase_add_test(tc, answer_of_other_type_ignored);
    tcase_add_test(tc, failures_and_non_writes);
    tcase_add_test(tc, conditional_update);
    tcase_add_test(tc, delete_with_previous);
    tcase_add_test(tc, conditional_delete);
    tcase_add_test(tc, update_with_previous);
    suite_add_tcase(s, tc);
    tc = fs_check_tcase("bundles");
    tcase_add_test(tc, transaction_entries);
    tcase_add_test(tc, batch_partial_failure);
    tcase_add_test(tc, transaction_mismatch);
    tcase_add_test(tc, bundle_previous_and_conditional_delete);
    tcase_add_test(tc, bundle_repeated_conditional_delete);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(change_suite());
}
