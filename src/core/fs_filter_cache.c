#include <apr_hash.h>
#include <apr_strings.h>
#include <apr_thread_mutex.h>

#include "fs_match.h"
#include "fs_filter_cache.h"

typedef struct cache_entry {
    apr_status_t rv;                      /* of the parse */
    const apr_array_header_t *filters;    /* fs_filter_t*, on success */
    const char *err;                      /* on failure */
} cache_entry;

struct fs_filter_cache_t {
    apr_pool_t *pool;                     /* entries and keys; guarded by mutex */
    apr_thread_mutex_t *mutex;
    apr_hash_t *by_json;                  /* filters JSON -> cache_entry */
    apr_hash_t *by_criteria;              /* classic criteria -> cache_entry */
    unsigned count, max;
    const apr_array_header_t *none;       /* for subscriptions without filters */
};

apr_status_t fs_filter_cache_create(fs_filter_cache_t **pcache, apr_pool_t *p,
                                    unsigned max_entries)
{
    fs_filter_cache_t *c;
    apr_pool_t *sub;
    apr_status_t rv;

    *pcache = NULL;
    if (APR_SUCCESS != (rv = apr_pool_create(&sub, p))) return rv;
    c = apr_pcalloc(sub, sizeof(*c));
    c->pool = sub;
    rv = apr_thread_mutex_create(&c->mutex, APR_THREAD_MUTEX_DEFAULT, sub);
    if (rv != APR_SUCCESS) {
        apr_pool_destroy(sub);
        return rv;
    }
    c->by_json = apr_hash_make(sub);
    c->by_criteria = apr_hash_make(sub);
    c->max = max_entries;
    c->none = apr_array_make(sub, 1, sizeof(void *));
    *pcache = c;
    return APR_SUCCESS;
}

/* What fs_match_sub_filters parses for sub, and in which table it is kept (NULL: no
 * filters at all). */
static const char *cache_key(fs_filter_cache_t *c, const fs_sub_t *sub, apr_hash_t **ptable)
{
    if (sub->filters_json && *sub->filters_json) {
        *ptable = c->by_json;
        return sub->filters_json;
    }
    if (sub->shape == FS_SHAPE_CLASSIC && sub->criteria) {
        *ptable = c->by_criteria;
        return sub->criteria;
    }
    return NULL;
}

/* Parse into the cache and keep the outcome; called with the mutex held. */
static cache_entry *cache_fill(fs_filter_cache_t *c, apr_hash_t *table, const char *key,
                               const fs_sub_t *sub)
{
    cache_entry *e = apr_pcalloc(c->pool, sizeof(*e));
    apr_array_header_t *filters = NULL;

    e->rv = fs_match_sub_filters(&filters, c->pool, sub, &e->err);
    e->filters = filters;
    apr_hash_set(table, apr_pstrdup(c->pool, key), APR_HASH_KEY_STRING, e);
    c->count++;
    return e;
}

apr_status_t fs_filter_cache_get(fs_filter_cache_t *c, apr_pool_t *p, const fs_sub_t *sub,
                                 const apr_array_header_t **pfilters, const char **perr)
{
    apr_array_header_t *parsed = NULL;
    apr_hash_t *table = NULL;
    const char *key;
    cache_entry *e;
    apr_status_t rv;

    *pfilters = NULL;
    if (c && !(key = cache_key(c, sub, &table))) {
        *pfilters = c->none;
        return APR_SUCCESS;
    }
    if (c) {
        apr_thread_mutex_lock(c->mutex);
        e = apr_hash_get(table, key, APR_HASH_KEY_STRING);
        if (!e && c->count < c->max) e = cache_fill(c, table, key, sub);
        apr_thread_mutex_unlock(c->mutex);
        if (e) {
            *pfilters = e->filters;
            *perr = e->err;
            return e->rv;
        }
    }
    rv = fs_match_sub_filters(&parsed, p, sub, perr);
    *pfilters = parsed;
    return rv;
}
