/* fs_store_int: what the store's files share among themselves (fs_store.c,
 * fs_event.c); not for callers of the store. */
#ifndef FS_STORE_INT_H
#define FS_STORE_INT_H

#include "fs_store.h"

/* The columns of a subscription, in the order fs_store_sub_from_row reads: its row (s)
 * and its counters (c: fhirsub_sub_counter, the narrow row that events and the notifier's
 * marks rewrite), as SUB_FROM joins them. Every subscription has its counter row. */
#define SUB_COLUMNS \
    "s.id, s.owner, s.status, s.channel_type, s.shape, s.topic, s.criteria, s.filters," \
    " s.content, s.content_type, s.heartbeat_period, s.timeout, s.max_count, s.end_ms," \
    " s.base_url, c.events_since_start, c.last_delivery_ms, s.error, s.version_id," \
    " s.created_ms, s.updated_ms, c.last_bound_ms, s.resource"
#define SUB_FROM \
    " FROM fhirsub_subscription s JOIN fhirsub_sub_counter c ON c.subscription_id = s.id"
#define SUB_NCOLUMNS 23

/* Run a prepared statement; *pnrows (may be NULL) gets the rows it changed. */
apr_status_t fs_store_exec(fs_store_t *store, apr_pool_t *p, const char *label,
                           int *pnrows, int nargs, const char **args);

/* Run a prepared select and copy every row (const char** of ncols) into *prows. */
apr_status_t fs_store_select(fs_store_t *store, apr_pool_t *p, const char *label,
                             int nargs, const char **args, int ncols,
                             apr_array_header_t **prows);

apr_status_t fs_store_tx_start(fs_store_t *store, apr_pool_t *p,
                               apr_dbd_transaction_t **ptx);
/* Commit unless rv is an error (then roll back); returns the outcome: APR_EINCOMPLETE
 * when the commit itself failed (its effect is unknown). */
apr_status_t fs_store_tx_end(fs_store_t *store, apr_pool_t *p, apr_dbd_transaction_t *tx,
                             apr_status_t rv);

const char *fs_store_i64(apr_pool_t *p, apr_int64_t v);
apr_int64_t fs_store_to_i64(const char *s);
fs_sub_t *fs_store_sub_from_row(apr_pool_t *p, const char **cols);
/* An event of fhirsub_event_after's 10 columns (number, created_ms, the change's). */
void fs_store_event_from_row(fs_notify_event_t *ev, const char **cols);

/* fs_subkey_store.c: a subscription's index keys (fs_subkey.h). */

/* Replace the keys of s with those of its filters and set its keyed flag; inside the
 * transaction that writes s. Filters that do not parse leave it unkeyed (a candidate for
 * every write, where matching logs the problem). */
apr_status_t fs_subkey_write(fs_store_t *store, apr_pool_t *p, const fs_sub_t *s);

/* Schema step 2, before any statement is prepared: keys for every subscription stored. */
apr_status_t fs_subkey_backfill(fs_store_t *store, apr_pool_t *p, const char **perr);

#endif
