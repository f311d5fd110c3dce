/* fs_filter_cache: the parsed filters of subscriptions (fs_match_sub_filters), kept per
 * process so that a captured write does not parse every candidate's filters again.
 *
 * Entries are keyed by what they are parsed from: the stored filters JSON, or for a
 * classic subscription without it, its criteria. A subscription's update therefore makes
 * a new key (never a stale answer), and identical filters share one entry. Entries are
 * never evicted, so what get() hands out stays valid as long as the cache's pool; past
 * max_entries, filters are parsed into the caller's pool instead (right, only slower).
 * Safe to use from several threads at once. */
#ifndef FS_FILTER_CACHE_H
#define FS_FILTER_CACHE_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "fs_sub.h"

typedef struct fs_filter_cache_t fs_filter_cache_t;

/* A cache living in a subpool of p (memory grows with the distinct filters it holds). */
apr_status_t fs_filter_cache_create(fs_filter_cache_t **pcache, apr_pool_t *p,
                                    unsigned max_entries);

/* The filters of sub (fs_filter_t*; read-only, shared with other threads). cache may be
 * NULL: then they are parsed into p. A parse error is kept too and answered with its
 * text in *perr (allocated from the cache or p). */
apr_status_t fs_filter_cache_get(fs_filter_cache_t *cache, apr_pool_t *p, const fs_sub_t *sub,
                                 const apr_array_header_t **pfilters, const char **perr);

#endif
