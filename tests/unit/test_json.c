/* Unit tests: fs_json (strict parsing, serialisation, typed getters). */
#include <stdlib.h>
#include <string.h>
#include <check.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "fs_check.h"
#include "../../src/core/fs_json.h"

/* ---- helpers ----------------------------------------------------------------------- */

static json_object *parse_len_ok(const char *text, apr_size_t len)
{
    json_object *j = (json_object *)1;
    const char *err = NULL;
    apr_status_t rv = fs_json_parse(&j, pool, text, len, &err);
    ck_assert_msg(rv == APR_SUCCESS, "rejected '%.*s': %s", (int)len, text,
                  err ? err : "(no message)");
    return j;
}

static json_object *parse_ok(const char *text)
{
    return parse_len_ok(text, strlen(text));
}

static void parse_len_bad(const char *text, apr_size_t len, const char *fragment)
{
    json_object *j = (json_object *)1;
    const char *err = NULL;
    apr_status_t rv = fs_json_parse(&j, pool, text, len, &err);
    ck_assert_msg(rv == APR_EINVAL, "'%.*s' accepted (rv %d)", (int)len, text ? text : "",
                  rv);
    ck_assert_ptr_null(j);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, fragment) != NULL, "'%.*s': message '%s' lacks '%s'",
                  (int)len, text ? text : "", err, fragment);
}

static void parse_bad(const char *text, const char *fragment)
{
    parse_len_bad(text, strlen(text), fragment);
}

/* Serialised form of a parsed document: the round trip through fs_json_str. */
static const char *round_trip(const char *text)
{
    return fs_json_str(pool, parse_ok(text));
}

/* n nested arrays, e.g. "[[[]]]" for 3. */
static const char *nested_arrays(int n)
{
    char *s = apr_palloc(pool, (apr_size_t)(2 * n + 1));
    memset(s, '[', (size_t)n);
    memset(s + n, ']', (size_t)n);
    s[2 * n] = '\0';
    return s;
}

/* ---- valid documents --------------------------------------------------------------- */

START_TEST(valid_documents)
{
    json_object *j;

    j = parse_ok("{\"resourceType\":\"Subscription\",\"a\":[1,2,{\"b\":null}]}");
    ck_assert(json_object_is_type(j, json_type_object));
    ck_assert_str_eq(fs_json_get_str(j, "resourceType"), "Subscription");
    ck_assert_str_eq(round_trip(" \t\r\n{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \n"),
                     "{\"a\":[1,2],\"b\":{}}");
    ck_assert_str_eq(round_trip("[]"), "[]");
    ck_assert_str_eq(round_trip("{}"), "{}");
    /* numbers in every form RFC 8259 allows keep their text */
    ck_assert_str_eq(round_trip("[0,-0,12,-7,1.5,-0.25,1e5,1E+5,2.5e-3,0.0e-0,"
                                "9223372036854775807,-9223372036854775808,1e308]"),
                     "[0,0,12,-7,1.5,-0.25,1e5,1E+5,2.5e-3,0.0e-0,"
                     "9223372036854775807,-9223372036854775808,1e308]");
    /* escapes, unicode, surrogate pairs */
    j = parse_ok("{\"s\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\xc3\xa9\"}");
    ck_assert_str_eq(fs_json_get_str(j, "s"),
                     "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80\xc3\xa9");
    /* a colon or brace inside a string is no structure */
    j = parse_ok("{\"k:{\":\"v:[}\",\"x\":\"'\"}");
    ck_assert_str_eq(fs_json_get_str(j, "k:{"), "v:[}");
    ck_assert_str_eq(fs_json_get_str(j, "x"), "'");
}
END_TEST

/* json-c waits for more input after a top-level number or literal: 42 must not be
 * "unexpected end". */
