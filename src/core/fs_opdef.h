/* fs_opdef: the OperationDefinitions the module serves ($get-ws-binding-token,
 * $status, $events on Subscription), in the R4 Backport IG form and the R5 form. */
#ifndef FS_OPDEF_H
#define FS_OPDEF_H

#include <apr_pools.h>
#include <json-c/json.h>

#include "fs_fhir.h"

/* Operation codes (the name after '$'). */
#define FS_OP_GET_WS_BINDING_TOKEN "get-ws-binding-token"
#define FS_OP_STATUS "status"
#define FS_OP_EVENTS "events"

/* Build the OperationDefinition with that id for version v
 * ("Subscription-status" in R5, "backport-subscription-status" in R4, ...).
 * *pj is owned by p. APR_NOTFOUND when v has no such id. */
apr_status_t fs_opdef_get(json_object **pj, apr_pool_t *p, fs_fhir_version_t v,
                          const char *id);

/* The ids served for v, NULL-terminated, static. Never NULL. */
const char *const *fs_opdef_ids(fs_fhir_version_t v);

/* Id and canonical URL of the operation code ("get-ws-binding-token", "status",
 * "events", without '$') in version v; static strings, NULL when unknown. */
const char *fs_opdef_id(fs_fhir_version_t v, const char *code);
const char *fs_opdef_canonical(fs_fhir_version_t v, const char *code);

#endif
