/* fs_event_group: group commit of event recordings within one process.
 *
 * Threads that record events at the same moment share one transaction: the first to
 * arrive while no recording runs leads it (records everyone queued, on its own
 * connection, with one commit) and the others wait for that commit. Each still returns
 * only once its events are committed, so they are exactly as durable as with
 * fs_event_record; what drops under concurrency is the number of commits (disk flushes
 * on SQLite) and of waits for a hot subscription's row lock. */
#ifndef FS_EVENT_GROUP_H
#define FS_EVENT_GROUP_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "fs_event.h"
#include "fs_store.h"

typedef struct fs_event_group_t fs_event_group_t;

/* A group for this process; max_batch: most recordings one transaction takes. */
apr_status_t fs_event_group_create(fs_event_group_t **pgroup, apr_pool_t *p, int max_batch);

/* fs_event_record on store, possibly committed together with other threads' recordings
 * into the same database. `db` names that database (any pointer equal for stores on the
 * same database, e.g. the server whose connection pool store comes from). group may be
 * NULL: then it is fs_event_record. When a shared transaction fails before its commit,
 * every thread but the leader records its own alone, so one bad recording or one lost
 * connection costs no other; the leader gets its error (it may recover its connection
 * and retry, as after fs_event_record). */
apr_status_t fs_event_group_record(fs_event_group_t *group, const void *db, fs_store_t *store,
                                   apr_pool_t *p, const fs_change_t *change,
                                   const apr_array_header_t *sub_ids);

#endif