START_TEST(bare_values)
{
    json_object *j;
    apr_int64_t v = 0;

    j = parse_ok("42");
    ck_assert(json_object_is_type(j, json_type_int));
    ck_assert_int_eq(json_object_get_int64(j), 42);
    j = parse_ok("  -17  \n");
    ck_assert_int_eq(json_object_get_int64(j), -17);
    j = parse_ok("0");
    ck_assert_int_eq(json_object_get_int64(j), 0);
    j = parse_ok("-1.5");
    ck_assert(json_object_is_type(j, json_type_double));
    ck_assert_double_eq(json_object_get_double(j), -1.5);
    j = parse_ok("1e3");
    ck_assert_double_eq(json_object_get_double(j), 1000.0);
    j = parse_ok("true");
    ck_assert(json_object_is_type(j, json_type_boolean));
    ck_assert(json_object_get_boolean(j));
    j = parse_ok("false");
    ck_assert(!json_object_get_boolean(j));
    j = parse_ok("\"x\"");
    ck_assert_str_eq(json_object_get_string(j), "x");
    /* null is valid JSON: success with no object (json-c has no null object) */
    j = parse_ok("null");
    ck_assert_ptr_null(j);
    j = parse_ok(" null ");
    ck_assert_ptr_null(j);
    ck_assert_int_eq(fs_json_get_int64(j, "a", &v), APR_ENOENT);
    ck_assert_ptr_null(fs_json_get_str(j, "a"));
    /* incomplete bare values stay errors */
    parse_bad("tru", "unexpected end");
    parse_bad("nul", "unexpected end");
    parse_bad("-", "invalid JSON");
    parse_bad("1e", "invalid JSON");
    parse_bad("1e+", "invalid JSON");
    parse_bad("\"abc", "unexpected end");
    parse_bad("42 43", "invalid JSON at offset 3");
    parse_bad("truex", "invalid JSON");
    parse_bad("nullnull", "invalid JSON");
}
END_TEST

/* The buffer need not be NUL-terminated at len and nothing past len counts. */
START_TEST(length_bounds)
{
    static const char buf[] = "42x{\"a\":1}GARBAGE";
    char *copy;
    json_object *j;

    j = parse_len_ok(buf, 2);
    ck_assert_int_eq(json_object_get_int64(j), 42);
    j = parse_len_ok(buf + 3, 7);
    ck_assert(json_object_is_type(j, json_type_object));
    j = parse_len_ok("nullx", 4);
    ck_assert_ptr_null(j);
    j = parse_len_ok("truefalse", 4);
    ck_assert(json_object_get_boolean(j));
    /* an unterminated copy in the heap (no NUL anywhere after it) */
    copy = malloc(3);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, "123", 3);
    j = parse_len_ok(copy, 3);
    ck_assert_int_eq(json_object_get_int64(j), 123);
    j = parse_len_ok(copy, 2);
    ck_assert_int_eq(json_object_get_int64(j), 12);
    free(copy);
    parse_len_bad("{\"a\":1}", 6, "unexpected end");
    /* a NUL inside len is data, not an end marker */
    parse_len_bad("{}\0", 3, "trailing data");
    parse_len_bad("42\0", 3, "trailing data");
    parse_len_bad("{}\0xyz", 6, "trailing data");
    parse_len_bad("{\"a\":\"x\0y\"}", 11, "invalid JSON");
    parse_len_bad("\0{}", 3, "invalid JSON");
}
END_TEST

START_TEST(empty_input)
{
    parse_len_bad(NULL, 0, "empty body");
    parse_bad("", "empty body");
    parse_bad(" \t\r\n ", "empty body");
}
END_TEST

/* NaN, Infinity and numbers that overflow a double: json-c STRICT takes them. */
START_TEST(non_finite_numbers)
{
    parse_bad("NaN", "not finite");
    parse_bad("Infinity", "not finite");
    parse_bad("-Infinity", "not finite");
    parse_bad("[1,NaN]", "not finite");
    parse_bad("{\"a\":{\"b\":[Infinity]}}", "not finite");
    parse_bad("{\"a\":-Infinity}", "not finite");
    parse_bad("1e999", "not finite");
    parse_bad("-1e999", "not finite");
    parse_bad("{\"valueDecimal\":1E400}", "'1E400' is not finite");
    parse_bad("[10e308]", "not finite");
    /* the lenient spellings json-c knows are still errors */
    parse_bad("nan", "invalid JSON");
    parse_bad("-nan", "invalid JSON");
    parse_bad("infinity", "invalid JSON");
    parse_bad("[inf]", "invalid JSON");
    /* tiny magnitudes underflow to 0, which is finite */
    ck_assert_str_eq(round_trip("[1e-400]"), "[1e-400]");
}
END_TEST

