/* fs_store: the SQL contract between the httpd module, the notifier and the admin
 * CLI. One schema (versioned, identical on sqlite3 and pgsql) and one table of
 * prepared statements; callers hand in a connection and its prepared statements,
 * whether they come from mod_dbd or from a plain apr_dbd_open. */
#ifndef FS_STORE_H
#define FS_STORE_H

#include <apr_pools.h>
#include <apr_hash.h>
#include <apr_tables.h>
#include <apr_dbd.h>

#include "fs_notify.h"
#include "fs_sub.h"

#define FS_SCHEMA_VERSION 3

/* One prepared statement: a label (module prefixed, [a-z_] only since pgsql turns it
 * into PREPARE <label>) and SQL with apr_dbd %s markers. */
typedef struct fs_stmt_def_t {
    const char *label;
    const char *sql;
    const char *driver;   /* NULL: every driver; else only this apr_dbd driver name */
} fs_stmt_def_t;

/* NULL-terminated table of every statement the product uses. */
extern const fs_stmt_def_t fs_store_statements[];

typedef struct fs_store_t {
    const apr_dbd_driver_t *driver; /* apr_dbd driver ("sqlite3" or "pgsql") */
    apr_dbd_t *handle;              /* one connection, used by one thread at a time */
    apr_hash_t *prepared;           /* label -> apr_dbd_prepared_t* */
} fs_store_t;

/* Prepare every statement on a connection the caller opened itself (notifier, CLI).
 * mod_dbd users prepare through ap_dbd_prepare instead and pass its hash. */
apr_status_t fs_store_prepare_all(fs_store_t *store, apr_pool_t *p, const char **perr);

/* True when every statement for this driver is in prepared. */
int fs_store_prepared_complete(apr_hash_t *prepared, const apr_dbd_driver_t *driver);

/* Drop our statements from prepared, e.g. after the server session under them was
 * reset (PostgreSQL forgets prepared statements then); others' entries stay. */
void fs_store_forget_prepared(apr_hash_t *prepared);

/* Create or migrate the schema to FS_SCHEMA_VERSION. Safe to run from many processes
 * at once: each step is one transaction and a loser of a race finds the work done. */
apr_status_t fs_store_migrate(fs_store_t *store, apr_pool_t *p, const char **perr);

/* The schema version in the database: 0 when the version row is not written yet,
 * APR_EGENERAL when the schema table does not exist (fs_store_migrate creates it). */
apr_status_t fs_store_schema_version(fs_store_t *store, apr_pool_t *p, int *pversion);

/* ---- subscriptions ------------------------------------------------------ */
apr_status_t fs_store_sub_insert(fs_store_t *store, apr_pool_t *p, const fs_sub_t *sub);
/* APR_NOTFOUND when absent. */
apr_status_t fs_store_sub_get(fs_store_t *store, apr_pool_t *p, const char *id,
                              fs_sub_t **psub);
/* All subscriptions of owner, oldest first (fs_sub_t*). */
apr_status_t fs_store_sub_list_owner(fs_store_t *store, apr_pool_t *p, const char *owner,
                                     apr_array_header_t **psubs);
/* Replace the definition if the stored version is still old_version:
 * APR_NOTFOUND when absent, APR_EEXIST when another update won the race. */
apr_status_t fs_store_sub_update(fs_store_t *store, apr_pool_t *p, const fs_sub_t *sub,
                                 apr_int64_t old_version);
/* Change the status column only (e.g. "off" once `end` passed). */
apr_status_t fs_store_sub_set_status(fs_store_t *store, apr_pool_t *p, const char *id,
                                     const char *from_status, const char *to_status);
/* Delete with its events and grant links; APR_NOTFOUND when absent. */
apr_status_t fs_store_sub_delete(fs_store_t *store, apr_pool_t *p, const char *id,
                                 const char *owner);

/* ---- grants (what a binding token stands for) --------------------------- */
typedef struct fs_grant_t {
    const char *id;                  /* the token's jti */
    const char *owner;               /* the user it was issued to */
    apr_array_header_t *sub_ids;     /* const char*: the subscriptions it covers */
    apr_time_t issued;               /* when it was issued */
    apr_time_t expires;              /* when it stops being valid */
    apr_time_t revoked;              /* when it was revoked, 0 = not revoked */
} fs_grant_t;

/* The grant and its subscription links in one transaction, with relaxed durability:
 * grants are short-lived and can be requested again, so on PostgreSQL the commit does
 * not wait for the WAL flush (synchronous_commit off for this transaction). On SQLite
 * the caller decides (fhirsub_store_grant_insert lowers `synchronous` around it). */
apr_status_t fs_store_grant_insert(fs_store_t *store, apr_pool_t *p, const fs_grant_t *g);
/* The same for n fs_grant_t* in one transaction: an fs_group_fn (fs_group.h). */
apr_status_t fs_store_grant_insert_items(fs_store_t *store, apr_pool_t *p, void *const *items,
                                         int n);
/* PostgreSQL: fs_store_grant_insert and, in the same statement (one round trip, not
 * two), the subscriptions the grant names: *psubs gets the fs_sub_t* of those that
 * exist, in no particular order. The grant is written whatever they are: a caller that
 * then refuses the token deletes it (fs_store_grant_delete). APR_ENOTIMPL, nothing
 * written, on other drivers or when an id cannot be passed (empty, or with a space). */
apr_status_t fs_store_grant_insert_read_subs(fs_store_t *store, apr_pool_t *p,
                                            const fs_grant_t *g, apr_array_header_t **psubs);
/* APR_NOTFOUND when absent. */
apr_status_t fs_store_grant_get(fs_store_t *store, apr_pool_t *p, const char *id,
                                fs_grant_t **pgrant);
