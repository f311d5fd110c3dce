#include <errno.h>
#include <string.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "fs_params.h"

/* Parameters any FHIR interaction may carry that only shape the response format,
 * which the glue honours. _summary and _elements are refused: we do not filter
 * output, and a client asking for it should be told rather than ignored. */
static const char *const general_params[] = { "_format", "_pretty", NULL };

fs_params_t *fs_params_make(apr_pool_t *p)
{
    fs_params_t *pp = apr_pcalloc(p, sizeof(*pp));
    pp->items = apr_array_make(p, 8, sizeof(fs_param_t));
    return pp;
}

void fs_params_add(fs_params_t *pp, const char *name, const char *value)
{
    fs_param_t *e = apr_array_push(pp->items);
    e->name = name;
    e->value = value ? value : "";
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const unsigned char *s, apr_size_t len)
{
    apr_size_t i = 0, n, k;
    unsigned int cp, c;

    while (i < len) {
        c = s[i];
        if (c < 0x80) { ++i; continue; }
        if (c >= 0xC2 && c <= 0xDF) { n = 1; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { n = 2; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { n = 3; cp = c & 0x07; }
        else return 0;
        if (i + n >= len) return 0;
        for (k = 1; k <= n; ++k) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
            || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
        i += n + 1;
    }
    return 1;
}

/* Raw request text for an error message: printable ASCII only, bounded. */
static const char *printable(apr_pool_t *p, const char *s, apr_size_t len)
{
    apr_size_t i, n = len > 64 ? 64 : len;
    char *out = apr_pstrmemdup(p, s, n);
    for (i = 0; i < n; ++i) {
        if (out[i] < 0x20 || out[i] > 0x7E) out[i] = '?';
    }
    return len > n ? apr_pstrcat(p, out, "...", NULL) : out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* application/x-www-form-urlencoded decoding of s[0..len). */
static apr_status_t form_decode(const char **pout, apr_pool_t *p, const char *s,
                                apr_size_t len, const char **perr)
{
    char *out = apr_palloc(p, len + 1);
    apr_size_t i, o = 0;
    int hi, lo;

    for (i = 0; i < len; ++i) {
        if (s[i] == '+') {
            out[o++] = ' ';
        }
        else if (s[i] != '%') {
            out[o++] = s[i];
        }
        else {
            hi = (i + 2 < len) ? hexval(s[i + 1]) : -1;
            lo = (i + 2 < len) ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *perr = "invalid percent-escape (expected '%' and two hex digits)";
                return APR_EINVAL;
            }
            if (hi == 0 && lo == 0) {
                *perr = "an encoded NUL character (%00) is not allowed";
                return APR_EINVAL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        }
    }
    out[o] = '\0';
    if (!utf8_valid((const unsigned char *)out, o)) {
        *perr = "the decoded text is not valid UTF-8";
        return APR_EINVAL;
    }
    *pout = out;
    return APR_SUCCESS;
}

static apr_status_t query_segment(fs_params_t *pp, apr_pool_t *p, const char *seg,
                                  apr_size_t len, const char **perr)
{
    const char *eq = memchr(seg, '=', len), *name, *value = "", *why = NULL;
    apr_size_t nlen = eq ? (apr_size_t)(eq - seg) : len;
    apr_status_t rv;

    if (nlen == 0) {
        why = "empty parameter name";
        rv = APR_EINVAL;
        goto leave;
    }
    if (APR_SUCCESS != (rv = form_decode(&name, p, seg, nlen, &why))) goto leave;
    if (eq && APR_SUCCESS != (rv = form_decode(&value, p, eq + 1, len - nlen - 1, &why))) {
        goto leave;
    }
    fs_params_add(pp, name, value);
leave:
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "invalid query parameter '%s': %s",
                             printable(p, seg, len), why);
    }
    return rv;
}

apr_status_t fs_params_from_query(fs_params_t **pp, apr_pool_t *p, const char *query,
                                  const char **perr)
{
    fs_params_t *params = fs_params_make(p);
    const char *s = query ? query : "", *end;
    apr_status_t rv = APR_SUCCESS;

    *pp = NULL;
    while (*s) {
        end = s + strcspn(s, "&");
        /* "a=1&&b=2" and a trailing '&' are common and harmless */
        if (end > s) {
            if (params->items->nelts >= FS_PARAMS_MAX) {
                *perr = apr_psprintf(p, "too many parameters (more than %d)", FS_PARAMS_MAX);
                rv = APR_EINVAL;
                goto leave;
            }
            if (APR_SUCCESS != (rv = query_segment(params, p, s, (apr_size_t)(end - s),
                                                   perr))) goto leave;
        }
        s = *end ? end + 1 : end;
    }
    *pp = params;
leave:
    return rv;
}

typedef enum { VK_STRING, VK_INT, VK_UINT, VK_PINT, VK_INT64, VK_DECIMAL, VK_BOOL } vkind_t;

static const struct { const char *key; vkind_t kind; } primitives[] = {
    { "valueString", VK_STRING }, { "valueCode", VK_STRING }, { "valueId", VK_STRING },
    { "valueUri", VK_STRING }, { "valueUrl", VK_STRING }, { "valueCanonical", VK_STRING },
    { "valueUuid", VK_STRING }, { "valueOid", VK_STRING }, { "valueMarkdown", VK_STRING },
    { "valueBase64Binary", VK_STRING }, { "valueDate", VK_STRING },
    { "valueDateTime", VK_STRING }, { "valueInstant", VK_STRING }, { "valueTime", VK_STRING },
    { "valueInteger", VK_INT }, { "valueUnsignedInt", VK_UINT },
    { "valuePositiveInt", VK_PINT }, { "valueInteger64", VK_INT64 },
    { "valueDecimal", VK_DECIMAL }, { "valueBoolean", VK_BOOL },
};

static int primitive_kind(const char *key, vkind_t *pkind)
{
    size_t i;
    for (i = 0; i < sizeof(primitives) / sizeof(primitives[0]); ++i) {
        if (!strcmp(primitives[i].key, key)) {
            *pkind = primitives[i].kind;
            return 1;
        }
    }
    return 0;
}

static int int64_text_valid(const char *s)
{
    char *end;
    const char *d = (*s == '-') ? s + 1 : s;
    if (!*d || strspn(d, "0123456789") != strlen(d)) return 0;
    errno = 0;
    (void)apr_strtoi64(s, &end, 10);
    return errno == 0 && *end == '\0';
}

static apr_status_t int_value(const char **pval, apr_pool_t *p, json_object *v,
                              vkind_t kind, const char **pwhy)
{
    apr_int64_t n;

    if (!json_object_is_type(v, json_type_int)) {
        *pwhy = "is not a JSON integer";
        return APR_EINVAL;
    }
    n = json_object_get_int64(v);
    if (n > INT32_MAX || n < INT32_MIN) {
        *pwhy = "is out of the 32-bit integer range";
        return APR_EINVAL;
    }
    if ((kind == VK_UINT && n < 0) || (kind == VK_PINT && n < 1)) {
        *pwhy = kind == VK_UINT ? "is negative" : "is not positive";
        return APR_EINVAL;
    }
    *pval = apr_psprintf(p, "%" APR_INT64_T_FMT, n);
    return APR_SUCCESS;
}

static apr_status_t string_value(const char **pval, json_object *v, const char **pwhy)
{
    const char *s;
    if (!json_object_is_type(v, json_type_string)) {
        *pwhy = "is not a JSON string";
        return APR_EINVAL;
    }
    s = json_object_get_string(v);
    if (!*s) {
        *pwhy = "is empty";
        return APR_EINVAL;
    }
    if (strlen(s) != (size_t)json_object_get_string_len(v)
        || !utf8_valid((const unsigned char *)s, strlen(s))) {
        *pwhy = "contains a NUL character or invalid UTF-8";
        return APR_EINVAL;
    }
    *pval = s;
    return APR_SUCCESS;
}

/* The string form of a primitive value of the given kind. */
static apr_status_t value_text(const char **pval, apr_pool_t *p, json_object *v,
                               vkind_t kind, const char **pwhy)
{
    switch (kind) {
    case VK_STRING:
        return string_value(pval, v, pwhy);
    case VK_INT: case VK_UINT: case VK_PINT:
        return int_value(pval, p, v, kind, pwhy);
    case VK_INT64:
        /* a JSON string in R5; numbers tolerated from lenient clients */
        if (json_object_is_type(v, json_type_int)) {
            *pval = apr_psprintf(p, "%" APR_INT64_T_FMT, json_object_get_int64(v));
            return APR_SUCCESS;
        }
        if (APR_SUCCESS != string_value(pval, v, pwhy) || !int64_text_valid(*pval)) {
            *pwhy = "is not a 64-bit integer";
            return APR_EINVAL;
        }
        return APR_SUCCESS;
    case VK_DECIMAL:
        if (!json_object_is_type(v, json_type_double)
            && !json_object_is_type(v, json_type_int)) {
            *pwhy = "is not a JSON number";
            return APR_EINVAL;
        }
        /* parsed doubles keep their original text (no float round trip) */
        *pval = apr_pstrdup(p, json_object_get_string(v));
        return APR_SUCCESS;
    case VK_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) {
            *pwhy = "is not a JSON boolean";
            return APR_EINVAL;
        }
        *pval = json_object_get_boolean(v) ? "true" : "false";
        return APR_SUCCESS;
    }
    *pwhy = "has an unsupported type";
    return APR_EINVAL;
}

