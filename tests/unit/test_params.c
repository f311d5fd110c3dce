/* Unit tests: fs_params (query and Parameters input) and fs_fhir validators. */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "fs_check.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_fhir.h"
#include "../../src/core/fs_params.h"



static fs_params_t *query_ok(const char *q)
{
    fs_params_t *pp = NULL;
    const char *err = NULL;
    ck_assert_msg(fs_params_from_query(&pp, pool, q, &err) == APR_SUCCESS,
                  "query '%s' refused: %s", q, err);
    ck_assert_ptr_nonnull(pp);
    return pp;
}

static void query_bad(const char *q, const char *fragment)
{
    fs_params_t *pp = (fs_params_t *)1;
    const char *err = NULL;
    ck_assert_msg(fs_params_from_query(&pp, pool, q, &err) == APR_EINVAL,
                  "query '%s' accepted", q);
    ck_assert_ptr_null(pp);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, fragment) != NULL, "'%s' not in '%s'", fragment, err);
}

static fs_params_t *body_ok(const char *text)
{
    json_object *j = NULL;
    fs_params_t *pp = NULL;
    const char *err = NULL;
    ck_assert_int_eq(fs_json_parse(&j, pool, text, strlen(text), &err), APR_SUCCESS);
    ck_assert_msg(fs_params_from_body(&pp, pool, j, &err) == APR_SUCCESS,
                  "body refused: %s", err);
    return pp;
}

static void body_bad(const char *text, const char *fragment)
{
    json_object *j = NULL;
    fs_params_t *pp = (fs_params_t *)1;
    const char *err = NULL;
    ck_assert_int_eq(fs_json_parse(&j, pool, text, strlen(text), &err), APR_SUCCESS);
    ck_assert_msg(fs_params_from_body(&pp, pool, j, &err) == APR_EINVAL,
                  "body accepted: %s", text);
    ck_assert_ptr_null(pp);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, fragment) != NULL, "'%s' not in '%s'", fragment, err);
}

static const fs_param_t *item(const fs_params_t *pp, int i)
{
    ck_assert_int_lt(i, pp->items->nelts);
    return &APR_ARRAY_IDX(pp->items, i, fs_param_t);
}

static void check_item(const fs_params_t *pp, int i, const char *name, const char *value)
{
    ck_assert_str_eq(item(pp, i)->name, name);
    ck_assert_str_eq(item(pp, i)->value, value);
}

static const char *val_at(apr_array_header_t *a, int i)
{
    ck_assert_int_lt(i, a->nelts);
    return APR_ARRAY_IDX(a, i, const char *);
}

START_TEST(query_basic)
{
    fs_params_t *pp = query_ok("a=1&b=x%20y+z&a=2&c=%2Fp%3Fq%3D%26");
    apr_array_header_t *vals;

    ck_assert_int_eq(pp->items->nelts, 4);
    check_item(pp, 0, "a", "1");
    check_item(pp, 1, "b", "x y z");
    check_item(pp, 2, "a", "2");
    check_item(pp, 3, "c", "/p?q=&");
    vals = fs_params_values(pp, pool, "a");
    ck_assert_int_eq(vals->nelts, 2);
    ck_assert_str_eq(val_at(vals, 0), "1");
    ck_assert_str_eq(val_at(vals, 1), "2");
    ck_assert_int_eq(fs_params_values(pp, pool, "zz")->nelts, 0);
    ck_assert_str_eq(fs_params_get(pp, "a"), "1");
    ck_assert_ptr_null(fs_params_get(pp, "zz"));
}
END_TEST

START_TEST(query_edges)
{
    fs_params_t *pp;

    ck_assert_int_eq(query_ok(NULL)->items->nelts, 0);
    ck_assert_int_eq(query_ok("")->items->nelts, 0);
    ck_assert_int_eq(query_ok("&&&")->items->nelts, 0);
    pp = query_ok("&&id=x&");
    ck_assert_int_eq(pp->items->nelts, 1);
    check_item(pp, 0, "id", "x");
    pp = query_ok("flag&e=&n%61me=%c3%A9");
    check_item(pp, 0, "flag", "");
    check_item(pp, 1, "e", "");
    check_item(pp, 2, "name", "\xc3\xa9");
    pp = query_ok("q=a=b");
    check_item(pp, 0, "q", "a=b");
}
END_TEST

