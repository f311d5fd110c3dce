/* fs_status: SubscriptionStatus in the two shapes clients read: the R4 backport
 * `Parameters` (backport-subscription-status-r4) and the R5 SubscriptionStatus
 * resource; and the searchset Bundle $status answers with. */
#ifndef FS_STATUS_H
#define FS_STATUS_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "fs_fhir.h"
#include "fs_sub.h"

/* Notification type codes (http://hl7.org/fhir/subscription-notification-type). */
#define FS_NOTIFY_HANDSHAKE "handshake"
#define FS_NOTIFY_HEARTBEAT "heartbeat"
#define FS_NOTIFY_EVENT "event-notification"
#define FS_NOTIFY_QUERY_STATUS "query-status"
#define FS_NOTIFY_QUERY_EVENT "query-event"

/* The absolute reference of a subscription: "<base_url>/Subscription/<id>". */
const char *fs_status_sub_reference(apr_pool_t *p, const fs_sub_t *sub);

/* A status resource of `type` for sub, in the shape of version v
 * (R4: backport Parameters, R5: SubscriptionStatus). Owned by the caller. */
json_object *fs_status_make(apr_pool_t *p, fs_fhir_version_t v, const fs_sub_t *sub,
                            const char *type, apr_time_t now);

/* A searchset Bundle of one query-status entry per subscription (fs_sub_t*). */
json_object *fs_status_searchset(apr_pool_t *p, fs_fhir_version_t v,
                                 const apr_array_header_t *subs, apr_time_t now);

/* A fresh "urn:uuid:..." for Bundle entries and ids. */
const char *fs_status_urn_uuid(apr_pool_t *p);

#endif
