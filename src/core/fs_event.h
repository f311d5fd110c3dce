/* fs_event: recording the events of a captured write. One change row per write,
 * one event per matching subscription, numbered under that subscription's row lock
 * in the same transaction, so numbers are gapless and ordered even with many
 * writers (httpd processes, machines) at once. */
#ifndef FS_EVENT_H
#define FS_EVENT_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "fs_store.h"
#include "fs_topic.h"

/* A successful write, as captured on its way back from the FHIR server. */
typedef struct fs_change_t {
    const char *id;               /* fhirsub_change.id, a fresh uuid */
    apr_time_t created;           /* when it was captured */
    const char *resource_type;    /* focus type */
    const char *resource_id;      /* focus id */
    const char *version_id;       /* focus version, "" when unknown */
    const char *interaction;      /* create | update | delete */
    const char *request_method;   /* POST | PUT | PATCH | DELETE */
    const char *request_url;      /* relative, e.g. "Encounter/123" */
    const char *response_status;  /* e.g. "201 Created" */
    const char *body;             /* the resource JSON, "" for a delete or none */
    json_object *resource;        /* body parsed (NULL when none), for matching */
    json_object *previous;        /* the version before (an update's prior version, the
                                   * deleted resource), NULL when unknown; matching only,
                                   * never stored */
} fs_change_t;

/* Statements of this file, prepared with the store's (fs_store_prepare_all). */
extern const fs_stmt_def_t fs_event_statements[];

/* Subscriptions that can receive events now: status active or error (fs_sub_t*). */
apr_status_t fs_event_live_subs(fs_store_t *store, apr_pool_t *p,
                                apr_array_header_t **psubs);

/* The live subscriptions (active or error) that a write of one of `types` (const
 * char*, distinct resource types) may concern: those of a topic in `topics` with a
 * resourceTrigger for one of the types, and the classic ones whose criteria name one.
 * With keys_json (fs_subkey_set_json of the written resources), of the subscriptions
 * keyed by their filters only those holding one of these keys. Found through indexes,
 * so the cost follows these candidates, not all subscriptions; fs_match_subscription
 * decides. keys_json NULL (keys unknown, e.g. a delete whose resource was not read):
 * every candidate of the topics and types. The fs_sub_t* rows carry only id, status,
 * shape, topic, criteria, filters_json and version_id. */
apr_status_t fs_event_candidate_subs(fs_store_t *store, apr_pool_t *p,
                                     const fs_topics_t *topics,
                                     const apr_array_header_t *types, const char *keys_json,
                                     apr_array_header_t **psubs);

/* Record change and an event for each subscription in sub_ids (const char*), in
 * one transaction; subscriptions deleted or switched off meanwhile get none.
 * On PostgreSQL the notifiers are told at commit (NOTIFY fhirsub_event).
 * APR_EINCOMPLETE: the commit failed and may have happened (do not redo); any other
 * error: nothing was recorded. */
apr_status_t fs_event_record(fs_store_t *store, apr_pool_t *p, const fs_change_t *change,
                             const apr_array_header_t *sub_ids);

/* One change and the subscriptions (const char*) it gets an event for. */
typedef struct fs_event_item_t {
    const fs_change_t *change;
    const apr_array_header_t *sub_ids;
} fs_event_item_t;

/* fs_event_record for n items in one transaction: one commit (one disk flush) for all.
 * Each subscription's events are numbered in the order of the items. The outcome is
 * the transaction's, for every item alike. */
apr_status_t fs_event_record_batch(fs_store_t *store, apr_pool_t *p,
                                   const fs_event_item_t *items, int n);

/* PostgreSQL, in a transaction: lock the rows of the n subscriptions ids (a JSON array
 * of strings) in the order every recording and delivery mark uses (byte order of the
 * id), so that none waits for another in a cycle. */
#define FS_EVENT_LOCK_FEW 64
apr_status_t fs_event_lock_subs(fs_store_t *store, apr_pool_t *p, const char *ids, int n);

/* fs_event_record_batch over n fs_event_item_t*: an fs_group_fn (fs_group.h), so that
 * the events of concurrent writes share one commit. */
apr_status_t fs_event_record_items(fs_store_t *store, apr_pool_t *p, void *const *items, int n);

#endif
