#include <string.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "fs_searchparam.h"
#include "fs_filter.h"
#include "fs_topic.h"

/* They shape a search result; a subscription has no result set to shape. */
static const char *const RESULT_PARAMS[] = {
    "_sort", "_count", "_include", "_revinclude", "_summary", "_total", "_elements",
    "_contained", "_containedType", "_format", "_pretty", "_offset", "_maxresults", NULL
};

static int str_in(const char *const *list, const char *s)
{
    for (; *list; ++list) {
        if (!strcmp(*list, s)) return 1;
    }
    return 0;
}

static const char *qname(apr_pool_t *p, const fs_filter_t *f)
{
    return apr_pstrcat(p, f->resource_type, ".", f->param, NULL);
}

static const char *comparators_str(apr_pool_t *p)
{
    const char *const *c = fs_sp_comparators();
    const char *s = *c++;
    for (; *c; ++c) s = apr_pstrcat(p, s, ", ", *c, NULL);
    return s;
}

/* ---- validation of the parts ----------------------------------------------------- */

static apr_status_t check_type(apr_pool_t *p, const char *type, const char **perr)
{
    if (!type || !*type) {
        *perr = "no resource type given for the filter";
        return APR_EINVAL;
    }
    if (!fs_sp_type_name_ok(type)) {
        *perr = apr_psprintf(p, "'%s' is not a resource type name (expected e.g. 'Encounter')",
                             type);
        return APR_EINVAL;
    }
    if (!fs_sp_resource_known(type)) {
        *perr = apr_psprintf(p, "resource type '%s' is not supported in filters; supported: %s",
                             type, fs_sp_resource_types(p));
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static apr_status_t lookup_param(const fs_sp_t **psp, apr_pool_t *p, const char *type,
                                 const char *param, const char **perr)
{
    if (!param || !*param) {
        *perr = "empty search parameter name";
        return APR_EINVAL;
    }
    if (strchr(param, '.')) {
        *perr = apr_psprintf(p, "chained search parameters such as '%s' are not supported",
                             param);
        return APR_EINVAL;
    }
    if (str_in(RESULT_PARAMS, param)) {
        *perr = apr_psprintf(p, "'%s' is a search result parameter and has no meaning in a "
                             "subscription filter", param);
        return APR_EINVAL;
    }
    if (!(*psp = fs_sp_find(type, param))) {
        *perr = apr_psprintf(p, "search parameter '%s' is not supported for %s; supported: %s",
                             param, type, fs_sp_names(p, type));
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static apr_status_t set_modifier(fs_filter_t *f, apr_pool_t *p, const char *modifier,
                                 const char **perr)
{
    if (!*modifier) {
        *perr = apr_psprintf(p, "empty modifier after '%s:'", f->param);
        return APR_EINVAL;
    }
    if (strchr(modifier, '.')) {
        *perr = apr_psprintf(p, "chained search parameters such as '%s:%s' are not supported",
                             f->param, modifier);
        return APR_EINVAL;
    }
    if (!fs_sp_modifier_ok(f->sp, modifier)) {
        *perr = apr_psprintf(p, "modifier ':%s' is not supported on %s parameter '%s'; "
                             "supported: %s", modifier, fs_sp_type_str(f->sp->type),
                             qname(p, f), fs_sp_modifiers_str(p, f->sp));
        return APR_EINVAL;
    }
    f->modifier = apr_pstrdup(p, modifier);
    return APR_SUCCESS;
}

static int is_missing(const fs_filter_t *f)
{
    return f->modifier && !strcmp(f->modifier, "missing");
}

/* An explicit comparator (R5 filterBy.comparator). "eq" is the meaning of every plain
 * search, so it is accepted on any type; anything else needs a date parameter. */
static apr_status_t set_comparator(fs_filter_t *f, apr_pool_t *p, const char *comparator,
                                   const char **perr)
{
    const char *const *c;
    if (f->sp->type != FS_SP_DATE) {
        if (strcmp(comparator, "eq")) {
            *perr = apr_psprintf(p, "comparator '%s' is not supported on %s parameter '%s': "
                                 "comparators apply to date parameters only", comparator,
                                 fs_sp_type_str(f->sp->type), qname(p, f));
            return APR_EINVAL;
        }
        return APR_SUCCESS;
    }
    if (is_missing(f) && strcmp(comparator, "eq")) {
        *perr = apr_psprintf(p, "comparator '%s' cannot be combined with ':missing' on '%s'",
                             comparator, qname(p, f));
        return APR_EINVAL;
    }
    for (c = fs_sp_comparators(); *c; ++c) {
        if (!strcmp(*c, comparator)) {
            f->comparator = is_missing(f) ? NULL : *c;
            return APR_SUCCESS;
        }
    }
    *perr = apr_psprintf(p, "comparator '%s' is not supported on date parameter '%s'; "
                         "supported: %s", comparator, qname(p, f), comparators_str(p));
    return APR_EINVAL;
}

/* ---- values ---------------------------------------------------------------------- */

/* Split at unescaped commas; "\," becomes a literal comma, other escapes stay. */
static apr_array_header_t *split_values(apr_pool_t *p, const char *value)
{
    apr_array_header_t *alts = apr_array_make(p, 2, sizeof(const char *));
    char *buf = apr_palloc(p, strlen(value) + 1), *d = buf;
    const char *s;

    for (s = value;; ++s) {
        if (*s == '\\' && s[1]) {
            if (s[1] != ',') *d++ = '\\';
            *d++ = *++s;
        }
        else if (*s == ',' || !*s) {
            *d++ = '\0';
            APR_ARRAY_PUSH(alts, const char *) = buf;
            buf = d;
            if (!*s) break;
        }
        else {
            *d++ = *s;
        }
    }
    return alts;
}

static int digits(const char *s, int n)
{
    int i;
    for (i = 0; i < n; ++i) {
        if (!apr_isdigit(s[i])) return 0;
    }
    return 1;
}

static int num2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

static int two_digits_max(const char *s, int lo, int hi)
{
    return digits(s, 2) && num2(s) >= lo && num2(s) <= hi;
}

/* FHIR search date: YYYY[-MM[-DD[Thh:mm[:ss[.f+]][Z|(+|-)hh:mm]]]] */
static int date_ok(const char *s)
{
    if (!digits(s, 4)) return 0;
    if (!*(s += 4)) return 1;
    if (*s != '-' || !two_digits_max(s + 1, 1, 12)) return 0;
    if (!*(s += 3)) return 1;
    if (*s != '-' || !two_digits_max(s + 1, 1, 31)) return 0;
    if (!*(s += 3)) return 1;
    if (*s != 'T' || !two_digits_max(s + 1, 0, 23) || s[3] != ':'
        || !two_digits_max(s + 4, 0, 59)) return 0;
    s += 6;
    if (*s == ':') {
        if (!two_digits_max(s + 1, 0, 60)) return 0;
        s += 3;
        if (*s == '.') {
            if (!apr_isdigit(*++s)) return 0;
            while (apr_isdigit(*s)) ++s;
        }
    }
    if (!*s || !strcmp(s, "Z")) return 1;
    return (*s == '+' || *s == '-') && two_digits_max(s + 1, 0, 14) && s[3] == ':'
           && two_digits_max(s + 4, 0, 59) && !s[6];
}

static int id_ok(const char *s)
{
    apr_size_t n = strlen(s);
    if (n < 1 || n > 64) return 0;
    for (; *s; ++s) {
        if (!apr_isalnum(*s) && *s != '-' && *s != '.') return 0;
    }
    return 1;
}

static apr_status_t bad_value(apr_pool_t *p, const fs_filter_t *f, const char *v,
                              const char *expected, const char **perr)
{
    *perr = apr_psprintf(p, "invalid value '%s' for %s parameter '%s': %s", v,
                         fs_sp_type_str(f->sp->type), qname(p, f), expected);
    return APR_EINVAL;
}

/* "Patient/1", "http://x/fhir/Patient/1/_history/2" or a bare id "1": when the value
 * names a type, it must be the one the parameter (or its type modifier) targets. */
static apr_status_t check_reference(apr_pool_t *p, const fs_filter_t *f, const char *v,
                                    const char **perr)
{
    char *s = apr_pstrdup(p, v), *h, *slash;
    const char *type, *want;

    if ((h = strstr(s, "/_history/"))) *h = '\0';
    if (!(slash = strrchr(s, '/'))) return APR_SUCCESS;
    if (!slash[1]) return bad_value(p, f, v, "the reference has no id", perr);
    *slash = '\0';
    type = strrchr(s, '/') ? strrchr(s, '/') + 1 : s;
    want = (f->modifier && fs_sp_type_name_ok(f->modifier)) ? f->modifier : f->sp->target;
    if (want && fs_sp_type_name_ok(type) && strcmp(type, want)) {
        return bad_value(p, f, v, apr_psprintf(p, "only references to %s match", want), perr);
    }
    return APR_SUCCESS;
}

static apr_status_t check_value(apr_pool_t *p, const fs_filter_t *f, const char *v,
                                const char **perr)
{
    if (is_missing(f)) {
        if (strcmp(v, "true") && strcmp(v, "false")) {
            return bad_value(p, f, v, "':missing' takes 'true' or 'false'", perr);
        }
        return APR_SUCCESS;
    }
    switch (f->sp->type) {
    case FS_SP_TOKEN:
        if (f->sp->paths[0].elem == FS_SP_EL_BOOLEAN && strcmp(v, "true") && strcmp(v, "false")) {
            return bad_value(p, f, v, "expected 'true' or 'false'", perr);
        }
        if (!strcmp(f->param, "_id") && !id_ok(v)) {
            return bad_value(p, f, v, "a resource id is 1-64 of [A-Za-z0-9-.]", perr);
        }
        if (!strcmp(v, "|")) {
            return bad_value(p, f, v, "a token needs a system or a code", perr);
        }
        return APR_SUCCESS;
    case FS_SP_REFERENCE:
        return check_reference(p, f, v, perr);
    case FS_SP_DATE:
        if (!date_ok(v)) {
            return bad_value(p, f, v, apr_psprintf(p, "expected YYYY, YYYY-MM, YYYY-MM-DD or "
                             "YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm], optionally prefixed "
                             "by one of %s", comparators_str(p)), perr);
        }
        return APR_SUCCESS;
    case FS_SP_STRING:
    case FS_SP_URI:
        return APR_SUCCESS;
    }
    return APR_SUCCESS;
}

/* "ge2024-01-01" -> "ge"; NULL when the value has no known prefix. */
static const char *value_prefix(const char *v)
{
    const char *const *c;
    for (c = fs_sp_comparators(); *c; ++c) {
        if (!strncmp(v, *c, 2)) return *c;
    }
    return NULL;
}

/* Re-escape literal commas so that `value` reads back into the same alternatives. */
static const char *join_values(apr_pool_t *p, const apr_array_header_t *alts)
{
    const char *s = "";
    int i;
    for (i = 0; i < alts->nelts; ++i) {
        const char *a = APR_ARRAY_IDX(alts, i, const char *), *c;
        const char *esc = "";
        while ((c = strchr(a, ','))) {
            esc = apr_pstrcat(p, esc, apr_pstrndup(p, a, (apr_size_t)(c - a)), "\\,", NULL);
            a = c + 1;
        }
        s = apr_pstrcat(p, s, i ? "," : "", esc, a, NULL);
    }
    return s;
}

/* Per-value date prefixes apply only when no comparator was given explicitly; one
 * comparator per filter is what R5 filterBy can express, so mixed prefixes are refused. */
static apr_status_t take_prefixes(fs_filter_t *f, apr_pool_t *p, apr_array_header_t *alts,
                                  const char *value, const char **perr)
{
    const char *first = NULL;
    int i;
    for (i = 0; i < alts->nelts; ++i) {
        const char *a = APR_ARRAY_IDX(alts, i, const char *);
        const char *cmp = value_prefix(a);
        if (cmp && a[2]) APR_ARRAY_IDX(alts, i, const char *) = a + 2;
        else cmp = "eq";
        if (first && strcmp(first, cmp)) {
            *perr = apr_psprintf(p, "the alternatives in '%s' for date parameter '%s' use "
                                 "different comparators (%s, %s); use one comparator per "
                                 "filter", value, qname(p, f), first, cmp);
            return APR_EINVAL;
        }
        first = cmp;
    }
    f->comparator = first;
    return APR_SUCCESS;
}

static apr_status_t set_values(fs_filter_t *f, apr_pool_t *p, const char *value,
                               int explicit_cmp, const char **perr)
{
    apr_array_header_t *alts;
    apr_status_t rv;
    int i;

    if (!value || !*value) {
        *perr = apr_psprintf(p, "search parameter '%s' has an empty value", qname(p, f));
        return APR_EINVAL;
    }
    alts = split_values(p, value);
    if (f->sp->type == FS_SP_DATE && !is_missing(f) && !explicit_cmp) {
        if (APR_SUCCESS != (rv = take_prefixes(f, p, alts, value, perr))) return rv;
    }
    for (i = 0; i < alts->nelts; ++i) {
        const char *a = APR_ARRAY_IDX(alts, i, const char *);
        if (!*a) {
            *perr = apr_psprintf(p, "search parameter '%s' has an empty alternative in '%s'",
                                 qname(p, f), value);
            return APR_EINVAL;
        }
        if (APR_SUCCESS != (rv = check_value(p, f, a, perr))) return rv;
    }
    f->values = alts;
    f->value = join_values(p, alts);
    return APR_SUCCESS;
}

apr_status_t fs_filter_make(fs_filter_t **pf, apr_pool_t *p, const char *resource_type,
                            const char *param, const char *modifier,
                            const char *comparator, const char *value, const char **perr)
{
    fs_filter_t *f = NULL;
    const fs_sp_t *sp;
    apr_status_t rv;

    *pf = NULL;
    if (APR_SUCCESS != (rv = check_type(p, resource_type, perr))) goto leave;
    if (APR_SUCCESS != (rv = lookup_param(&sp, p, resource_type, param, perr))) goto leave;
    f = apr_pcalloc(p, sizeof(*f));
    f->resource_type = apr_pstrdup(p, resource_type);
    f->param = apr_pstrdup(p, param);
    f->sp = sp;
    if (modifier && APR_SUCCESS != (rv = set_modifier(f, p, modifier, perr))) goto leave;
    if (sp->type == FS_SP_DATE && !is_missing(f)) f->comparator = "eq";
    if (comparator && APR_SUCCESS != (rv = set_comparator(f, p, comparator, perr))) goto leave;
    if (APR_SUCCESS != (rv = set_values(f, p, value, comparator != NULL, perr))) goto leave;
    *pf = f;
leave:
    return rv;
}

/* ---- query strings --------------------------------------------------------------- */

static int hexval(char c)
{
    return apr_isdigit(c) ? c - '0' : (apr_tolower(c) - 'a' + 10);
}

static apr_status_t url_decode(const char **pout, apr_pool_t *p, const char *in,
                               const char **perr)
{
    char *out = apr_palloc(p, strlen(in) + 1), *d = out;
    const char *s;

    for (s = in; *s; ++s) {
        if (*s != '%') {
            *d++ = *s;
            continue;
        }
        if (!apr_isxdigit(s[1]) || !apr_isxdigit(s[2])) {
            *perr = apr_psprintf(p, "invalid percent-encoding '%.3s' in '%s'", s, in);
            return APR_EINVAL;
        }
        if (!(*d++ = (char)(hexval(s[1]) * 16 + hexval(s[2])))) {
            *perr = apr_psprintf(p, "'%%00' is not allowed in '%s'", in);
            return APR_EINVAL;
        }
        s += 2;
    }
    *d = '\0';
    *pout = out;
    return APR_SUCCESS;
}

/* "Encounter.patient:Patient" -> type "Encounter", rest "patient:Patient". A lowercase
 * head ("subject.name") is a chain, left for lookup_param to refuse. */
static const char *split_type_prefix(apr_pool_t *p, const char *key, const char **ptype)
{
    const char *dot = strchr(key, '.'), *colon = strchr(key, ':');
    if (dot && (!colon || dot < colon) && apr_isupper(key[0])) {
        *ptype = apr_pstrndup(p, key, (apr_size_t)(dot - key));
        return dot + 1;
    }
    *ptype = NULL;
    return key;
}

static apr_status_t parse_param(apr_array_header_t *out, apr_pool_t *p, const char *part,
                                const char *type, const char **perr)
{
    const char *eq = strchr(part, '='), *key, *value, *ktype, *colon, *mod = NULL;
    fs_filter_t *f;
    apr_status_t rv;

    if (!eq) {
        *perr = apr_psprintf(p, "'%s' is not of the form param=value", part);
        return APR_EINVAL;
    }
    rv = url_decode(&key, p, apr_pstrndup(p, part, (apr_size_t)(eq - part)), perr);
    if (APR_SUCCESS != rv) return rv;
    if (APR_SUCCESS != (rv = url_decode(&value, p, eq + 1, perr))) return rv;
    if (!*key) {
        *perr = apr_psprintf(p, "'%s' has no parameter name before '='", part);
        return APR_EINVAL;
    }
    key = split_type_prefix(p, key, &ktype);
    if (ktype && type && strcmp(ktype, type)) {
        *perr = apr_psprintf(p, "'%s' names resource type %s, but the criteria are for %s",
                             part, ktype, type);
        return APR_EINVAL;
    }
    if (!(type = ktype ? ktype : type)) {
        *perr = apr_psprintf(p, "'%s' names no resource type and none is implied (the topic "
                             "has several); write it as 'Type?%s'", part, part);
        return APR_EINVAL;
    }
    if ((colon = strchr(key, ':'))) {
        mod = colon + 1;
        key = apr_pstrndup(p, key, (apr_size_t)(colon - key));
    }
    if (APR_SUCCESS != (rv = fs_filter_make(&f, p, type, key, mod, NULL, value, perr))) return rv;
    APR_ARRAY_PUSH(out, fs_filter_t *) = f;
    return APR_SUCCESS;
}

/* A copy without leading and trailing whitespace (JSON strings often carry some). */
static char *trimmed(apr_pool_t *p, const char *s)
{
    const char *end;
    if (!s) return apr_pstrdup(p, "");
    while (apr_isspace(*s)) ++s;
    for (end = s + strlen(s); end > s && apr_isspace(end[-1]); --end);
    return apr_pstrndup(p, s, (apr_size_t)(end - s));
}

apr_status_t fs_filter_parse_query(apr_array_header_t *out, apr_pool_t *p,
                                   const char *criteria, const char *default_type,
                                   const char **perr)
{
    char *s = trimmed(p, criteria), *q, *part, *amp;
    const char *type = default_type;
    apr_status_t rv = APR_SUCCESS;

    if (!*s) {
        *perr = "empty filter criteria";
        return APR_EINVAL;
    }
    if ((q = strchr(s, '?'))) {
        *q = '\0';
        if (*s) type = s;
        s = q + 1;
        if (!*s) {
            *perr = apr_psprintf(p, "'%s' has no search parameters after '?'", criteria);
            return APR_EINVAL;
        }
        if (type != default_type && APR_SUCCESS != (rv = check_type(p, type, perr))) return rv;
    }
    for (part = s; part; part = amp ? amp + 1 : NULL) {
        if ((amp = strchr(part, '&'))) *amp = '\0';
        if (!*part) {
            *perr = apr_psprintf(p, "empty parameter in '%s' (a doubled, leading or trailing "
                                 "'&')", criteria);
            return APR_EINVAL;
        }
        if (APR_SUCCESS != (rv = parse_param(out, p, part, type, perr))) return rv;
    }
    return rv;
}

apr_status_t fs_filter_parse_criteria(const char **ptype, apr_array_header_t *out,
                                      apr_pool_t *p, const char *criteria,
                                      const char **perr)
{
    char *s = trimmed(p, criteria), *q;
    apr_status_t rv;

    *ptype = NULL;
    if ((q = strchr(s, '?'))) *q = '\0';
    if (!fs_sp_type_name_ok(s)) {
        *perr = apr_psprintf(p, "criteria '%s' must start with a resource type, as in "
                             "'Observation?code=http://loinc.org|1234-5'", criteria);
        return APR_EINVAL;
    }
    if (APR_SUCCESS != (rv = check_type(p, s, perr))) return rv;
    if (q && q[1]) {
        *q = '?';
        if (APR_SUCCESS != (rv = fs_filter_parse_query(out, p, s, NULL, perr))) return rv;
        *q = '\0';
    }
    *ptype = s;
    return APR_SUCCESS;
}

/* ---- R5 filterBy and storage ----------------------------------------------------- */

static apr_status_t opt_str(const char **pv, apr_pool_t *p, json_object *o, const char *key,
                            const char **perr)
{
    json_object *v;
    *pv = NULL;
    if (!json_object_object_get_ex(o, key, &v)) return APR_SUCCESS;
    if (!json_object_is_type(v, json_type_string)) {
        *perr = apr_psprintf(p, "filterBy.%s must be a string", key);
        return APR_EINVAL;
    }
    *pv = json_object_get_string(v);
    return APR_SUCCESS;
}

static apr_status_t req_str(const char **pv, apr_pool_t *p, json_object *o, const char *key,
                            const char **perr)
{
    apr_status_t rv = opt_str(pv, p, o, key, perr);
    if (APR_SUCCESS == rv && !*pv) {
        *perr = apr_psprintf(p, "filterBy.%s is missing", key);
        rv = APR_EINVAL;
    }
    return rv;
}

apr_status_t fs_filter_from_r5(fs_filter_t **pf, apr_pool_t *p, json_object *filterBy,
                               const char *default_type, const char **perr)
{
    const char *type, *param, *cmp, *mod, *value, *colon;
    apr_status_t rv;

    *pf = NULL;
    if (!filterBy || !json_object_is_type(filterBy, json_type_object)) {
        *perr = "filterBy entry must be a JSON object";
        return APR_EINVAL;
    }
    if (APR_SUCCESS != (rv = opt_str(&type, p, filterBy, "resourceType", perr))
        || APR_SUCCESS != (rv = req_str(&param, p, filterBy, "filterParameter", perr))
        || APR_SUCCESS != (rv = opt_str(&cmp, p, filterBy, "comparator", perr))
        || APR_SUCCESS != (rv = opt_str(&mod, p, filterBy, "modifier", perr))
        || APR_SUCCESS != (rv = req_str(&value, p, filterBy, "value", perr))) {
        return rv;
    }
    if (!(type = type ? fs_sp_type_from_canonical(type) : default_type)) {
        *perr = "filterBy.resourceType is missing and the topic has several resource types";
        return APR_EINVAL;
    }
    if ((colon = strchr(param, ':'))) {
        /* tolerate "patient:Patient" written in filterParameter, but not twice */
        if (mod) {
            *perr = apr_psprintf(p, "filterBy has a modifier both in filterParameter ('%s') "
                                 "and in modifier ('%s')", param, mod);
            return APR_EINVAL;
        }
        mod = colon + 1;
        param = apr_pstrndup(p, param, (apr_size_t)(colon - param));
    }
    return fs_filter_make(pf, p, type, param, mod, cmp, value, perr);
}

static json_object *filter_json(const fs_filter_t *f)
{
    json_object *o = json_object_new_object();
    fs_json_add_str(o, "resourceType", f->resource_type);
    fs_json_add_str(o, "filterParameter", f->param);
    if (f->comparator) fs_json_add_str(o, "comparator", f->comparator);
    if (f->modifier) fs_json_add_str(o, "modifier", f->modifier);
    fs_json_add_str(o, "value", f->value);
    return o;
}

const char *fs_filters_to_json(apr_pool_t *p, const apr_array_header_t *filters)
{
    json_object *arr = fs_json_pool_own(p, json_object_new_array());
    int i;
    for (i = 0; filters && i < filters->nelts; ++i) {
        json_object_array_add(arr, filter_json(APR_ARRAY_IDX(filters, i, const fs_filter_t *)));
    }
    return fs_json_str(p, arr);
}

apr_status_t fs_filters_from_json(apr_array_header_t *out, apr_pool_t *p, const char *json,
                                  const char **perr)
{
    apr_pool_t *ptemp;
    json_object *arr;
    fs_filter_t *f;
    apr_status_t rv;
    size_t i;

    if (APR_SUCCESS != (rv = apr_pool_create(&ptemp, p))) return rv;
    rv = fs_json_parse(&arr, ptemp, json, json ? strlen(json) : 0, perr);
    if (APR_SUCCESS != rv) {
        *perr = apr_pstrcat(p, "stored filters: ", *perr, NULL);
        goto leave;
    }
    if (!json_object_is_type(arr, json_type_array)) {
        *perr = "stored filters: a JSON array was expected";
        rv = APR_EINVAL;
        goto leave;
    }
    for (i = 0; i < json_object_array_length(arr); ++i) {
        rv = fs_filter_from_r5(&f, p, json_object_array_get_idx(arr, i), NULL, perr);
        if (APR_SUCCESS != rv) {
            *perr = apr_psprintf(p, "stored filter [%d]: %s", (int)i, *perr);
            goto leave;
        }
        APR_ARRAY_PUSH(out, fs_filter_t *) = f;
    }
leave:
    apr_pool_destroy(ptemp);
    return rv;
}

/* Percent-encode what would otherwise be read as syntax or is not URL-safe; separator
 * commas are added by the caller, literal commas become "\,". */
static const char *encode_value(apr_pool_t *p, const char *v)
{
    static const char safe[] = "-._~:/|@!$'()*+;?\\";
    char *out = apr_palloc(p, strlen(v) * 3 + 1), *d = out;
    const unsigned char *s;

    for (s = (const unsigned char *)v; *s; ++s) {
        if (*s == ',') {
            *d++ = '\\';
            *d++ = ',';
        }
        else if (apr_isalnum(*s) || (*s < 0x80 && strchr(safe, *s))) {
            *d++ = (char)*s;
        }
        else {
            d += apr_snprintf(d, 4, "%%%02X", *s);
        }
    }
    *d = '\0';
    return out;
}

const char *fs_filter_to_criteria(apr_pool_t *p, const fs_filter_t *f)
{
    const char *prefix = (f->comparator && strcmp(f->comparator, "eq")) ? f->comparator : "";
    const char *s = apr_pstrcat(p, f->resource_type, "?", f->param,
                                f->modifier ? ":" : "", f->modifier ? f->modifier : "",
                                "=", NULL);
    int i;
    for (i = 0; i < f->values->nelts; ++i) {
        s = apr_pstrcat(p, s, i ? "," : "", prefix,
                        encode_value(p, APR_ARRAY_IDX(f->values, i, const char *)), NULL);
    }
    return s;
}

/* ---- topic restrictions ---------------------------------------------------------- */

static int arr_has(const apr_array_header_t *a, const char *s)
{
    int i;
    for (i = 0; a && i < a->nelts; ++i) {
        if (!strcmp(APR_ARRAY_IDX(a, i, const char *), s)) return 1;
    }
    return 0;
}

static const char *arr_str(apr_pool_t *p, const apr_array_header_t *a)
{
    const char *s = "";
    int i;
    for (i = 0; a && i < a->nelts; ++i) {
        s = apr_pstrcat(p, s, i ? ", " : "", APR_ARRAY_IDX(a, i, const char *), NULL);
    }
    return s;
}

static apr_status_t check_modifier_allowed(const fs_filter_t *f, const fs_topic_t *topic,
                                           const fs_topic_can_filter_t *cf, apr_pool_t *p,
                                           const char **perr)
{
    if (!f->modifier || !cf->modifiers->nelts || arr_has(cf->modifiers, f->modifier)) {
        return APR_SUCCESS;
    }
    /* R5 names the resource-type modifier "type" */
    if (fs_sp_type_name_ok(f->modifier) && arr_has(cf->modifiers, "type")) return APR_SUCCESS;
    *perr = apr_psprintf(p, "topic '%s' does not allow modifier ':%s' on %s; allowed: %s",
                         topic->url, f->modifier, qname(p, f), arr_str(p, cf->modifiers));
    return APR_EINVAL;
}

/* R4B topics list comparators among the modifiers, and "=" for plain equality. */
static apr_status_t check_comparator_allowed(const fs_filter_t *f, const fs_topic_t *topic,
                                             const fs_topic_can_filter_t *cf, apr_pool_t *p,
                                             const char **perr)
{
    apr_array_header_t *allowed;
    const char *const *c;
    int restricted = cf->comparators->nelts > 0;

    if (!f->comparator) return APR_SUCCESS;
    allowed = apr_array_copy(p, cf->comparators);
    for (c = fs_sp_comparators(); *c; ++c) {
        if (arr_has(cf->modifiers, *c)) {
            APR_ARRAY_PUSH(allowed, const char *) = *c;
            restricted = 1;
        }
    }
    if (arr_has(cf->modifiers, "=")) APR_ARRAY_PUSH(allowed, const char *) = "eq";
    if (!restricted || arr_has(allowed, f->comparator)) return APR_SUCCESS;
    *perr = apr_psprintf(p, "topic '%s' does not allow comparator '%s' on %s; allowed: %s",
                         topic->url, f->comparator, qname(p, f), arr_str(p, allowed));
    return APR_EINVAL;
}

apr_status_t fs_filter_check_topic(const fs_filter_t *f, const fs_topic_t *topic,
                                   apr_pool_t *p, const char **perr)
{
    const fs_topic_can_filter_t *cf;
    apr_status_t rv;

    if (!topic->can_filter_by || !topic->can_filter_by->nelts) {
        *perr = apr_psprintf(p, "topic '%s' declares no canFilterBy and so accepts no "
                             "filters, but '%s' was requested", topic->url,
                             fs_filter_to_criteria(p, f));
        return APR_EINVAL;
    }
    if (!(cf = fs_topic_can_filter(topic, f->resource_type, f->param))) {
        *perr = apr_psprintf(p, "topic '%s' does not offer filtering by %s; it offers: %s",
                             topic->url, qname(p, f), fs_topic_filter_names(p, topic, NULL));
        return APR_EINVAL;
    }
    if (APR_SUCCESS != (rv = check_modifier_allowed(f, topic, cf, p, perr))) return rv;
    return check_comparator_allowed(f, topic, cf, p, perr);
}

apr_status_t fs_filters_check_topic(const apr_array_header_t *filters,
                                    const fs_topic_t *topic, apr_pool_t *p,
                                    const char **perr)
{
    apr_status_t rv = APR_SUCCESS;
    int i;
    for (i = 0; filters && i < filters->nelts && APR_SUCCESS == rv; ++i) {
        rv = fs_filter_check_topic(APR_ARRAY_IDX(filters, i, const fs_filter_t *), topic, p,
                                   perr);
    }
    return rv;
}