/* Number syntax json-c accepts although RFC 8259 does not; integers json-c clamps. */
START_TEST(number_syntax)
{
    apr_int64_t v = 0;
    json_object *j;

    parse_bad("1.", "digit expected after '.'");
    parse_bad("[1.]", "digit expected after '.'");
    parse_bad("{\"a\":1.e5}", "digit expected after '.'");
    parse_bad("-01", "leading zeros");
    parse_bad("01", "invalid JSON");
    parse_bad("[00]", "invalid JSON");
    parse_bad(".5", "invalid JSON");
    parse_bad("+1", "invalid JSON");
    parse_bad("0x10", "invalid JSON");
    parse_bad("1.5.5", "invalid JSON");
    parse_bad("--1", "invalid JSON");
    parse_bad("[-]", "invalid JSON");
    /* outside int64: json-c would clamp to INT64_MIN / UINT64_MAX */
    parse_bad("9223372036854775808", "integer out of range");
    parse_bad("-9223372036854775809", "integer out of range");
    parse_bad("{\"n\":99999999999999999999}", "integer out of range");
    parse_bad("[18446744073709551615]", "integer out of range");
    parse_bad("123456789012345678901234567890", "integer out of range");
    /* the limits themselves are exact */
    j = parse_ok("{\"max\":9223372036854775807,\"min\":-9223372036854775808}");
    ck_assert_int_eq(fs_json_get_int64(j, "max", &v), APR_SUCCESS);
    ck_assert(v == APR_INT64_MAX);
    ck_assert_int_eq(fs_json_get_int64(j, "min", &v), APR_SUCCESS);
    ck_assert(v == APR_INT64_MIN);
    /* a big decimal written with a fraction stays a double, kept as written */
    ck_assert_str_eq(round_trip("[99999999999999999999.0]"), "[99999999999999999999.0]");
}
END_TEST

START_TEST(syntax_errors)
{
    json_object *j;

    /* trailing commas */
    parse_bad("[1,2,]", "invalid JSON");
    parse_bad("{\"a\":1,}", "invalid JSON");
    parse_bad("[,1]", "invalid JSON");
    parse_bad("{,}", "invalid JSON");
    /* single quotes, as value and as member name (json-c STRICT takes the latter) */
    parse_bad("'x'", "invalid JSON");
    parse_bad("[\"a\",'b']", "invalid JSON");
    parse_bad("{\"a\":'b'}", "invalid JSON");
    parse_bad("{'a':1}", "single quotes");
    parse_bad("{\"x\":{'a':1}}", "single quotes");
    /* comments */
    parse_bad("{\"a\":1}//c", "invalid JSON");
    parse_bad("/*c*/{}", "invalid JSON");
    parse_bad("{\"a\":/*c*/1}", "invalid JSON");
    parse_bad("{\"a\":1 # c\n}", "invalid JSON");
    /* trailing data */
    parse_bad("{} x", "invalid JSON at offset 3");
    parse_bad("{}{}", "invalid JSON at offset 2");
    parse_bad("[1] [2]", "invalid JSON at offset 4");
    parse_bad("\"a\" \"b\"", "invalid JSON at offset 4");
    /* structure */
    parse_bad("{", "unexpected end");
    parse_bad("[1", "unexpected end");
    parse_bad("{\"a\":", "unexpected end");
    parse_bad("{\"a\"}", "invalid JSON");
    parse_bad("{a:1}", "invalid JSON");
    parse_bad("[1 2]", "invalid JSON");
    parse_bad("]", "invalid JSON");
    parse_bad("{\"a\":1]", "invalid JSON");
    parse_bad("<Subscription xmlns=\"http://hl7.org/fhir\"/>", "invalid JSON");
    /* strings */
    parse_bad("\"\\x\"", "invalid JSON");
    parse_bad("\"a\nb\"", "control character");
    parse_bad("{\"a\":\"tab\there\"}", "control character");
    parse_bad("{\"a\nb\":1}", "control character");
    /* \u0000 is valid JSON; readers check the length (fs_params, fs_token) */
    j = parse_ok("[\"a\\u0000b\"]");
    ck_assert_int_eq(json_object_get_string_len(json_object_array_get_idx(j, 0)), 3);
    ck_assert_str_eq(fs_json_get_str(parse_ok("{\"a\":\"\\\\u0000\"}"), "a"), "\\u0000");
    /* not UTF-8 */
    parse_bad("\"\xff\"", "invalid JSON");
    parse_bad("{\"a\":\"\xc3\"}", "invalid JSON");
    parse_bad("[\"\xc0\xaf\"]", "invalid UTF-8");
    parse_bad("[\"\xe0\x80\xaf\"]", "invalid UTF-8");
    parse_bad("[\"\xed\xa0\x80\"]", "invalid UTF-8");
    parse_bad("[\"\xf4\x90\x80\x80\"]", "invalid UTF-8");
    parse_bad("[\"\xe2\x82\"]", "invalid");
    parse_ok("[\"\xe2\x82\xac \xf0\x9f\x98\x80 \xef\xbf\xbd \xf4\x8f\xbf\xbf\"]");
}
END_TEST