START_TEST(query_invalid)
{
    char *many;
    int i;

    query_bad("=x", "empty parameter name");
    query_bad("a=1&=x", "empty parameter name");
    query_bad("a=%", "percent-escape");
    query_bad("a=%4", "percent-escape");
    query_bad("a=%zz", "percent-escape");
    query_bad("a=%4g&b=1", "percent-escape");
    query_bad("a%=1", "percent-escape");
    query_bad("a=x%00y", "NUL");
    query_bad("a=%ff", "UTF-8");
    query_bad("a=%c0%af", "UTF-8");        /* overlong '/' */
    query_bad("a=%ed%a0%80", "UTF-8");     /* surrogate */
    query_bad("a=%e2%82", "UTF-8");        /* truncated */
    query_bad("bad=%zz", "'bad=%zz'");     /* the message names the segment */
    many = "";
    for (i = 0; i <= FS_PARAMS_MAX; ++i) many = apr_pstrcat(pool, many, "a=1&", NULL);
    query_bad(many, "too many parameters");
}
END_TEST

/* An OR-list of search values: empty matches anything, else one entry must equal. */
START_TEST(list_matches)
{
    apr_array_header_t *l = apr_array_make(pool, 2, sizeof(const char *));
    ck_assert(fs_params_list_matches(NULL, "x"));
    ck_assert(fs_params_list_matches(l, "x"));
    APR_ARRAY_PUSH(l, const char *) = "active";
    APR_ARRAY_PUSH(l, const char *) = "off";
    ck_assert(fs_params_list_matches(l, "off"));
    ck_assert(!fs_params_list_matches(l, "error"));
    ck_assert(!fs_params_list_matches(l, "Active"));
    ck_assert(!fs_params_list_matches(l, NULL));
}
END_TEST

START_TEST(query_split)
{
    fs_params_t *pp = query_ok("id=a,b&id=c&id=%20d%20,e&status=x%5C%2Cy");
    apr_array_header_t *vals = NULL;
    const char *err = NULL;

    ck_assert_int_eq(fs_params_values_split(&vals, pp, pool, "id", &err), APR_SUCCESS);
    ck_assert_int_eq(vals->nelts, 5);
    ck_assert_str_eq(val_at(vals, 0), "a");
    ck_assert_str_eq(val_at(vals, 1), "b");
    ck_assert_str_eq(val_at(vals, 2), "c");
    ck_assert_str_eq(val_at(vals, 3), "d");
    ck_assert_str_eq(val_at(vals, 4), "e");
    /* "\," is an escaped comma, not a separator */
    ck_assert_int_eq(fs_params_values_split(&vals, pp, pool, "status", &err), APR_SUCCESS);
    ck_assert_int_eq(vals->nelts, 1);
    ck_assert_str_eq(val_at(vals, 0), "x,y");
    ck_assert_int_eq(fs_params_values_split(&vals, pp, pool, "none", &err), APR_SUCCESS);
    ck_assert_int_eq(vals->nelts, 0);

    pp = query_ok("id=a,,b");
    ck_assert_int_eq(fs_params_values_split(&vals, pp, pool, "id", &err), APR_EINVAL);
    ck_assert_ptr_null(vals);
    ck_assert_ptr_nonnull(strstr(err, "empty item"));
    pp = query_ok("id=a,");
    ck_assert_int_eq(fs_params_values_split(&vals, pp, pool, "id", &err), APR_EINVAL);
    pp = query_ok("id=");
    ck_assert_int_eq(fs_params_values_split(&vals, pp, pool, "id", &err), APR_EINVAL);
}
END_TEST

