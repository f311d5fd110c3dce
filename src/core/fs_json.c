#include <string.h>
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
        if (!strchr(" \t\r\n", s[i])) return 0;
    }
    return 1;
}

apr_status_t fs_json_parse(json_object **pj, apr_pool_t *p, const char *text,
                           apr_size_t len, const char **perr)
{
    json_tokener *tok;
    json_object *j;
    enum json_tokener_error jerr;
    apr_size_t used;

    *pj = NULL;
    if (!text || len == 0 || only_whitespace(text, len)) {
        *perr = "empty body, a JSON document was expected";
        return APR_EINVAL;
    }
    if (len > INT32_MAX) {
        *perr = "JSON document too large";
        return APR_EINVAL;
    }
    tok = json_tokener_new_ex(64);
    if (!tok) return APR_ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    j = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    used = (apr_size_t)json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        *perr = "invalid JSON: unexpected end of document";
    }
    else if (jerr != json_tokener_success) {
        *perr = apr_psprintf(p, "invalid JSON at offset %" APR_SIZE_T_FMT ": %s",
                             used, json_tokener_error_desc(jerr));
    }
    else if (!only_whitespace(text + used, len - used)) {
        *perr = apr_psprintf(p, "invalid JSON: trailing data at offset %"
                             APR_SIZE_T_FMT, used);
        json_object_put(j);
        j = NULL;
    }
    json_tokener_free(tok);
    if (!j || jerr != json_tokener_success) {
        if (j) json_object_put(j);
        if (!*perr) *perr = "invalid JSON";
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
