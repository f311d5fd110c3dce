/* fs_params: operation input as an ordered list of (name, value) strings, read
 * from a URL query / form body or from a FHIR Parameters resource. */
#ifndef FS_PARAMS_H
#define FS_PARAMS_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

/* More parameters than this in one request are refused. */
#define FS_PARAMS_MAX 1000

typedef struct {
    const char *name;
    const char *value;      /* string form of the value, never NULL */
} fs_param_t;

typedef struct {
    apr_array_header_t *items;   /* fs_param_t, in request order, repeats kept */
} fs_params_t;

/* An empty list. */
fs_params_t *fs_params_make(apr_pool_t *p);

/* Append a pair (strings are not copied). */
void fs_params_add(fs_params_t *pp, const char *name, const char *value);

/* Parse "a=1&b=x%20y+z&a=2" (a GET query or an application/x-www-form-urlencoded
 * body): percent-decoding, '+' as space, repeated names kept in order, empty
 * segments skipped, "name" without '=' has the value "". NULL or "" gives an
 * empty list. APR_EINVAL with *perr for an empty name, an invalid %-escape, an
 * encoded NUL, text that is not UTF-8 or more than FS_PARAMS_MAX parameters. */
apr_status_t fs_params_from_query(fs_params_t **pp, apr_pool_t *p, const char *query,
                                  const char **perr);

/* Read a FHIR Parameters resource: each parameter needs a string name and exactly
 * one primitive value[x] (valueString, valueId, valueCode, valueUri, valueInteger,
 * valueInteger64, valueBoolean, ...) kept as its string form ("true", "42").
 * APR_EINVAL with *perr for another resourceType, a missing name, none or
 * several values, a complex value type, part or resource, unknown members. */
apr_status_t fs_params_from_body(fs_params_t **pp, apr_pool_t *p, json_object *body,
                                 const char **perr);

/* APR_EINVAL when a name is neither in the NULL-terminated allowed list nor one
 * of the general parameters every operation tolerates (_format, _pretty); *perr
 * names the first unknown parameter and the allowed ones. */
apr_status_t fs_params_check(const fs_params_t *pp, const char *const *allowed,
                             const char **perr);

/* First value of name, NULL when absent. */
const char *fs_params_get(const fs_params_t *pp, const char *name);

/* All values of name (const char*), in order; empty array when none. */
apr_array_header_t *fs_params_values(const fs_params_t *pp, apr_pool_t *p,
                                     const char *name);

/* All values of name, each split at ',' as FHIR search does (id=a,b means a OR b):
 * items trimmed of spaces, "\," and "\\" unescaped. APR_EINVAL with *perr for an
 * empty item ("a,,b", "a,"). */
/* Search semantics of a value list (const char*): empty or NULL matches anything,
 * otherwise value must equal one entry (values are ORed). */
int fs_params_list_matches(const apr_array_header_t *values, const char *value);

apr_status_t fs_params_values_split(apr_array_header_t **pvals, const fs_params_t *pp,
                                    apr_pool_t *p, const char *name, const char **perr);

#endif
