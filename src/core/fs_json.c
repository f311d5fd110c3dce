#include <errno.h>
#include <math.h>
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "fs_json.h"

static apr_status_t json_put_cleanup(void *data)
{
    json_object_put((json_object *)data);
    return APR_SUCCESS;
}

json_object *fs_json_pool_own(apr_pool_t *p, json_object *j)
{
    if (j) {
        apr_pool_cleanup_register(p, j, json_put_cleanup, apr_pool_cleanup_null);
    }
    return j;
}

static int only_whitespace(const char *s, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i < len; ++i) {
        /* not strchr(" \t\r\n", c): it finds a NUL byte too */
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    }
    return 1;
}

/* Deepest nesting of arrays and objects accepted. json-c counts every value on its
 * stack, the scalar in the innermost container too, so it gets one level more and
 * lex_check counts the containers. */
#define FS_JSON_MAX_DEPTH 64

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: shortest form, no
 * surrogates, at most U+10FFFF), 0 when it is not one. json-c's own check lets
 * overlong forms such as C0 AF through, which PostgreSQL would refuse later. */
static apr_size_t utf8_seq(const unsigned char *s, apr_size_t avail)
{
    apr_size_t n, k;
    unsigned lo = 0x80, hi = 0xBF;

    if (s[0] < 0x80) return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) n = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        if (s[0] == 0xE0) lo = 0xA0;
        if (s[0] == 0xED) hi = 0x9F;
    }
    else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        if (s[0] == 0xF0) lo = 0x90;
        if (s[0] == 0xF4) hi = 0x8F;
    }
    else return 0;
    if (avail < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (k = 2; k < n; ++k) {
        if (s[k] < 0x80 || s[k] > 0xBF) return 0;
    }
    return n;
}

/* An integer literal s[0..n) (optional '-', no fraction or exponent) that fits in an
 * int64; json-c silently clamps the others to INT64_MIN / UINT64_MAX. */
static int int_in_range(const char *s, apr_size_t n)
{
    char buf[24];
    char *end;
    apr_size_t digits = n - (s[0] == '-');
    if (digits > 19) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    (void)apr_strtoi64(buf, &end, 10);
    return errno != ERANGE;
}

/* The second, lexical pass over text json-c already accepted in strict mode. It
 * rejects what json-c 0.16 lets through although RFC 8259 forbids it: single-quoted
 * member names, raw control characters or ill-formed UTF-8 in strings, numbers such as "1.", "1.e5" or
 * "-01", integers outside the int64 range. It also counts the member names (one ':'
 * outside strings per member). Strings holding \u0000 are valid JSON and pass: their
 * readers compare json_object_get_string_len with strlen (fs_params, fs_token). */
static apr_status_t lex_check(apr_pool_t *p, const char *s, apr_size_t len,
                              apr_size_t *pkeys, const char **perr)
{
    apr_size_t i = 0, j, keys = 0;
    int depth = 0;

    while (i < len) {
        char c = s[i];
        if (c == '"') {
            for (j = i + 1; j < len && s[j] != '"'; ++j) {
                if ((unsigned char)s[j] < 0x20) {
                    *perr = apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT
                                         ": control character in a string (escape it)", j);
                    return APR_EINVAL;
                }
                if ((unsigned char)s[j] >= 0x80) {
                    apr_size_t n = utf8_seq((const unsigned char *)s + j, len - j);
                    if (!n) {
                        *perr = apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT
                                             ": invalid UTF-8 in a string", j);
                        return APR_EINVAL;
                    }
                    j += n - 1;
                    continue;
                }
                if (s[j] == '\\') ++j;
            }
            i = j + 1;
            continue;
        }
        if (c == '\'') {
            *perr = apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT
                                 ": single quotes are not JSON, use double quotes", i);
            return APR_EINVAL;
        }
        if (c == ':') {
            ++keys;
        }
        else if (c == '{' || c == '[') {
            if (++depth > FS_JSON_MAX_DEPTH) {
                *perr = apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT
                                     ": nesting deeper than %d levels", i,
                                     FS_JSON_MAX_DEPTH);
                return APR_EINVAL;
            }
        }
        else if (c == '}' || c == ']') {
            --depth;
        }
        else if (c == '-' || is_digit(c)) {
            int integer = 1;
            const char *bad = NULL;
            j = i + (c == '-');
            if (j < len && s[j] == '0') {
                ++j;
                if (j < len && is_digit(s[j])) bad = "leading zeros are not allowed";
            }
            else if (j < len && is_digit(s[j])) {
                while (j < len && is_digit(s[j])) ++j;
            }
            else if (j < len && (s[j] == 'I' || s[j] == 'i')) {
                /* -Infinity: left to the tree walk, which names it */
                i = j;
                continue;
            }
            else {
                bad = "digit expected";
            }
            if (!bad && j < len && s[j] == '.') {
                integer = 0;
                if (++j >= len || !is_digit(s[j])) bad = "digit expected after '.'";
                while (j < len && is_digit(s[j])) ++j;
            }
            if (!bad && j < len && (s[j] == 'e' || s[j] == 'E')) {
                integer = 0;
                ++j;
                if (j < len && (s[j] == '+' || s[j] == '-')) ++j;
                if (j >= len || !is_digit(s[j])) bad = "digit expected in the exponent";
                while (j < len && is_digit(s[j])) ++j;
            }
            if (!bad && integer && !int_in_range(s + i, j - i)) {
                bad = "integer out of range (at most 19 digits, within 64 bits)";
            }
            if (bad) {
                *perr = apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT
                                     ": number '%.*s': %s", i,
                                     (int)(j - i > 40 ? 40 : (j > i ? j - i : 1)), s + i, bad);
                return APR_EINVAL;
            }
            i = j;
            continue;
        }
        ++i;
    }
    *pkeys = keys;
    return APR_SUCCESS;
}

