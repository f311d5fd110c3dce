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

/* Record change and an event for each subscription in sub_ids (const char*), in
 * one transaction; subscriptions deleted or switched off meanwhile get none.
 * On PostgreSQL the notifiers are told at commit (NOTIFY fhirsub_event).
 * APR_EINCOMPLETE: the commit failed and may have happened (do not redo); any other
 * error: nothing was recorded. */
apr_status_t fs_event_record(fs_store_t *store, apr_pool_t *p, const fs_change_t *change,
                             const apr_array_header_t *sub_ids);

#endif