START_TEST(body_valid)
{
    fs_params_t *pp = body_ok(
        "{\"resourceType\":\"Parameters\",\"parameter\":["
        "{\"name\":\"id\",\"valueId\":\"sub-1\"},"
        "{\"name\":\"id\",\"valueString\":\"sub-2\",\"_valueString\":{\"id\":\"x\"}},"
        "{\"name\":\"status\",\"valueCode\":\"active\",\"extension\":[]},"
        "{\"name\":\"n\",\"valueInteger\":-42},"
        "{\"name\":\"u\",\"valueUnsignedInt\":0},"
        "{\"name\":\"big\",\"valueInteger64\":\"9007199254740993\"},"
        "{\"name\":\"big2\",\"valueInteger64\":12},"
        "{\"name\":\"d\",\"valueDecimal\":1.50},"
        "{\"name\":\"b\",\"valueBoolean\":false},"
        "{\"name\":\"url\",\"valueCanonical\":\"http://example.org/t\"},"
        "{\"name\":\"when\",\"valueInstant\":\"2026-01-01T00:00:00Z\"}]}");

    ck_assert_int_eq(pp->items->nelts, 11);
    check_item(pp, 0, "id", "sub-1");
    check_item(pp, 1, "id", "sub-2");
    check_item(pp, 2, "status", "active");
    check_item(pp, 3, "n", "-42");
    check_item(pp, 4, "u", "0");
    check_item(pp, 5, "big", "9007199254740993");
    check_item(pp, 6, "big2", "12");
    check_item(pp, 7, "d", "1.50");
    check_item(pp, 8, "b", "false");
    check_item(pp, 9, "url", "http://example.org/t");
    check_item(pp, 10, "when", "2026-01-01T00:00:00Z");
    ck_assert_int_eq(fs_params_values(pp, pool, "id")->nelts, 2);

    ck_assert_int_eq(body_ok("{\"resourceType\":\"Parameters\"}")->items->nelts, 0);
    ck_assert_int_eq(body_ok("{\"resourceType\":\"Parameters\",\"parameter\":[]}")
                     ->items->nelts, 0);
}
END_TEST

START_TEST(body_invalid)
{
    fs_params_t *pp = (fs_params_t *)1;
    const char *err = NULL;

    body_bad("{\"resourceType\":\"Patient\"}", "the body is a Patient");
    body_bad("{\"parameter\":[]}", "not a FHIR resource");
    body_bad("[]", "not a FHIR resource");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":{}}", "not an array");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[1]}",
             "parameter[0] is not a JSON object");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"valueId\":\"x\"}]}",
             "parameter[0] has no name");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":7,\"valueId\":\"x\"}]}",
             "has no name");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"\",\"valueId\":\"x\"}]}",
             "has no name");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"id\",\"valueId\":\"a\"},"
             "{\"name\":\"id\",\"valueId\":\"b\",\"valueString\":\"c\"}]}",
             "parameter[1] ('id'): more than one value");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"id\"}]}",
             "has no value[x]");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"id\","
             "\"part\":[{\"name\":\"x\",\"valueId\":\"y\"}]}]}", "'part' is not supported");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"r\","
             "\"resource\":{\"resourceType\":\"Patient\"}}]}", "'resource' is not supported");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"r\","
             "\"valueReference\":{\"reference\":\"Patient/1\"}}]}",
             "'valueReference' is not supported");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"id\","
             "\"valueId\":\"x\",\"modifierExtension\":[]}]}", "'modifierExtension'");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"id\","
             "\"valueId\":\"x\",\"foo\":1}]}", "'foo'");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"n\","
             "\"valueInteger\":\"12\"}]}", "valueInteger is not a JSON integer");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"n\","
             "\"valueInteger\":4294967296}]}", "32-bit");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"n\","
             "\"valuePositiveInt\":0}]}", "not positive");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"n\","
             "\"valueInteger64\":\"12x\"}]}", "not a 64-bit integer");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"n\","
             "\"valueInteger64\":\"99999999999999999999\"}]}", "not a 64-bit integer");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"s\","
             "\"valueString\":\"\"}]}", "is empty");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"s\","
             "\"valueString\":\"a\\u0000b\"}]}", "NUL");
    body_bad("{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"s\","
             "\"valueBoolean\":\"true\"}]}", "not a JSON boolean");
    ck_assert_int_eq(fs_params_from_body(&pp, pool, NULL, &err), APR_EINVAL);
    ck_assert_ptr_null(pp);
}
END_TEST

