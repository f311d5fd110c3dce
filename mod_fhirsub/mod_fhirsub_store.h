/* mod_fhirsub_store: the core store on mod_dbd's pooled connections.
 *
 * Statements are prepared once per connection, in mod_dbd's post_connect hook, right
 * after the schema has been created or migrated on it. Preparing them through
 * ap_dbd_prepare at config time would make every new connection fail while the
 * tables do not exist yet (sqlite3 and pgsql both check tables when preparing), and
 * preparing at request time fails on the second use of a label. */
#ifndef MOD_FHIRSUB_STORE_H
#define MOD_FHIRSUB_STORE_H

#include <httpd.h>

#include "fs_store.h"

/* Register the mod_dbd post_connect hook. */
void fhirsub_store_register_hooks(void);

/* Remember that some location serves subscriptions (only then do we touch mod_dbd
 * connections) and set up process-wide state; from post_config / child_init. */
void fhirsub_store_enable(void);
void fhirsub_store_child_init(apr_pool_t *pchild, server_rec *s);

/* A store on the request's pooled connection. NULL when the database is unavailable
 * (logged; the caller answers 503). */
fs_store_t *fhirsub_store_acquire(request_rec *r);

/* Most grants one transaction takes (fs_group.h). */
#define FHIRSUB_GRANT_BATCH_MAX 64

/* fs_store_grant_insert, committed together with the grants other threads of this
 * process issue at the same moment (fs_group.h), and with relaxed durability on SQLite
 * too: the connection's `synchronous` is NORMAL for the grants' commit (written to the
 * WAL, not synced) and FULL again right after, so every other commit, events above all,
 * stays synchronous. */
apr_status_t fhirsub_store_grant_insert(request_rec *r, fs_store_t *store,
                                        const fs_grant_t *grant);

/* After a statement failed: when the connection under store was lost (PostgreSQL
 * restarted or failed over), reconnect and prepare again. 1 = worth retrying the
 * failed work once on the same store; 0 = nothing was lost or it cannot be mended. */
int fhirsub_store_recover(request_rec *r, fs_store_t *store);

#endif
