/* fs_subkey: the index keys of subscriptions, so that a captured write reads only the
 * subscriptions whose filters it can meet (fhirsub_sub_key, schema v2).
 *
 * A key is "Type.param=value" (fs_match_filter_keys, fs_match_resource_keys): a
 * subscription is keyed by the alternatives of one of its token or reference filters,
 * and can match a write only when the written resource holds one of those keys. A
 * subscription without such a filter has no keys and stays a candidate for every write
 * its topic or criteria concern. Keys only narrow; fs_match_subscription decides. */
#ifndef FS_SUBKEY_H
#define FS_SUBKEY_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

/* Longer keys are not indexed (such a filter leaves its subscription unkeyed). */
#define FS_SUBKEY_MAX_LEN 256
/* More keys in one write's resources: the write reads every candidate instead. */
#define FS_SUBKEY_MAX_PER_WRITE 512

/* The keys (const char*, distinct) of the first filter (fs_filter_t*) that has keys;
 * NULL when none has. */
apr_array_header_t *fs_subkey_of_filters(apr_pool_t *p, const apr_array_header_t *filters);

/* The keys of the resources of one write (or of a Bundle's writes), gathered. */
typedef struct fs_subkey_set_t fs_subkey_set_t;

fs_subkey_set_t *fs_subkey_set_make(apr_pool_t *p);

/* Add the keys of resource. APR_ENOSPC past FS_SUBKEY_MAX_PER_WRITE keys. */
apr_status_t fs_subkey_set_add(fs_subkey_set_t *set, json_object *resource);

/* Non-zero when the set holds key. */
int fs_subkey_set_has(const fs_subkey_set_t *set, const char *key);

/* The keys as a JSON array of strings, the form the candidate query reads. */
const char *fs_subkey_set_json(const fs_subkey_set_t *set);

#endif