START_TEST(check_names)
{
    static const char *const allowed[] = { "id", "status", NULL };
    fs_params_t *pp;
    const char *err = NULL;

    pp = query_ok("id=1&status=active&_format=json&_pretty=true&id=2");
    ck_assert_int_eq(fs_params_check(pp, allowed, &err), APR_SUCCESS);
    ck_assert_int_eq(fs_params_check(query_ok(""), allowed, &err), APR_SUCCESS);

    pp = query_ok("id=1&ids=2");
    ck_assert_int_eq(fs_params_check(pp, allowed, &err), APR_EINVAL);
    ck_assert_str_eq(err, "unknown parameter 'ids' (allowed: id, status, _format, _pretty)");

    /* we do not filter output, so asking for it is refused rather than ignored */
    pp = query_ok("_summary=true");
    ck_assert_int_eq(fs_params_check(pp, allowed, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'_summary'"));

    pp = body_ok("{\"resourceType\":\"Parameters\",\"parameter\":["
                 "{\"name\":\"token\",\"valueString\":\"x\"}]}");
    ck_assert_int_eq(fs_params_check(pp, allowed, &err), APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'token'"));

    /* unprintable bytes of a name never reach the message */
    pp = query_ok("%c3%a9%0a=1");
    ck_assert_int_eq(fs_params_check(pp, allowed, &err), APR_EINVAL);
    ck_assert_str_eq(err, "unknown parameter '??" "?' (allowed: id, status, _format, _pretty)");
}
END_TEST

START_TEST(fhir_id)
{
    char id[FS_FHIR_ID_MAX + 2];

    memset(id, 'a', sizeof(id));
    id[FS_FHIR_ID_MAX] = '\0';
    ck_assert(fs_fhir_id_valid(id));
    id[FS_FHIR_ID_MAX] = 'a';
    id[FS_FHIR_ID_MAX + 1] = '\0';
    ck_assert(!fs_fhir_id_valid(id));
    ck_assert(fs_fhir_id_valid("a"));
    ck_assert(fs_fhir_id_valid("Sub-1.v2"));
    ck_assert(fs_fhir_id_valid("6f1c0b2e-9d1a-4c55-8f0e-0c2b1e0a9d11"));
    ck_assert(!fs_fhir_id_valid(""));
    ck_assert(!fs_fhir_id_valid(NULL));
    ck_assert(!fs_fhir_id_valid("1'; DROP TABLE subscription;--"));
    ck_assert(!fs_fhir_id_valid("a'b"));
    ck_assert(!fs_fhir_id_valid("a\"b"));
    ck_assert(!fs_fhir_id_valid("a;b"));
    ck_assert(!fs_fhir_id_valid("a b"));
    ck_assert(!fs_fhir_id_valid("a_b"));
    ck_assert(!fs_fhir_id_valid("a/b"));
    ck_assert(!fs_fhir_id_valid("a%b"));
    ck_assert(!fs_fhir_id_valid("a,b"));
    ck_assert(!fs_fhir_id_valid("\xc3\xa9"));
}
END_TEST

START_TEST(fhir_status_codes)
{
    static const char *const common[] = { "requested", "active", "error", "off", NULL };
    int i;

    for (i = 0; common[i]; ++i) {
        ck_assert(fs_fhir_status_code_valid(FS_FHIR_R4, common[i]));
        ck_assert(fs_fhir_status_code_valid(FS_FHIR_R5, common[i]));
    }
    ck_assert(!fs_fhir_status_code_valid(FS_FHIR_R4, "entered-in-error"));
    ck_assert(fs_fhir_status_code_valid(FS_FHIR_R5, "entered-in-error"));
    ck_assert(!fs_fhir_status_code_valid(FS_FHIR_R5, "Active"));
    ck_assert(!fs_fhir_status_code_valid(FS_FHIR_R5, ""));
    ck_assert(!fs_fhir_status_code_valid(FS_FHIR_R5, NULL));
    ck_assert_str_eq(fs_fhir_version_str(FS_FHIR_R4), "4.0.1");
    ck_assert_str_eq(fs_fhir_version_str(FS_FHIR_R5), "5.0.0");
    ck_assert_ptr_null(fs_fhir_version_str((fs_fhir_version_t)3));
}
END_TEST

static Suite *params_suite(void)
{
    Suite *s = suite_create("params");
    TCase *tc = tcase_create("params");

    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, query_basic);
    tcase_add_test(tc, query_edges);
    tcase_add_test(tc, query_invalid);
    tcase_add_test(tc, query_split);
    tcase_add_test(tc, list_matches);
    tcase_add_test(tc, body_valid);
    tcase_add_test(tc, body_invalid);
    tcase_add_test(tc, check_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("fhir");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, fhir_id);
    tcase_add_test(tc, fhir_status_codes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(params_suite());
}