/* FHIR forbids repeated member names; json-c would keep the last silently. */
START_TEST(duplicate_members)
{
    json_object *j;

    parse_bad("{\"a\":1,\"a\":2}", "duplicate member \"a\"");
    parse_bad("{\"id\":\"x\",\"status\":\"active\",\"id\":\"y\"}", "duplicate member \"id\"");
    parse_bad("{\"x\":{\"b\":1,\"c\":2,\"b\":3}}", "duplicate member \"b\"");
    parse_bad("[{\"a\":1},{\"k\":[],\"k\":{}}]", "duplicate member \"k\"");
    /* an escaped spelling of the same name */
    parse_bad("{\"a\":1,\"\\u0061\":2}", "duplicate member \"a\"");
    parse_bad("{\"\\u00e9\":1,\"\xc3\xa9\":2}", "duplicate member \"\xc3\xa9\"");
    /* the same value twice in a row is still a duplicate */
    parse_bad("{\"a\":null,\"a\":null}", "duplicate member");
    /* the same name in different objects, or as a value, is fine */
    j = parse_ok("{\"a\":{\"a\":1},\"b\":{\"a\":2},\"c\":[{\"a\":3},{\"a\":4}],"
                 "\"d\":\"a\",\"e\":[\"a\",\"a\"]}");
    ck_assert_int_eq(json_object_object_length(j), 5);
    parse_ok("{\"a\":\"b\",\"b\":\"a\"}");
    parse_ok("{\"a:\":1,\"a\":2}");
    parse_ok("{\"A\":1,\"a\":2}");
}
END_TEST

START_TEST(nesting_depth)
{
    json_object *j;
    const char *obj, *arr;
    int i;

    j = parse_ok(nested_arrays(64));
    ck_assert(json_object_is_type(j, json_type_array));
    parse_ok(apr_pstrcat(pool, "[", nested_arrays(62), ",1,\"x\",[1]]", NULL));
    arr = nested_arrays(64);
    parse_ok(apr_pstrcat(pool, apr_pstrndup(pool, arr, 64), "1", arr + 64, NULL));
    parse_bad(nested_arrays(65), "at offset 64: nesting deeper than 64 levels");
    parse_bad(nested_arrays(66), "nesting deeper than 64 levels");
    parse_bad(nested_arrays(1000), "nesting deeper than 64 levels");
    /* objects count as well */
    obj = "1";
    for (i = 0; i < 64; ++i) obj = apr_pstrcat(pool, "{\"a\":", obj, "}", NULL);
    parse_ok(obj);
    parse_bad(apr_pstrcat(pool, "[", obj, "]", NULL), "nesting deeper than 64 levels");
}
END_TEST

/* The pool owns the parsed tree and releases it at cleanup. */
START_TEST(pool_ownership)
{
    apr_pool_t *sub;
    json_object *j;
    const char *err = NULL;

    ck_assert_int_eq(apr_pool_create(&sub, pool), APR_SUCCESS);
    ck_assert_int_eq(fs_json_parse(&j, sub, "{\"a\":[1]}", 9, &err), APR_SUCCESS);
    json_object_get(j);
    apr_pool_destroy(sub);
    /* ours was the last reference: the pool dropped its own */
    ck_assert_int_eq(json_object_put(j), 1);

    ck_assert_int_eq(apr_pool_create(&sub, pool), APR_SUCCESS);
    j = fs_json_pool_own(sub, json_object_new_object());
    json_object_get(j);
    apr_pool_destroy(sub);
    ck_assert_int_eq(json_object_put(j), 1);
    ck_assert_ptr_null(fs_json_pool_own(pool, NULL));
}
END_TEST

/* ---- serialisation and getters ----------------------------------------------------- */