/* Reject what no JSON text may hold: NaN and +-Infinity (json-c accepts them in strict
 * mode) and numbers whose magnitude overflows a double (1e999 becomes Infinity).
 * Counts the members of every object. */
static apr_status_t tree_check(apr_pool_t *p, json_object *j, apr_size_t *pmembers,
                               const char **perr)
{
    apr_status_t rv = APR_SUCCESS;
    size_t i, n;

    switch (json_object_get_type(j)) {
    case json_type_double: {
        double d = json_object_get_double(j);
        if (isnan(d) || isinf(d)) {
            *perr = apr_psprintf(p, "invalid JSON: number '%s' is not finite (NaN, Infinity "
                                 "and values beyond the double range are not allowed)",
                                 json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
            return APR_EINVAL;
        }
        break;
    }
    case json_type_array:
        n = json_object_array_length(j);
        for (i = 0; i < n && rv == APR_SUCCESS; ++i) {
            rv = tree_check(p, json_object_array_get_idx(j, i), pmembers, perr);
        }
        break;
    case json_type_object: {
        struct json_object_iterator it = json_object_iter_begin(j);
        struct json_object_iterator end = json_object_iter_end(j);
        for (; rv == APR_SUCCESS && !json_object_iter_equal(&it, &end);
             json_object_iter_next(&it)) {
            ++*pmembers;
            rv = tree_check(p, json_object_iter_peek_value(&it), pmembers, perr);
        }
        break;
    }
    default:
        break;
    }
    return rv;
}

/* The member name of a string token s[0..n) (quotes included), unescaped. */
static const char *member_name(apr_pool_t *p, const char *s, apr_size_t n)
{
    json_object *k;
    const char *name;

    if (!memchr(s, '\\', n)) return apr_pstrmemdup(p, s + 1, n - 2);
    k = json_tokener_parse(apr_pstrmemdup(p, s, n));
    name = apr_pstrdup(p, k ? json_object_get_string(k) : "?");
    json_object_put(k);
    return name;
}

/* There is a duplicate member (json-c kept the last one); find its name and offset.
 * Only runs on text both passes accepted, so its structure is sound. */
static const char *find_duplicate(apr_pool_t *p, const char *s, apr_size_t len)
{
    apr_hash_t *names[FS_JSON_MAX_DEPTH + 1];
    int expect_name[FS_JSON_MAX_DEPTH + 1];
    int depth = -1;
    apr_size_t i = 0, j;

    while (i < len) {
        char c = s[i];
        if (c == '"') {
            for (j = i + 1; j < len && s[j] != '"'; ++j) {
                if (s[j] == '\\') ++j;
            }
            if (depth >= 0 && names[depth] && expect_name[depth]) {
                const char *name = member_name(p, s + i, j + 1 - i);
                if (apr_hash_get(names[depth], name, APR_HASH_KEY_STRING)) {
                    return apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT
                                        ": duplicate member \"%s\"", i, name);
                }
                apr_hash_set(names[depth], name, APR_HASH_KEY_STRING, "");
                expect_name[depth] = 0;
            }
            i = j + 1;
            continue;
        }
        if ((c == '{' || c == '[') && depth < FS_JSON_MAX_DEPTH) {
            ++depth;
            names[depth] = c == '{' ? apr_hash_make(p) : NULL;
            expect_name[depth] = c == '{';
        }
        else if ((c == '}' || c == ']') && depth >= 0) {
            --depth;
        }
        else if (c == ',' && depth >= 0 && names[depth]) {
            expect_name[depth] = 1;
        }
        ++i;
    }
    return "invalid JSON: duplicate member";
}

/* Any JSON value may stand at the top level; a top-level `null` succeeds with
 * *pj == NULL (json-c has no null object), which callers treat as "not an object".
 * json-c checks the grammar (strict mode, UTF-8, depth); lex_check and tree_check
 * add what it lets through, and duplicate member names are refused (FHIR forbids
 * them; json-c would silently keep the last). */
