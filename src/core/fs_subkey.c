#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "fs_match.h"
#include "fs_subkey.h"

struct fs_subkey_set_t {
    apr_pool_t *p;
    apr_hash_t *keys;           /* key -> key: each once */
    apr_array_header_t *list;   /* the same keys (const char*), in the order added */
    int overflow;
};

static const char *make_key(apr_pool_t *p, const char *type, const char *param,
                            const char *value, apr_size_t len)
{
    return apr_pstrcat(p, type, ".", param, "=", apr_pstrmemdup(p, value, len), NULL);
}

/* Whether the key is in the set now: 0 when it is too long to index or the set is full. */
static int keep(fs_subkey_set_t *set, const char *type, const char *param, const char *value,
                apr_size_t len)
{
    const char *key;

    if (len > FS_SUBKEY_MAX_LEN || set->overflow) return 0;   /* no filter has it as key */
    key = make_key(set->p, type, param, value, len);
    if (strlen(key) > FS_SUBKEY_MAX_LEN) return 0;
    if (apr_hash_get(set->keys, key, APR_HASH_KEY_STRING)) return 1;
    if (set->list->nelts >= FS_SUBKEY_MAX_PER_WRITE) {
        set->overflow = 1;
        return 0;
    }
    apr_hash_set(set->keys, key, APR_HASH_KEY_STRING, key);
    APR_ARRAY_PUSH(set->list, const char *) = key;
    return 1;
}

/* Resource side: a value too long to be a key is one no filter waits for. */
static void add_key(void *baton, const char *type, const char *param, const char *value,
                    apr_size_t len)
{
    keep(baton, type, param, value, len);
}

fs_subkey_set_t *fs_subkey_set_make(apr_pool_t *p)
{
    fs_subkey_set_t *set = apr_pcalloc(p, sizeof(*set));
    set->p = p;
    set->keys = apr_hash_make(p);
    set->list = apr_array_make(p, 8, sizeof(const char *));
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
    return fs_json_str_array(set->p, set->list);
}

/* Filter side: a key too long to index makes the whole filter unusable as index (an
 * alternative left out would hide its matches), not just that key. */
static void add_filter_key(void *baton, const char *type, const char *param,
                           const char *value, apr_size_t len)
{
    fs_subkey_set_t *set = baton;
    if (!keep(set, type, param, value, len)) set->overflow = 1;
}

/* The keys of one filter, or NULL: none, or one that cannot be indexed. */
static apr_array_header_t *filter_keys(apr_pool_t *p, const fs_filter_t *f)
{
    fs_subkey_set_t *set = fs_subkey_set_make(p);

    if (!fs_match_filter_keys(f, add_filter_key, set) || set->overflow
        || set->list->nelts == 0) {
        return NULL;
    }
    return set->list;
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
