/* fs_admin: the queries only the administration tool (fhirsub-admin) runs: listings
 * across users, the event backlog, pruning. Its statements live in their own table,
 * prepared by fs_admin_prepare on the tool's connection, so the module and the
 * notifier never prepare them. */
#ifndef FS_ADMIN_H
#define FS_ADMIN_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#include "fs_store.h"

/* NULL-terminated; labels prefixed fhirsub_admin_. */
extern const fs_stmt_def_t fs_admin_statements[];

/* Prepare fs_admin_statements on store (after fs_store_prepare_all). */
apr_status_t fs_admin_prepare(fs_store_t *store, apr_pool_t *p, const char **perr);

/* Every subscription (fs_sub_t*), or only owner's when owner is not NULL; oldest first. */
apr_status_t fs_admin_sub_list(fs_store_t *store, apr_pool_t *p, const char *owner,
                               apr_array_header_t **psubs);

/* Grants (fs_grant_t*, with their subscription ids), oldest first: only owner's when
 * owner is not NULL; only live ones (not revoked, not expired at now) unless all. */
apr_status_t fs_admin_grant_list(fs_store_t *store, apr_pool_t *p, const char *owner,
                                 int all, apr_time_t now, apr_array_header_t **pgrants);

/* Revoke the grants of owner that are live at now; *pcount = how many. */
apr_status_t fs_admin_grant_revoke_live(fs_store_t *store, apr_pool_t *p, const char *owner,
                                        apr_time_t now, int *pcount);

/* The stored events of one subscription. */
typedef struct fs_admin_backlog_t {
    const char *id;                 /* subscription id */
    const char *owner;              /* its owner */
    const char *status;             /* stored status column */
    apr_time_t end;                 /* its end, 0 = none (for the effective status) */
    apr_int64_t events_since_start; /* highest event number assigned */
    apr_time_t last_delivery;       /* last delivery to a websocket, 0 = never */
    apr_time_t last_bound;          /* last bind or refresh by a notifier, 0 = never */
    apr_int64_t stored;             /* rows in fhirsub_event */
    apr_int64_t undelivered;        /* of those, created after last_delivery */
    apr_time_t oldest;              /* creation of the oldest stored event, 0 = none */
} fs_admin_backlog_t;

/* One fs_admin_backlog_t* per subscription, oldest subscription first. */
apr_status_t fs_admin_backlog(fs_store_t *store, apr_pool_t *p, apr_array_header_t **prows);

typedef struct fs_admin_prune_t {
    apr_int64_t events_old;        /* events created before the cutoff */
    apr_int64_t events_deleted;    /* of those, deleted */
    apr_int64_t changes_deleted;   /* fhirsub_change rows no event referenced any more */
} fs_admin_prune_t;

/* In one transaction: delete the events created before `before`, except the newest
 * `keep` (by event number) of each subscription and, of a subscription bound since
 * `before`, those created after its last delivery (a notifier may not have sent them
 * yet); then delete the changes no event references. */
apr_status_t fs_admin_prune_events(fs_store_t *store, apr_pool_t *p, apr_time_t before,
                                   apr_int64_t keep, fs_admin_prune_t *result);

#endif
