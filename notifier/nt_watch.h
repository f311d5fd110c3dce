/* nt_watch: the subscriptions bound on this notifier (service thread only).
 *
 * A watch exists while at least one connection binds its subscription (or a scan
 * of it is in flight). It keeps a snapshot of the subscription row (status,
 * counters, shape, base URL, content: what heartbeats need), refreshed by binds,
 * scans and revalidation, and the list of its bindings.
 *
 * Delivery: a watch is marked dirty by a wake-up naming it (or naming nothing), by
 * the PollInterval timer and by a new binding; dirty watches are scanned by the
 * database worker from the lowest cursor of their bindings. The events come back
 * as ready-made notifications of up to the subscription's max_count events each
 * (nt_batch: never spanning a binding's cursor), each built once and queued, in
 * number order, to every binding whose cursor is below its first event: every
 * binding gets every event exactly once. At most one scan per watch is in flight;
 * marks made meanwhile start another when it returns. */
#ifndef NT_WATCH_H
#define NT_WATCH_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "fs_sub.h"
#include "nt_conn.h"
#include "nt_db.h"

struct nt_watch_t {
    char *sub_id;                      /* the subscription id (hash key) */
    fs_sub_t *sub;                     /* snapshot of the row (one malloc block), replaced on
                                          every update */
    nt_binding_t *bindings;            /* linked through watch_next */
    int nbindings;
    int dirty;                         /* events may be waiting */
    int inflight;                      /* a scan is running */
};

/* The watch of a subscription, or NULL. */
nt_watch_t *nt_watch_get(nt_server_t *srv, const char *sub_id);

/* The watch of sub, created if needed, its snapshot updated from sub. */
nt_watch_t *nt_watch_attach(nt_server_t *srv, const fs_sub_t *sub);

/* Replace the snapshot (events_since_start never moves back). */
void nt_watch_update(nt_watch_t *w, const fs_sub_t *sub);

/* Free the watch if nothing uses it any more. */
void nt_watch_release(nt_server_t *srv, nt_watch_t *w);

/* Mark watches dirty (ids: const char*, NULL = all) and schedule a scan. */
void nt_watch_mark(nt_server_t *srv, const apr_array_header_t *ids);
void nt_watch_mark_one(nt_server_t *srv, nt_watch_t *w);

/* Apply a SCAN result. */
void nt_watch_scan_done(nt_server_t *srv, nt_job_t *job);

/* Cancel the scan timer (shutdown). */
void nt_watch_stop(nt_server_t *srv);

#endif