apr_status_t fs_json_parse(json_object **pj, apr_pool_t *p, const char *text,
                           apr_size_t len, const char **perr)
{
    json_tokener *tok;
    json_object *j;
    enum json_tokener_error jerr;
    apr_size_t used, keys = 0, members = 0;

    *pj = NULL;
    *perr = NULL;
    if (!text || len == 0 || only_whitespace(text, len)) {
        *perr = "empty body, a JSON document was expected";
        return APR_EINVAL;
    }
    if (len > INT32_MAX) {
        *perr = "JSON document too large";
        return APR_EINVAL;
    }
    tok = json_tokener_new_ex(FS_JSON_MAX_DEPTH + 1);
    if (!tok) return APR_ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    j = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    used = (apr_size_t)json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        /* All input was consumed but json-c cannot tell whether a top-level number or
         * literal ("42", "null") is complete: a NUL marks the end of the document. */
        j = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
    }
    if (jerr == json_tokener_continue || jerr == json_tokener_error_parse_eof) {
        *perr = "invalid JSON: unexpected end of document";
    }
    else if (jerr == json_tokener_error_depth) {
        *perr = apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT
                             ": nesting deeper than %d levels", used, FS_JSON_MAX_DEPTH);
    }
    else if (jerr != json_tokener_success) {
        *perr = apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT ": %s",
                             used, json_tokener_error_desc(jerr));
    }
    else if (!only_whitespace(text + used, len - used)) {
        *perr = apr_psprintf(p, "invalid JSON: trailing data at offset %"
                             APR_SIZE_T_FMT, used);
    }
    json_tokener_free(tok);
    if (*perr || jerr != json_tokener_success) {
        if (j) json_object_put(j);
        if (!*perr) *perr = "invalid JSON";
        return APR_EINVAL;
    }
    /* json null parses to a NULL object: nothing to walk or own. */
    if (APR_SUCCESS != lex_check(p, text, used, &keys, perr)
        || APR_SUCCESS != tree_check(p, j, &members, perr)) {
        json_object_put(j);
        return APR_EINVAL;
    }
    if (members != keys) {
        *perr = find_duplicate(p, text, used);
        json_object_put(j);
        return APR_EINVAL;
    }
    *pj = fs_json_pool_own(p, j);
    return APR_SUCCESS;
}

const char *fs_json_str(apr_pool_t *p, json_object *j)
{
    return apr_pstrdup(p, json_object_to_json_string_ext(
        j, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *fs_json_str_array(apr_pool_t *p, const apr_array_header_t *strs)
{
    json_object *arr = json_object_new_array();
    const char *text;
    int i;

    for (i = 0; strs && i < strs->nelts; ++i) {
        json_object_array_add(arr, json_object_new_string(APR_ARRAY_IDX(strs, i,
                                                                        const char *)));
    }
    text = fs_json_str(p, arr);
    json_object_put(arr);
    return text;
}

const char *fs_json_get_str(json_object *obj, const char *key)
{
    json_object *v = fs_json_get_typed(obj, key, json_type_string);
    return v ? json_object_get_string(v) : NULL;
}

json_object *fs_json_get_typed(json_object *obj, const char *key, json_type type)
{
    json_object *v;
    if (!obj || !json_object_is_type(obj, json_type_object)) return NULL;
    if (!json_object_object_get_ex(obj, key, &v)) return NULL;
    return json_object_is_type(v, type) ? v : NULL;
}

apr_status_t fs_json_get_int64(json_object *obj, const char *key, apr_int64_t *pval)
{
    json_object *v;
    if (!obj || !json_object_object_get_ex(obj, key, &v)) return APR_ENOENT;
    if (!json_object_is_type(v, json_type_int)) return APR_EINVAL;
    *pval = json_object_get_int64(v);
    return APR_SUCCESS;
}

void fs_json_add_str(json_object *obj, const char *key, const char *val)
{
    json_object_object_add(obj, key, json_object_new_string(val ? val : ""));
}

static const char *find_nul(apr_pool_t *p, json_object *j, const char *path)
{
    const char *hit;
    size_t i, n;

    switch (json_object_get_type(j)) {
    case json_type_string:
        return strlen(json_object_get_string(j)) != (size_t)json_object_get_string_len(j)
               ? path : NULL;
    case json_type_array:
        n = json_object_array_length(j);
        for (i = 0; i < n; ++i) {
            hit = find_nul(p, json_object_array_get_idx(j, i),
                           apr_psprintf(p, "%s[%d]", path, (int)i));
            if (hit) return hit;
        }
        return NULL;
    case json_type_object: {
        json_object_object_foreach(j, key, val) {
            hit = find_nul(p, val, *path ? apr_pstrcat(p, path, ".", key, NULL) : key);
            if (hit) return hit;
        }
        return NULL;
    }
    default:
        return NULL;
    }
}

const char *fs_json_find_nul(apr_pool_t *p, json_object *j)
{
    return find_nul(p, j, "");
}
