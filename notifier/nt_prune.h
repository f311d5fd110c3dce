/* nt_prune: event retention, run by the database worker (never the service thread)
 * one short step at a time between its jobs (docs/NOTIFIER.md "Retention").
 *
 * Every PruneInterval the service thread sends a PRUNE job listing the subscriptions
 * bound here with the lowest cursor of their bindings. A pass then walks the
 * subscriptions that have events and deletes, in bounded batches, those beyond
 * EventRetention (age) or EventRetentionCount (newest N), except
 *  - events numbered above the lowest cursor of a binding held here (not yet sent),
 *  - for a subscription not bound here but bound (last_bound_ms) within
 *    PruneBoundGrace, perhaps on another notifier: events created after its
 *    last_delivery_ms;
 * then the change rows no event references any more.
 *
 * Binds the worker answered after the service thread listed its bindings are not in
 * the job: the worker notes them (nt_floors) until the service thread has applied
 * their results, so a binding made meanwhile is protected too. */
#ifndef NT_PRUNE_H
#define NT_PRUNE_H

#include <apr_hash.h>
#include <apr_pools.h>

#include "fs_store.h"
#include "nt_config.h"
#include "nt_db.h"

/* Cursors of binds answered by the worker, per subscription: the lowest one and the
 * sequence number of the latest result carrying one (worker thread only). */
typedef struct nt_floors_t {
    apr_pool_t *pool;
    apr_hash_t *map;                  /* sub id -> nt_floor_t* */
} nt_floors_t;

/* A bind answered with result seq: its subscriptions start at their handshake's N. */
void nt_floors_note(nt_floors_t *f, apr_pool_t *parent, const nt_job_t *bind,
                    apr_uint64_t seq);
/* Forget the binds whose results the service thread applied (seq <= seen_seq). */
void nt_floors_forget(nt_floors_t *f, apr_pool_t *parent, apr_uint64_t seen_seq);

/* The rule for one subscription (pure): held = bound here with lowest cursor floor.
 * 0 when nothing of it can go. */
int nt_prune_rule(fs_prune_rule_t *rule, const nt_config_t *conf, const fs_prune_sub_t *sub,
                  int held, apr_int64_t floor, apr_time_t now);

typedef struct nt_prune_t nt_prune_t;

/* A pass for a PRUNE job (its items are copied); NULL when out of memory. */
nt_prune_t *nt_prune_start(apr_pool_t *parent, const nt_config_t *conf, const nt_job_t *job,
                           nt_floors_t *floors);

/* One bounded step: 1 = more to do, 0 = the pass is complete, -1 = a statement failed. */
int nt_prune_step(nt_prune_t *pr, fs_store_t *store);

/* End the pass and free it: complete 1 logs what it deleted, 0 that a statement
 * failed, -1 (shutdown) nothing. */
void nt_prune_end(nt_prune_t *pr, int complete);

#endif
