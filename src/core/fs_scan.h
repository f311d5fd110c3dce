/* fs_scan: the notifier's reads of new events for many subscriptions at once. A scan
 * of 10,000 subscriptions read each one's events and row with two statements apiece;
 * these read a whole chunk with two statements, whatever its size. */
#ifndef FS_SCAN_H
#define FS_SCAN_H

#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_tables.h>

#include "fs_store.h"

/* Statements of this file, prepared with the store's (fs_store_prepare_all). */
extern const fs_stmt_def_t fs_scan_statements[];

/* One subscription's part of fs_scan_events_after. */
typedef struct fs_scan_read_t {
    const char *sub_id;           /* in: the subscription */
    apr_int64_t after;            /* in: events numbered above this */
    int limit;                    /* in: at most this many (at least 1) */
    apr_array_header_t *events;   /* out: fs_notify_event_t, as fs_store_events_after */
} fs_scan_read_t;

/* fs_store_events_after for n subscriptions (distinct ids): one statement for all,
 * plus one for each subscription whose numbers above `after` have a hole (events
 * pruned above a cursor), checked against its events_since_start read with them. */
apr_status_t fs_scan_events_after(fs_store_t *store, apr_pool_t *p, fs_scan_read_t *reads,
                                  int n);

/* The rows of the subscriptions ids (const char*) that exist, as id -> fs_sub_t*
 * (fs_store_sub_get's rows), in one statement. */
apr_status_t fs_scan_subs(fs_store_t *store, apr_pool_t *p, const apr_array_header_t *ids,
                          apr_hash_t **psubs);

#endif
