/* fs_group: group commit within one process.
 *
 * Threads that write the same kind of thing into the same database at the same moment
 * share one transaction: the first to arrive while no batch of that group runs leads
 * (writes everyone queued, on its own connection, with one commit) and the others wait
 * for that commit. Each still returns only once its own write is committed, so it is
 * exactly as durable as written alone; what drops under concurrency is the number of
 * commits (disk flushes, SQLite's write lock, WAL pages) and of waits for hot rows.
 * Used for events (fs_event_record_items) and grants (fs_store_grant_insert_items). */
#ifndef FS_GROUP_H
#define FS_GROUP_H

#include <apr_pools.h>

#include "fs_store.h"

/* Writes n items in one transaction on store; the outcome is the same for all. */
typedef apr_status_t fs_group_fn(fs_store_t *store, apr_pool_t *p, void *const *items, int n);

typedef struct fs_group_t fs_group_t;

/* A group for this process; max_batch: most items one transaction takes. */
apr_status_t fs_group_create(fs_group_t **pgroup, apr_pool_t *p, int max_batch);

/* fn(store, p, &item, 1), possibly done together with other threads' items of the same
 * fn into the same database. `db` names that database (any pointer equal for stores on
 * the same database, e.g. the server whose connection pool store comes from). group may
 * be NULL: then item is written alone. When a shared transaction fails before its
 * commit, every thread writes its own alone on its own connection, so one bad item or
 * one lost connection costs no other; the error returned is that of the item's own
 * write (after which the caller may recover its connection and retry).
 * APR_EINCOMPLETE: the commit itself failed (it may have happened); not redone. */
apr_status_t fs_group_run(fs_group_t *group, fs_group_fn *fn, const void *db,
                          fs_store_t *store, apr_pool_t *p, void *item);

#endif