/* Delete a grant and its links (one whose token was never handed out). */
apr_status_t fs_store_grant_delete(fs_store_t *store, apr_pool_t *p, const char *id);
/* Revoke one grant (*pcount = 0 when absent or already revoked). */
apr_status_t fs_store_grant_revoke(fs_store_t *store, apr_pool_t *p, const char *id,
                                   apr_time_t now, int *pcount);
/* Revoke every live grant of a user. */
apr_status_t fs_store_grant_revoke_owner(fs_store_t *store, apr_pool_t *p,
                                         const char *owner, apr_time_t now, int *pcount);
/* Delete grants that expired before `before` (with their links). */
apr_status_t fs_store_grant_prune(fs_store_t *store, apr_pool_t *p, apr_time_t before,
                                  int *pcount);

/* Text of the last driver error on this connection. */
const char *fs_store_error(fs_store_t *store, int rv);

/* ---- fhirsub-notifier --------------------------------------------------- */

/* Events of a subscription numbered above `after`, in event-number order, at most
 * limit of them, each joined with its change (fs_notify_event_t, allocated from p).
 * Numbers are gapless per subscription and assigned under its row lock, so reading
 * "above my cursor" never skips an event that commits later. */
apr_status_t fs_store_events_after(fs_store_t *store, apr_pool_t *p, const char *sub_id,
                                   apr_int64_t after, int limit,
                                   apr_array_header_t **pevents);

/* Record that these subscriptions (const char* ids) are bound to a websocket now
 * (last_bound_ms), in one transaction. Unbound ones expire, see list_unbound. */
apr_status_t fs_store_sub_mark_bound(fs_store_t *store, apr_pool_t *p,
                                     const apr_array_header_t *ids, apr_time_t now);

/* A notification of subscription sub_id was delivered at `when`. */
typedef struct fs_delivery_t {
    const char *sub_id;
    apr_time_t when;
} fs_delivery_t;

/* Deliveries (fs_delivery_t, distinct ids) in one statement and transaction:
 * last_delivery_ms (never moved back), and a subscription in `error` returns to
 * `active` with its error cleared. On PostgreSQL the commit does not wait for the WAL
 * flush (bookkeeping: the next delivery says it again). */
apr_status_t fs_store_sub_mark_delivered(fs_store_t *store, apr_pool_t *p,
                                         const fs_delivery_t *d, int n);

/* Delivery failed: an `active` subscription turns `error` with text as its error. */
apr_status_t fs_store_sub_mark_error(fs_store_t *store, apr_pool_t *p, const char *id,
                                     const char *text);

/* A subscription in `error` returns to `active` (e.g. its client bound again). */
apr_status_t fs_store_sub_clear_error(fs_store_t *store, apr_pool_t *p, const char *id);

/* Websocket subscriptions neither bound nor created since `before`, oldest first,
 * at most limit; shape 0 = every shape, else only that fs_sub_shape_t. The
 * fs_sub_t* carry id and owner only. */
apr_status_t fs_store_sub_list_unbound(fs_store_t *store, apr_pool_t *p, apr_time_t before,
                                       int shape, int limit, apr_array_header_t **psubs);

/* Delete one such subscription (with its events and grant links) if it is still
 * unbound since `before`; *pdeleted = 1 when it was deleted. */
apr_status_t fs_store_sub_delete_unbound(fs_store_t *store, apr_pool_t *p, const char *id,
                                         apr_time_t before, int *pdeleted);

/* ---- retention (fhirsub-notifier; docs/NOTIFIER.md "Retention") ---------- */

/* A subscription as a retention pass sees it. */
typedef struct fs_prune_sub_t {
    const char *id;
    apr_int64_t events_since_start;
    apr_time_t last_bound;           /* 0 = never bound */
    apr_time_t last_delivery;        /* 0 = nothing delivered */
} fs_prune_sub_t;

/* Subscriptions that have events, id above after_id ("" = from the start), in id
 * order, at most limit (fs_prune_sub_t). */
apr_status_t fs_store_prune_subs(fs_store_t *store, apr_pool_t *p, const char *after_id,
                                 int limit, apr_array_header_t **psubs);

/* Which events of one subscription may go: those older than older_ms or numbered at
 * most upto_number, but never numbered above max_number nor created after
 * keep_after_ms. Epoch milliseconds; APR_INT64_MAX lifts a bound, 0 disables a limit. */
typedef struct fs_prune_rule_t {
    apr_int64_t max_number;          /* a bound client's cursor; APR_INT64_MAX = none */
    apr_int64_t older_ms;            /* age limit: created before; 0 = none */
    apr_int64_t upto_number;         /* count limit: numbered at most; 0 = none */
    apr_int64_t keep_after_ms;       /* undelivered: created after; APR_INT64_MAX = none */
} fs_prune_rule_t;

/* Delete at most limit events of sub_id that rule lets go, lowest numbers first: one
 * read, then one short delete; *pdeleted = how many (limit: there may be more). */
apr_status_t fs_store_events_prune(fs_store_t *store, apr_pool_t *p, const char *sub_id,
                                   const fs_prune_rule_t *rule, int limit, int *pdeleted);

/* Where a walk over fhirsub_change stands: start with {-1, "", 0}. */
typedef struct fs_prune_mark_t {
    apr_int64_t created_ms;
    char id[72];
    int done;                        /* the walk reached the end */
} fs_prune_mark_t;

/* Delete at most limit change rows that no event references, oldest first from mark
 * on (one read, one short transaction), and move mark past them. */
apr_status_t fs_store_changes_prune(fs_store_t *store, apr_pool_t *p, fs_prune_mark_t *mark,
                                    int limit, int *pdeleted);

#endif