START_TEST(str_no_slash_escape)
{
    json_object *j = fs_json_pool_own(pool, json_object_new_object());
    const char *s;

    fs_json_add_str(j, "url", "http://example.org/fhir/Subscription/1");
    fs_json_add_str(j, "none", NULL);
    json_object_object_add(j, "n", json_object_new_int64(5));
    s = fs_json_str(pool, j);
    ck_assert_str_eq(s, "{\"url\":\"http://example.org/fhir/Subscription/1\",\"none\":\"\","
                        "\"n\":5}");
    ck_assert_ptr_null(strstr(s, "\\/"));
    /* an escaped slash on input comes out plain; quotes and controls stay escaped */
    ck_assert_str_eq(round_trip("{\"u\":\"a\\/b\",\"q\":\"x\\\"y\\n\"}"),
                     "{\"u\":\"a/b\",\"q\":\"x\\\"y\\n\"}");
    /* the copy belongs to the pool and survives changes to the object */
    fs_json_add_str(j, "url", "changed");
    ck_assert_str_eq(s, "{\"url\":\"http://example.org/fhir/Subscription/1\",\"none\":\"\","
                        "\"n\":5}");
}
END_TEST

START_TEST(getters)
{
    json_object *j = parse_ok("{\"i\":42,\"neg\":-3,\"big\":9007199254740993,\"d\":1.5,"
                              "\"d0\":2.0,\"s\":\"123\",\"b\":true,\"n\":null,\"o\":{},"
                              "\"a\":[1]}");
    apr_int64_t v = 7;

    ck_assert_int_eq(fs_json_get_int64(j, "i", &v), APR_SUCCESS);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(fs_json_get_int64(j, "neg", &v), APR_SUCCESS);
    ck_assert_int_eq(v, -3);
    ck_assert_int_eq(fs_json_get_int64(j, "big", &v), APR_SUCCESS);
    ck_assert(v == APR_INT64_C(9007199254740993));
    v = 7;
    ck_assert_int_eq(fs_json_get_int64(j, "missing", &v), APR_ENOENT);
    ck_assert_int_eq(fs_json_get_int64(j, "d", &v), APR_EINVAL);
    ck_assert_int_eq(fs_json_get_int64(j, "d0", &v), APR_EINVAL);
    ck_assert_int_eq(fs_json_get_int64(j, "s", &v), APR_EINVAL);
    ck_assert_int_eq(fs_json_get_int64(j, "b", &v), APR_EINVAL);
    ck_assert_int_eq(fs_json_get_int64(j, "n", &v), APR_EINVAL);
    ck_assert_int_eq(fs_json_get_int64(j, "o", &v), APR_EINVAL);
    ck_assert_int_eq(fs_json_get_int64(j, "a", &v), APR_EINVAL);
    ck_assert_int_eq(v, 7);
    ck_assert_int_eq(fs_json_get_int64(NULL, "i", &v), APR_ENOENT);

    ck_assert_str_eq(fs_json_get_str(j, "s"), "123");
    ck_assert_ptr_null(fs_json_get_str(j, "i"));
    ck_assert_ptr_null(fs_json_get_str(j, "missing"));
    ck_assert_ptr_null(fs_json_get_str(NULL, "s"));
    ck_assert_ptr_null(fs_json_get_str(json_object_object_get(j, "a"), "s"));
    ck_assert_ptr_nonnull(fs_json_get_typed(j, "o", json_type_object));
    ck_assert_ptr_nonnull(fs_json_get_typed(j, "a", json_type_array));
    ck_assert_ptr_nonnull(fs_json_get_typed(j, "d", json_type_double));
    ck_assert_ptr_null(fs_json_get_typed(j, "a", json_type_object));
    ck_assert_ptr_null(fs_json_get_typed(j, "i", json_type_double));
    /* null members are present but have no object */
    ck_assert_ptr_null(fs_json_get_typed(j, "n", json_type_object));
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("parse");

    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, valid_documents);
    tcase_add_test(tc, bare_values);
    tcase_add_test(tc, length_bounds);
    tcase_add_test(tc, empty_input);
    tcase_add_test(tc, non_finite_numbers);
    tcase_add_test(tc, number_syntax);
    tcase_add_test(tc, syntax_errors);
    tcase_add_test(tc, duplicate_members);
    tcase_add_test(tc, nesting_depth);
    tcase_add_test(tc, pool_ownership);
    suite_add_tcase(s, tc);

    tc = tcase_create("access");
    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, str_no_slash_escape);
    tcase_add_test(tc, getters);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(json_suite());
}
