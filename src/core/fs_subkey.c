#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "fs_match.h"
#include "fs_subkey.h"

struct fs_subkey_set_t {
    apr_pool_t *p;
    apr_hash_t *keys;       /* key -> key */
    int overflow;
};

static const char *make_key(apr_pool_t *p, const char *type, const char *param,
                            const char *value, apr_size_t len)
{
    return apr_pstrcat(p, type, ".", param, "=", apr_pstrmemdup(p, value, len), NULL);
}

static void add_key(void *baton, const char *type, const char *param, const char *value,
                    apr_size_t len)
{
    fs_subkey_set_t *set = baton;
    const char *key;

    if (len > FS_SUBKEY_MAX_LEN || set->overflow) return;   /* no filter has it as key */
    key = make_key(set->p, type, param, value, len);
    if (strlen(key) > FS_SUBKEY_MAX_LEN || apr_hash_get(set->keys, key, APR_HASH_KEY_STRING)) {
        return;
    }
    if (apr_hash_count(set->keys) >= FS_SUBKEY_MAX_PER_WRITE) {
        set->overflow = 1;
        return;
    }
    apr_hash_set(set->keys, key, APR_HASH_KEY_STRING, key);
}

fs_subkey_set_t *fs_subkey_set_make(apr_pool_t *p)
{
    fs_subkey_set_t *set = apr_pcalloc(p, sizeof(*set));
    set->p = p;
    set->keys = apr_hash_make(p);
    return set;
}

apr_status_t fs_subkey_set_add(fs_subkey_set_t *set, json_object *resource)
{
    fs_match_resource_keys(resource, add_key, set);
    return set->overflow ? APR_ENOSPC : APR_SUCCESS;
}

int fs_subkey_set_has(const fs_subkey_set_t *set, const char *key)
{
    return apr_hash_get(set->keys, key, APR_HASH_KEY_STRING) != NULL;
}

const char *fs_subkey_set_json(const fs_subkey_set_t *set)
{
    json_object *arr = json_object_new_array();
    apr_hash_index_t *hi;
    const char *json;

    for (hi = apr_hash_first(set->p, set->keys); hi; hi = apr_hash_next(hi)) {
        json_object_array_add(arr, json_object_new_string(apr_hash_this_key(hi)));
    }
    json = apr_pstrdup(set->p, json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN));
    json_object_put(arr);
    return json;
}

/* Filter side: a key too long to index makes the whole filter unusable as index (an
 * alternative left out would hide its matches), not just that key. */
static void add_filter_key(void *baton, const char *type, const char *param,
                           const char *value, apr_size_t len)
{
    fs_subkey_set_t *set = baton;
    add_key(baton, type, param, value, len);
    if (apr_hash_get(set->keys, make_key(set->p, type, param, value, len),
                     APR_HASH_KEY_STRING) == NULL) {
        set->overflow = 1;
    }
}

/* The keys of one filter, or NULL: none, or one that cannot be indexed. */
static apr_array_header_t *filter_keys(apr_pool_t *p, const fs_filter_t *f)
{
    fs_subkey_set_t *set = fs_subkey_set_make(p);
    apr_array_header_t *keys;
    apr_hash_index_t *hi;

    if (!fs_match_filter_keys(f, add_filter_key, set) || set->overflow
        || apr_hash_count(set->keys) == 0) {
        return NULL;
    }
    keys = apr_array_make(p, (int)apr_hash_count(set->keys), sizeof(const char *));
    for (hi = apr_hash_first(p, set->keys); hi; hi = apr_hash_next(hi)) {
        APR_ARRAY_PUSH(keys, const char *) = apr_hash_this_key(hi);
    }
    return keys;
}

apr_array_header_t *fs_subkey_of_filters(apr_pool_t *p, const apr_array_header_t *filters)
{
    apr_array_header_t *keys = NULL;
    int i;
    for (i = 0; !keys && filters && i < filters->nelts; ++i) {
        keys = filter_keys(p, APR_ARRAY_IDX(filters, i, const fs_filter_t *));
    }
    return keys;
}