/* The one value[x] of a parameter entry; rejects anything we cannot honour. */
static apr_status_t entry_value(const char **pval, apr_pool_t *p, json_object *e,
                                const char *label, const char **perr)
{
    const char *vkey = NULL, *why = NULL;
    json_object *vobj = NULL;
    vkind_t kind = VK_STRING;

    json_object_object_foreach(e, key, val) {
        if (!strcmp(key, "name") || !strcmp(key, "id") || !strcmp(key, "extension")
            || !strncmp(key, "_value", 6)) continue;
        if (!strcmp(key, "part") || !strcmp(key, "resource")) {
            *perr = apr_psprintf(p, "%s: '%s' is not supported by this operation, only "
                                 "primitive values are", label, key);
            return APR_EINVAL;
        }
        if (strncmp(key, "value", 5) || !key[5]) {
            *perr = apr_psprintf(p, "%s: unknown or unsupported element '%s'", label, key);
            return APR_EINVAL;
        }
        if (vkey) {
            *perr = apr_psprintf(p, "%s: more than one value ('%s' and '%s')",
                                 label, vkey, key);
            return APR_EINVAL;
        }
        if (!primitive_kind(key, &kind)) {
            *perr = apr_psprintf(p, "%s: value type '%s' is not supported, only "
                                 "primitive types are", label, key);
            return APR_EINVAL;
        }
        vkey = key;
        vobj = val;
    }
    if (!vkey) {
        *perr = apr_psprintf(p, "%s: has no value[x]", label);
        return APR_EINVAL;
    }
    if (APR_SUCCESS != value_text(pval, p, vobj, kind, &why)) {
        *perr = apr_psprintf(p, "%s: %s %s", label, vkey, why);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static apr_status_t body_entry(fs_params_t *pp, apr_pool_t *p, json_object *e, size_t idx,
                               const char **perr)
{
    const char *name, *value = NULL, *label;
    json_object *n;

    label = apr_psprintf(p, "Parameters.parameter[%" APR_SIZE_T_FMT "]", idx);
    if (!json_object_is_type(e, json_type_object)) {
        *perr = apr_psprintf(p, "%s is not a JSON object", label);
        return APR_EINVAL;
    }
    if (!json_object_object_get_ex(e, "name", &n) || !json_object_is_type(n, json_type_string)
        || !*(name = json_object_get_string(n))) {
        *perr = apr_psprintf(p, "%s has no name (a non-empty string is required)", label);
        return APR_EINVAL;
    }
    if (!utf8_valid((const unsigned char *)name, strlen(name))) {
        *perr = apr_psprintf(p, "%s: the name is not valid UTF-8", label);
        return APR_EINVAL;
    }
    label = apr_psprintf(p, "%s ('%s')", label, name);
    if (APR_SUCCESS != entry_value(&value, p, e, label, perr)) return APR_EINVAL;
    fs_params_add(pp, apr_pstrdup(p, name), apr_pstrdup(p, value));
    return APR_SUCCESS;
}

apr_status_t fs_params_from_body(fs_params_t **pp, apr_pool_t *p, json_object *body,
                                 const char **perr)
{
    fs_params_t *params = fs_params_make(p);
    json_object *arr;
    const char *rt;
    apr_status_t rv = APR_EINVAL;
    size_t i, n;

    *pp = NULL;
    rt = fs_json_get_str(body, "resourceType");
    if (!rt || strcmp(rt, "Parameters")) {
        *perr = rt ? apr_psprintf(p, "the body is a %s, a Parameters resource was expected",
                                  printable(p, rt, strlen(rt)))
                   : "the body is not a FHIR resource, a Parameters resource was expected";
        goto leave;
    }
    if (json_object_object_get_ex(body, "parameter", &arr)) {
        if (!json_object_is_type(arr, json_type_array)) {
            *perr = "Parameters.parameter is not an array";
            goto leave;
        }
        n = json_object_array_length(arr);
        if (n > FS_PARAMS_MAX) {
            *perr = apr_psprintf(p, "too many parameters (more than %d)", FS_PARAMS_MAX);
            goto leave;
        }
        for (i = 0; i < n; ++i) {
            if (APR_SUCCESS != (rv = body_entry(params, p, json_object_array_get_idx(arr, i),
                                                i, perr))) goto leave;
        }
    }
    rv = APR_SUCCESS;
    *pp = params;
leave:
    return rv;
}

static int in_list(const char *const *list, const char *name)
{
    for (; list && *list; ++list) {
        if (!strcmp(*list, name)) return 1;
    }
    return 0;
}

static const char *list_join(apr_pool_t *p, const char *const *a, const char *const *b)
{
    const char *s = "";
    for (; a && *a; ++a) s = apr_pstrcat(p, s, *s ? ", " : "", *a, NULL);
    for (; b && *b; ++b) s = apr_pstrcat(p, s, *s ? ", " : "", *b, NULL);
    return s;
}

apr_status_t fs_params_check(const fs_params_t *pp, const char *const *allowed,
                             const char **perr)
{
    const fs_param_t *e;
    apr_pool_t *p = pp->items->pool;
    int i;

    for (i = 0; i < pp->items->nelts; ++i) {
        e = &APR_ARRAY_IDX(pp->items, i, fs_param_t);
        if (in_list(allowed, e->name) || in_list(general_params, e->name)) continue;
        *perr = apr_psprintf(p, "unknown parameter '%s' (allowed: %s)",
                             printable(p, e->name, strlen(e->name)),
                             list_join(p, allowed, general_params));
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

const char *fs_params_get(const fs_params_t *pp, const char *name)
{
    int i;
    for (i = 0; i < pp->items->nelts; ++i) {
        const fs_param_t *e = &APR_ARRAY_IDX(pp->items, i, fs_param_t);
        if (!strcmp(e->name, name)) return e->value;
    }
    return NULL;
}

apr_array_header_t *fs_params_values(const fs_params_t *pp, apr_pool_t *p,
                                     const char *name)
{
    apr_array_header_t *vals = apr_array_make(p, 4, sizeof(const char *));
    int i;
    for (i = 0; i < pp->items->nelts; ++i) {
        const fs_param_t *e = &APR_ARRAY_IDX(pp->items, i, fs_param_t);
        if (!strcmp(e->name, name)) APR_ARRAY_PUSH(vals, const char *) = e->value;
    }
    return vals;
}

/* Split one value at unescaped commas onto vals. */
static apr_status_t split_value(apr_array_header_t *vals, apr_pool_t *p, const char *name,
                                const char *value, const char **perr)
{
    char *item = apr_palloc(p, strlen(value) + 1), *start, *end;
    const char *s = value;
    apr_size_t o = 0;

    for (;; ++s) {
        if (*s == '\\' && s[1] && strchr(",$|\\", s[1])) {
            item[o++] = *++s;
            continue;
        }
        if (*s && *s != ',') {
            item[o++] = *s;
            continue;
        }
        item[o] = '\0';
        for (start = item; *start == ' ' || *start == '\t'; ++start);
        for (end = start + strlen(start); end > start && (end[-1] == ' ' || end[-1] == '\t');
             --end);
        *end = '\0';
        if (!*start) {
            *perr = apr_psprintf(p, "parameter '%s' has an empty item in '%s'",
                                 name, printable(p, value, strlen(value)));
            return APR_EINVAL;
        }
        APR_ARRAY_PUSH(vals, const char *) = apr_pstrdup(p, start);
        if (!*s) break;
        o = 0;
    }
    return APR_SUCCESS;
}

apr_status_t fs_params_values_split(apr_array_header_t **pvals, const fs_params_t *pp,
                                    apr_pool_t *p, const char *name, const char **perr)
{
    apr_array_header_t *vals = apr_array_make(p, 4, sizeof(const char *));
    apr_status_t rv = APR_SUCCESS;
    int i;

    *pvals = NULL;
    for (i = 0; i < pp->items->nelts; ++i) {
        const fs_param_t *e = &APR_ARRAY_IDX(pp->items, i, fs_param_t);
        if (strcmp(e->name, name)) continue;
        if (APR_SUCCESS != (rv = split_value(vals, p, name, e->value, perr))) goto leave;
    }
    *pvals = vals;
leave:
    return rv;
}

int fs_params_list_matches(const apr_array_header_t *values, const char *value)
{
    int i;
    if (!values || values->nelts == 0) return 1;
    for (i = 0; i < values->nelts; ++i) {
        if (value && !strcmp(APR_ARRAY_IDX(values, i, const char *), value)) return 1;
    }
    return 0;
}
