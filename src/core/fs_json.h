/* fs_json: json-c objects whose lifetime is bound to an APR pool, strict parsing
 * and serialisation without the default slash escaping. */
#ifndef FS_JSON_H
#define FS_JSON_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

/* Parse text strictly (no trailing commas, single quotes, NaN or trailing data).
 * On success *pj is owned by pool p (released at pool cleanup); a bare `null`
 * document succeeds with *pj NULL. On failure returns
 * APR_EINVAL with a human readable reason in *perr. */
apr_status_t fs_json_parse(json_object **pj, apr_pool_t *p, const char *text,
                           apr_size_t len, const char **perr);

/* The path ("criteria", "channel.payload", "filterBy[0].value") of the first string
 * value in j holding a NUL character, or NULL when there is none: C code would read
 * such a string shorter than the client meant it. */
const char *fs_json_find_nul(apr_pool_t *p, json_object *j);

/* Tie an object the caller owns to pool p (json_object_put at cleanup); returns j. */
json_object *fs_json_pool_own(apr_pool_t *p, json_object *j);

/* Plain serialisation (no whitespace, '/' not escaped), copied into p. */
const char *fs_json_str(apr_pool_t *p, json_object *j);

/* strs (const char*, NULL = none) as the text of a JSON array of strings, in p. */
const char *fs_json_str_array(apr_pool_t *p, const apr_array_header_t *strs);

/* Borrowed string member, or NULL when absent or not a string. */
const char *fs_json_get_str(json_object *obj, const char *key);

/* Borrowed member of the given type, or NULL when absent or of another type. */
json_object *fs_json_get_typed(json_object *obj, const char *key, json_type type);

/* Integer member as int64; APR_ENOENT when absent, APR_EINVAL when not an integer. */
apr_status_t fs_json_get_int64(json_object *obj, const char *key, apr_int64_t *pval);

/* Add a string member (copied). */
void fs_json_add_str(json_object *obj, const char *key, const char *val);

#endif
